"""Slow: does every source notebook run top to bottom at the documented 2-core CPU budget?

Run with `make test-slow`; the measured times are written down in BENCHMARKS.md ("Lab run times").
"""

from __future__ import annotations

import time

import pytest

from tests.conftest import LABS, ROOT
from tests.notebooks import errors, execute

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("lab", LABS)
def test_source_notebook_runs_at_the_cpu_budget(lab: str) -> None:
    """Does the lab run, checks passing, at INTRODL_BUDGET=cpu (and how long does it take)?"""
    started = time.monotonic()
    nb = execute(
        ROOT / "source" / lab / f"{lab}.ipynb", budget="cpu", allow_errors=True, timeout=3600
    )
    failures = [f"cell {i}: {o.ename}: {o.evalue}" for i, _, o in errors(nb)]
    print(f"{lab}: {time.monotonic() - started:.0f} s at the cpu budget")
    assert not failures, f"source/{lab} fails at the cpu budget: " + "; ".join(failures)

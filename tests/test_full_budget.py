"""Slow: does every source notebook run top to bottom at the documented 2-core CPU budget?

Run with `make test-slow`; the measured times are written down in BENCHMARKS.md ("Lab run times").
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from tests.conftest import LABS, ROOT
from tests.notebooks import errors, execute

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("lab", LABS)
def test_source_notebook_runs_at_the_cpu_budget(lab: str, tmp_path: Path) -> None:
    """Does the lab run, checks passing, at INTRODL_BUDGET=cpu (and how long does it take)?
    The music lab must also leave a WAV recording of a generated tune."""
    folder = tmp_path / lab
    shutil.copytree(ROOT / "source" / lab, folder)  # what the notebook writes stays out of source/
    started = time.monotonic()
    nb = execute(folder / f"{lab}.ipynb", budget="cpu", allow_errors=True, timeout=3600)
    failures = [f"cell {i}: {o.ename}: {o.evalue}" for i, _, o in errors(nb)]
    print(f"{lab}: {time.monotonic() - started:.0f} s at the cpu budget")
    assert not failures, f"source/{lab} fails at the cpu budget: " + "; ".join(failures)
    if lab == "lab1_music":
        wavs = [p for p in (folder / "tunes").glob("*.wav") if p.stat().st_size > 44]
        assert wavs, f"no WAV recording in {folder / 'tunes'}"
        print(
            f"{lab}: {len(wavs)} WAV file(s), e.g. {wavs[0].name} ({wavs[0].stat().st_size} bytes)"
        )

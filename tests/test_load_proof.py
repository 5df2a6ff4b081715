"""Slow: does each lab's reference keep full marks when the grading host is saturated?

A verdict must not depend on how busy the grading host is. Each lab's source notebook (the
reference solution) is graded through the whole pipeline (bwrap sandbox, smoke-budget notebook,
hidden tests with a fresh seed) while HOGS processes spin on the CPU beside it, on this 2-core
machine: two hogs take the whole machine, four take two thirds of it from the grader. Run with
`make test-slow` (or `pytest -m slow tests/test_load_proof.py`); the results are written in each
lab's grader_tests/<lab>/CALIBRATION.md ("Graded beside CPU hogs").
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from introdl.grading.grade import GradeOptions, grade_submission
from introdl.grading.submission import submission_at
from tests.conftest import LABS, ROOT
from tests.sandboxed import needs_bwrap, test_slot

pytestmark = [pytest.mark.slow, needs_bwrap]

SPIN = "while True:\n    pass\n"


@contextmanager
def cpu_hogs(count: int) -> Iterator[list[subprocess.Popen[bytes]]]:
    """COUNT processes that each keep one core busy, at the grader's own priority."""
    hogs = [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(count)]
    try:
        yield hogs
    finally:
        for hog in hogs:
            hog.send_signal(signal.SIGKILL)
            hog.wait()


def reference_course(tmp_path: Path, lab: str) -> Path:
    """A one-lab course whose only submission is the lab's source notebook (the reference)."""
    course = tmp_path / "course"
    for part in ("source", "release", "grader_tests"):
        shutil.copytree(ROOT / part / lab, course / part / lab)
    shutil.copy(ROOT / "grader_tests" / "__init__.py", course / "grader_tests")
    shutil.copy(ROOT / "nbgrader_config.py", course)
    folder = course / "submitted" / "reference" / lab
    folder.mkdir(parents=True)
    shutil.copy(ROOT / "source" / lab / f"{lab}.ipynb", folder)
    return course


@pytest.mark.parametrize("hogs", [2, 4])
@pytest.mark.parametrize("lab", LABS)
def test_reference_keeps_full_marks_beside_cpu_hogs(lab: str, hogs: int, tmp_path: Path) -> None:
    """Graded with HOGS busy processes beside it, does the reference lose no point?"""
    course = reference_course(tmp_path, lab)
    seed = secrets.randbits(31)
    sub = submission_at(course / "submitted" / "reference" / lab, lab, student="reference")
    with cpu_hogs(hogs):
        time.sleep(1.0)  # let the hogs take the cores first
        load_before = os.getloadavg()[0]
        started = time.monotonic()
        graded = grade_submission(
            course, sub, GradeOptions(backend="bwrap", seed=seed), slot=test_slot()
        )
        elapsed = time.monotonic() - started
        load_after = os.getloadavg()[0]
    results = graded.results
    lost = [(t.name, t.status, t.output) for t in results.tests if t.status != "passed"]
    cells = [(c.index, c.status, c.message) for c in results.cells if c.status != "ok"]
    print(
        f"{lab} beside {hogs} hogs: {results.score:g}/{sum(results.max_points.values()):g} "
        f"in {elapsed:.0f} s (notebook {results.phases.notebook:.0f} s, hidden tests "
        f"{results.phases.hidden_tests:.0f} s), seed {seed}, load {load_before:.1f}->{load_after:.1f}"
    )
    assert not results.errors, results.errors
    assert results.score == sum(results.max_points.values()), (seed, lost, cells, results.events)

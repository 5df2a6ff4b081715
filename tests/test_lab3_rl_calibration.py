"""Slow: is lab3_rl's grading calibrated? The reference must pass every run, each known mistake fail.

`make test-slow`. The curve runs reuse the grader's own training loop in this process (a modest
number of seeds; the larger calibration, with its numbers and date, is in
grader_tests/lab3_rl/CALIBRATION.md, made by `make calibrate LAB=lab3_rl`). The gradings run the
whole hidden suite for real in the bwrap sandbox.
"""

from __future__ import annotations

import pytest

from introdl.grading.authoring import Lab, Variant, variants
from introdl.grading.commands.grade_notebook import grade_notebook
from tests.conftest import ROOT
from tests.sandboxed import needs_bwrap

pytestmark = pytest.mark.slow

LAB = Lab.named("lab3_rl", ROOT)
calibrate = LAB.module("calibrate")  # the runs `make calibrate LAB=lab3_rl` makes
curve_run, suite_run = calibrate.curve_run, calibrate.suite_run

CURVE_SEEDS = range(2000, 2006)
CAUGHT_BY_CURVES = [v for v in variants(LAB) if "cartpole_training" in v.caught_by]
CORRECT = [v for v in variants(LAB) if not v.wrong]


@pytest.mark.parametrize("seed", CURVE_SEEDS)
def test_reference_agent_learns_and_plays_well_on_every_seed(seed: int) -> None:
    """Does the solution's agent, trained by the grader's loop, cross the target and then pass the
    evaluation in fresh environments, on every seed (the hidden test needs only the first, or else
    both of the next two)?"""
    run = curve_run(None, seed)
    print(run)
    assert run["learned"], run
    assert run["eval_passes"], run


@pytest.mark.parametrize("variant", CAUGHT_BY_CURVES, ids=[v.name for v in CAUGHT_BY_CURVES])
def test_wrong_agents_never_learn(variant: Variant) -> None:
    """Do the mistakes that break learning fail the curve and the evaluation on every seed?"""
    for seed in list(CURVE_SEEDS)[:3]:
        run = curve_run(variant, seed)
        print(run)
        assert not run["learned"], run
        assert not run.get("eval_passes", False), run


@needs_bwrap
def test_source_notebook_gets_full_marks() -> None:
    """Does the instructor's notebook get every point of the whole hidden suite, graded for real,
    within the lab's 3-minute grading budget?"""
    run = suite_run(None, seed=11)
    failed = {n: t["output"] for n, t in run["tests"].items() if t["status"] != "passed"}
    assert not failed, failed
    assert run["score"] == run["max_score"] == 22
    print(run["phases"])
    assert run["phases"]["total"] < 180


@needs_bwrap
def test_untouched_release_gets_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    """Does the student release with every TODO untouched score 0 on every hidden test?"""
    monkeypatch.setenv("INTRODL_COURSE_ROOT", str(ROOT))
    result = grade_notebook(
        path=str(ROOT / "release" / "lab3_rl" / "lab3_rl.ipynb"),
        lab="lab3_rl",
        backend="bwrap",
        seed=5,
    )
    data = result.results
    assert data["score"] == 0
    assert all(t["status"] != "passed" for t in data["tests"])
    assert all(t["output"] for t in data["tests"])


@needs_bwrap
@pytest.mark.parametrize("variant", CORRECT, ids=[v.name for v in CORRECT])
def test_correct_variant_gets_full_marks_on_the_whole_suite(variant: Variant) -> None:
    """Does correct work written differently also pass the reward-curve tests?"""
    run = suite_run(variant, seed=13)
    failed = {n: t["output"] for n, t in run["tests"].items() if t["status"] != "passed"}
    assert not failed, failed

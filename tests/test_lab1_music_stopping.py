"""Does the music lab's training test stop once judged, and only when the judgement is safe?

The rule (grader_tests/lab1_music/training.py, `LOOKS` and `judge`; numbers in
grader_tests/lab1_music/CALIBRATION.md): the held-out loss is measured after a few fixed kernel
calls; below a look's bar the test passes at once, above its floor it fails at once, otherwise
training goes on; the last look is the final threshold. These tests need no kernel; the kernel
side is in tests/test_lab1_music_variants.py (the reference stops early, a model that does not
learn fails at the first look).
"""

from __future__ import annotations

import math

import pytest

from introdl.grading.authoring import Lab
from tests.conftest import ROOT

training = Lab.named("lab1_music", ROOT).module("training")
LAST = training.TRAINING_STEPS // training.STEPS_PER_CALL


def verdict(per_call: list[float]) -> tuple[bool, int]:
    """The rule applied to a held-out loss after each call: (passed, calls trained)."""
    for call, loss in enumerate(per_call, start=1):
        decided = training.judge(call, loss)
        if decided is not None:
            return decided, call
    raise AssertionError(f"no verdict after {len(per_call)} calls")


def test_the_looks_are_few_ordered_and_end_at_the_final_threshold() -> None:
    """Is the last look the whole budget judged by today's threshold, and can no earlier look pass
    a loss the final threshold would reject?"""
    calls = [look.call for look in training.LOOKS]
    assert calls == sorted(set(calls))
    assert calls[-1] == LAST
    assert len(training.LOOKS) <= LAST // 2, "few looks: each one is a chance of a false pass"
    final = training.LOOKS[-1]
    assert final.bar == final.floor == training.HELDOUT_LOSS_THRESHOLD
    for look in training.LOOKS[:-1]:
        assert look.bar < training.HELDOUT_LOSS_THRESHOLD < look.floor, look


def test_a_learning_model_passes_at_the_first_look_it_clears() -> None:
    """Does a curve like the reference's (CALIBRATION.md, seed 2) pass before the full budget?"""
    passed, calls = verdict([2.667, 2.013, 1.764, 1.658, 1.574, 1.556])
    assert passed
    assert calls < LAST


@pytest.mark.parametrize(
    ("what", "per_call", "failed_at"),
    [
        ("no gradient update", [4.42] * 6, 1),
        ("softmax output", [4.03] * 6, 1),
        ("targets not shifted", [11.8] * 6, 1),
        ("no dense layer (about unigram frequencies)", [3.40] * 6, 3),
        ("stuck halfway", [3.0, 2.7, 2.6, 2.5, 2.4, 2.3], 3),
    ],
)
def test_a_model_that_does_not_learn_fails_at_the_first_look_past_its_floor(
    what: str, per_call: list[float], failed_at: int
) -> None:
    passed, calls = verdict(per_call)
    assert not passed, what
    assert calls == failed_at, what


def test_a_loss_that_only_grazes_the_threshold_midway_waits_for_the_end() -> None:
    """An attacker's curve (or an unlucky wrong model's): just under the final threshold at an early
    look, above it at the end. Does the rule refuse to pass it early?"""
    passed, calls = verdict([2.8, 2.3, 1.95, 1.95, 2.05, 2.1])
    assert not passed
    assert calls == LAST


def test_a_loss_that_is_not_a_number_fails() -> None:
    for look in training.LOOKS:
        assert training.judge(look.call, math.nan) is False
        assert training.judge(look.call, math.inf) is False


def test_the_final_look_always_decides() -> None:
    assert training.judge(LAST, training.HELDOUT_LOSS_THRESHOLD - 1e-9) is True
    assert training.judge(LAST, training.HELDOUT_LOSS_THRESHOLD) is False


def test_a_failure_at_a_look_tells_the_student_where_and_what() -> None:
    """Does an early failure name the steps, the loss measured and the limit it missed?"""
    look = training.LOOKS[0]
    steps = look.call * training.STEPS_PER_CALL
    trained = training.Training(4.42, 4.41, steps, False, [4.4] * steps, {look.call: 4.41})
    message = training.training_verdict(trained)
    assert f"4.41 after {steps} steps" in message
    assert f"below {look.floor} by then" in message
    assert str(training.HELDOUT_LOSS_THRESHOLD) in message

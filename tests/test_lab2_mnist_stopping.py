"""Does lab2_mnist's stopping rule judge each measure at the right look, and is its schedule sane?

The rule (grader_tests/lab2_mnist/quality.py, `judge` and `LOOKS`) is plain arithmetic on the
held-out scores after each epoch, so it is tested here without a kernel; that the grader's real
training stops where the rule says, with the verdicts of training every epoch, is
tests/test_lab2_mnist_variants.py's job (a bwrap kernel), and the many-seed numbers are
tests/test_lab2_mnist_calibration.py's (slow).
"""

from __future__ import annotations

import pytest

from introdl.grading.authoring import Lab
from tests.conftest import ROOT

BUILDERS = ("build_cnn_model", "build_fc_model")
quality = Lab.named("lab2_mnist", ROOT).module("quality")
LOOKS = (
    quality.Look(1, passes=quality.Bar(0.95, 0.20), floor=quality.Bar(0.80, 0.60)),
    quality.Look(2, passes=quality.Bar(0.95, 0.25), floor=quality.Bar(0.90, 0.40)),
    quality.Look(3, passes=quality.Bar(0.95, 0.30), floor=quality.Bar(0.95, 0.30)),
)


def test_both_measures_clearing_an_early_pass_bar_pass_there() -> None:
    """Do accuracy and cross-entropy that both clear look 1's pass bars pass at look 1, whatever
    comes later?"""
    accuracy, cross_entropy = quality.judge([0.96, 0.10, 0.10], [0.15, 2.0, 2.0], LOOKS)
    assert accuracy == quality.Verdict(True, 1, 0.96, 0.95, final=False)
    assert cross_entropy == quality.Verdict(True, 1, 0.15, 0.20, final=False)


def test_one_measure_clearing_its_pass_bar_alone_does_not_pass_early() -> None:
    """An accurate network whose probabilities are timid (a double softmax): does its accuracy
    wait for the last look instead of passing early beside a failing cross-entropy?"""
    accuracy, cross_entropy = quality.judge([0.96, 0.96], [1.5, 1.5], LOOKS)
    assert accuracy is None
    assert cross_entropy == quality.Verdict(False, 1, 1.5, 0.60, final=False)
    accuracy, _ = quality.judge([0.96, 0.96, 0.94], [1.5, 1.5, 1.5], LOOKS)
    assert accuracy == quality.Verdict(False, 3, 0.94, 0.95, final=True)


def test_a_measure_beyond_an_early_floor_fails_there() -> None:
    """Is a cross-entropy above look 2's floor judged failed at look 2, even if it would recover,
    while the accuracy between its bars waits for the last look?"""
    accuracy, cross_entropy = quality.judge([0.9, 0.91, 0.99], [0.5, 0.45, 0.05], LOOKS)
    assert cross_entropy == quality.Verdict(False, 2, 0.45, 0.40, final=False)
    assert accuracy == quality.Verdict(True, 3, 0.99, 0.95, final=True)


def test_measures_between_bar_and_floor_wait_for_the_next_look() -> None:
    """Between a look's floor and its pass bar, is nothing decided until the next look?"""
    assert quality.judge([0.90], [0.3], LOOKS) == (None, None)
    assert quality.judge([0.90, 0.92], [0.3, 0.3], LOOKS) == (None, None)


@pytest.mark.parametrize(
    ("measure", "value", "passed"),
    [
        ("accuracy", 0.95, True),
        ("accuracy", 0.9499, False),
        ("cross_entropy", 0.30, True),
        ("cross_entropy", 0.3001, False),
    ],
)
def test_the_last_look_judges_each_measure_by_the_final_bar(
    measure: str, value: float, passed: bool
) -> None:
    """Does the last look decide whatever is left, each measure on its own by the final bar (ties
    pass, as before stopping)?"""
    accuracies = [0.92, 0.93, value if measure == "accuracy" else 0.99]
    cross_entropies = [0.3, 0.3, value if measure == "cross_entropy" else 0.01]
    accuracy, cross_entropy = quality.judge(accuracies, cross_entropies, LOOKS)
    verdict = accuracy if measure == "accuracy" else cross_entropy
    assert verdict is not None
    assert (verdict.passed, verdict.epoch, verdict.final) == (passed, 3, True)


@pytest.mark.parametrize("builder", BUILDERS)
def test_the_schedule_looks_after_every_epoch_and_ends_at_todays_bar(builder: str) -> None:
    """Does each network get one look per epoch of the recipe, the last one the calibrated final
    bar (so a run that is never judged early gets exactly the verdict of training every epoch)?"""
    looks = quality.LOOKS[quality.SOURCE][builder]
    assert [look.epoch for look in looks] == list(range(1, quality.RECIPE.epochs + 1))
    bar = quality.BARS[quality.SOURCE][builder]
    assert looks[-1].passes == looks[-1].floor == bar


@pytest.mark.parametrize("builder", BUILDERS)
def test_early_looks_ask_more_confidence_than_the_final_bar_and_floor_far_below_it(
    builder: str,
) -> None:
    """Does an early pass ask a lower cross-entropy than the final bar (the CNN's accuracy bar
    after one epoch is below the final one only because this joint bar rules out every wrong
    variant), and does each early floor lie beyond the final bar (a floor at the final bar would
    fail networks that are still learning)?"""
    bar = quality.BARS[quality.SOURCE][builder]
    for look in quality.LOOKS[quality.SOURCE][builder][:-1]:
        assert look.passes.cross_entropy < bar.cross_entropy
        assert look.floor.accuracy < bar.accuracy - 0.1
        assert look.floor.cross_entropy > bar.cross_entropy + 0.1


# The best scores (highest accuracy, lowest cross-entropy, each over 10 seeds) of the wrong CNNs
# after epochs 1 and 2 (CALIBRATION.md, "Stopping once judged"): the network without convolutions
# (a dense net, the closest to the bars on both measures) and the double softmax.
WRONG_CNN_BEST = {
    "wrong-cnn-without-convolutions": [(0.9140, 0.303), (0.9270, 0.246)],
    "wrong-cnn-softmax-twice": [(0.9310, 1.538), (0.9540, 1.509)],
    "wrong-cnn-no-pooling-tiny-dense": [(0.8340, 0.640), (0.8885, 0.423)],
}


@pytest.mark.parametrize("variant", sorted(WRONG_CNN_BEST))
def test_no_wrong_cnn_passes_an_early_look_even_with_its_best_scores_combined(variant: str) -> None:
    """Looking three times must not pass what the last look fails: does a network that has the
    best accuracy AND the best cross-entropy any seed of a wrong CNN reached at each early look
    still wait for the last look (or fail) on the measure the final bar fails it on?"""
    looks = quality.LOOKS[quality.SOURCE]["build_cnn_model"]
    accuracies = [a for a, _ in WRONG_CNN_BEST[variant]]
    cross_entropies = [c for _, c in WRONG_CNN_BEST[variant]]
    for verdict in quality.judge(accuracies, cross_entropies, looks):
        assert verdict is None or not verdict.passed, (variant, verdict)


def test_the_recipe_says_how_many_epochs_the_grader_trained() -> None:
    """Does the student's message name the epochs actually trained (1 epoch, 2 epochs)?"""
    assert quality.RECIPE.describe(1).startswith("1 epoch of Adam")
    assert quality.RECIPE.describe(2).startswith("2 epochs of Adam")
    assert quality.RECIPE.describe() == quality.RECIPE.describe(quality.RECIPE.epochs)


def scores_judged(accuracies: list[float], cross_entropies: list[float]) -> quality.Scores:
    looks = quality.LOOKS[quality.SOURCE]["build_cnn_model"]
    accuracy, cross_entropy = quality.judge(accuracies, cross_entropies, looks)
    assert accuracy is not None
    assert cross_entropy is not None
    return quality.Scores(
        accuracies=accuracies,
        cross_entropies=cross_entropies,
        seconds_at=[1.0] * len(accuracies),
        accuracy_verdict=accuracy,
        cross_entropy_verdict=cross_entropy,
        outputs_probabilities=True,
        seed=7,
    )


def test_a_student_judged_early_reads_after_how_many_epochs_and_what_that_look_asks() -> None:
    """A CNN without pooling, failed on both measures after one epoch: does the message say the
    grader trained 1 epoch, what the network scored, what the lab's design does by then and at the
    end, and that the grader stopped there?"""
    hidden = Lab.named("lab2_mnist", ROOT).module("test_lab2_mnist")

    bar = quality.BARS[quality.SOURCE]["build_cnn_model"]
    scores = scores_judged([0.5010], [1.455])
    accuracy = hidden.accuracy_failure(scores, bar, "your CNN", "a CNN of the lab's design")
    assert "(1 epoch of Adam" in accuracy
    assert "classified 50.1% of 2,000 held-out digits" in accuracy
    assert "is at 75.0% or more after 1 epoch and reaches at least 95% after 3" in accuracy
    assert "judged it there" in accuracy
    entropy = hidden.cross_entropy_failure(scores, bar, "your CNN", "a CNN of the lab's design")
    assert "is 1.455; a CNN of the lab's design is at 0.60 or less after 1 epoch" in entropy


def test_a_student_judged_at_the_last_look_reads_todays_message() -> None:
    """A dense net in place of a CNN is judged by the final bar: does its message name 3 epochs and
    the final bar, as before stopping existed?"""
    hidden = Lab.named("lab2_mnist", ROOT).module("test_lab2_mnist")

    bar = quality.BARS[quality.SOURCE]["build_cnn_model"]
    scores = scores_judged([0.908, 0.924, 0.931], [0.324, 0.257, 0.227])
    assert scores.cross_entropy_verdict.passed
    message = hidden.accuracy_failure(scores, bar, "your CNN", "a CNN of the lab's design")
    assert "(3 epochs of Adam" in message
    assert "classified 93.1%" in message
    assert message.endswith("a CNN of the lab's design reaches at least 95% this way")

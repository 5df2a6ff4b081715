"""Hidden tests for lab2_mnist (MNIST digit classification). Never released to students.

Architectures are probed on random images; compile_model and train_step are compared with a
NumPy reference (reference.py) on a small network the grader builds in the kernel with weights
drawn at grading time; the networks' quality is measured by training them with the grader's own
recipe and scoring them on held-out digits whose labels stay here (quality.py).
Grader code that must run in the kernel is in_kernel.py, installed there through the door;
the networks it makes for the tests are named `_grader_...`.
"""

from __future__ import annotations

import numpy as np
import pytest

from grader_tests.lab2_mnist import linearity, quality, reference
from introdl.grading.authoring import as_array, assert_close, assert_true, close

pytestmark = pytest.mark.budget(seconds=60)

HIDDEN = 16  # units of the grader's small network
# The lab's CNN has 124,670 weights, 32/64 filters with padding="same" ~420k. Below the range
# there is no room for Dense(128) on conv features; above it the features reach Dense unpooled
# (no pooling: 2.7M) and the grader's training would not fit its budget.
CNN_PARAMS = (20_000, 1_500_000)


def random_images(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.uniform(0.0, 1.0, size=(n, 28, 28, 1)).astype(np.float32)  # (n, 28, 28, 1)


def small_net(student, rng: np.random.Generator, name: str) -> reference.Params:
    """Build the grader's small network in the kernel as NAME with random weights; return them."""
    params = reference.random_params(rng, HIDDEN)
    student.call(f"{student.install(quality.IN_KERNEL)}.small_net", name, HIDDEN, params)
    return params


def probability_rows(student, builder: str, rng: np.random.Generator) -> None:
    n = int(rng.integers(2, 17))
    student.call(f"{student.install(quality.IN_KERNEL)}.build", "_grader_model", builder)
    out = as_array(
        student.call("_grader_model", random_images(rng, n)), f"the output of {builder}()"
    )
    assert_true(
        out.shape == (n, 10),
        f"on a batch of {n} images of shape (28, 28, 1), {builder}() should output shape ({n}, 10), "
        f"one row per image; it gave {out.shape}",
    )
    assert_true(
        bool(np.all(np.isfinite(out)) and out.min() >= 0)
        and close(out.sum(axis=1), np.ones(n), rtol=1e-5, atol=1e-4),
        f"each output row of {builder}() should be probabilities over the ten digits (non-negative, "
        "summing to 1): end the network with Dense(10, activation='softmax')",
    )


@pytest.fixture(scope="module")
def memo() -> dict:
    """Shared by the quality tests of one grading: one training per network."""
    return {}


def quality_bar(student, builder: str, seed: int, memo: dict) -> tuple[quality.Scores, quality.Bar]:
    scores = quality.train_and_score(student, builder, seed, memo=memo)
    return scores, quality.BARS[quality.SOURCE][builder]


def trained_how(scores: quality.Scores, verdict: quality.Verdict) -> str:
    return (
        f"trained by the grader ({quality.RECIPE.describe(verdict.epoch)} of the "
        f"{quality.SOURCE} split, seed {scores.seed})"
    )


def expected(verdict: quality.Verdict, design: str, final: str, early: str) -> str:
    """What a network of the lab's design does at the look that judged VERDICT (the grader's
    training stops early on a measure beyond that look's floor: say so, and where it stood)."""
    if verdict.final:
        return f"{design} {final} this way"
    epochs = verdict.epoch
    return (
        f"{design} {early} after {epochs} epoch{'s' if epochs > 1 else ''} and {final} after "
        f"{quality.RECIPE.epochs}, so the grader judged it there"
    )


def accuracy_failure(scores: quality.Scores, bar: quality.Bar, network: str, design: str) -> str:
    verdict = scores.accuracy_verdict
    return (
        f"{trained_how(scores, verdict)}, {network} classified {verdict.value:.1%} of 2,000 "
        f"held-out digits correctly; "
        + expected(
            verdict,
            design,
            f"reaches at least {bar.accuracy:.0%}",
            f"is at {verdict.bar:.1%} or more",
        )
    )


def cross_entropy_failure(
    scores: quality.Scores, bar: quality.Bar, network: str, design: str
) -> str:
    verdict = scores.cross_entropy_verdict
    return (
        f"{trained_how(scores, verdict)}, {network}'s mean cross-entropy on 2,000 held-out digits "
        f"is {verdict.value:.3f}; "
        + expected(
            verdict,
            design,
            f"gets below {bar.cross_entropy:.2f}",
            f"is at {verdict.bar:.2f} or less",
        )
    )


# --- 1.2a the fully connected network ----------------------------------------------------------
@pytest.mark.grade("fc_model", points=1)
def test_fc_model_outputs_ten_probabilities_per_image(student, rng) -> None:
    probability_rows(student, "build_fc_model", rng)


@pytest.mark.grade("fc_model", points=1)
def test_fc_model_hidden_layer_is_not_linear(student, rng, seed) -> None:
    assert_true(
        linearity.departure(student, rng, seed) > linearity.NONLINEAR,
        "build_fc_model() computes a linear function of the pixels: on random images, its "
        "log-probabilities at the midpoint of two images are the average of its log-probabilities "
        "at the two (up to a constant per image). Without an activation the hidden layer adds "
        "nothing (two Dense layers in a row are one Dense layer): give it one, "
        "Dense(128, activation='relu')",
    )


@pytest.mark.trains
@pytest.mark.grade("fc_model", points=1)
@pytest.mark.budget(seconds=quality.BUDGET)
def test_fc_model_heldout_accuracy(student, seed, memo) -> None:
    scores, bar = quality_bar(student, "build_fc_model", seed, memo)
    assert_true(
        scores.accuracy_verdict.passed,
        accuracy_failure(
            scores, bar, "your fully connected network", "a network of the lab's design"
        )
        + ". Check Flatten -> Dense(128, ReLU) -> Dense(10, softmax).",
    )


@pytest.mark.trains
@pytest.mark.grade("fc_model", points=1)
@pytest.mark.budget(seconds=quality.BUDGET)
def test_fc_model_heldout_probabilities_are_confident(student, seed, memo) -> None:
    scores, bar = quality_bar(student, "build_fc_model", seed, memo)
    assert_true(
        scores.cross_entropy_verdict.passed,
        cross_entropy_failure(
            scores, bar, "your fully connected network", "a network of the lab's design"
        )
        + ". Its probabilities stay timid: is a softmax applied twice, or is the output squashed "
        "some other way?",
    )


# --- 1.2b compiling --------------------------------------------------------------------------------
@pytest.mark.grade("compile_model", points=1)
def test_compile_model_reports_cross_entropy_and_accuracy(student, rng) -> None:
    params = small_net(student, rng, "_grader_cm")
    n = int(rng.integers(8, 33))
    images, labels = random_images(rng, n), rng.integers(0, 10, size=n)
    student.call(f"{student.install(quality.IN_KERNEL)}.compile_with_sgd", "_grader_cm", 0.05)
    scores = student.call(
        "_grader_cm.evaluate", images, labels, batch_size=n, verbose=0, return_dict=True
    )
    assert_true(
        isinstance(scores, dict) and "loss" in scores,
        "after compile_model, model.evaluate should report a loss: compile with loss=...",
    )
    probs = reference.probabilities(images, params)
    assert_close(
        scores["loss"],
        reference.mean_cross_entropy(probs, labels),
        "after compile_model, the loss should be the mean sparse categorical cross-entropy of the "
        "model's probabilities (not from logits) against the integer labels",
    )
    accuracy = [value for key, value in scores.items() if "acc" in str(key)]
    assert_true(
        bool(accuracy), "compile_model should add the accuracy metric (metrics=['accuracy'])"
    )
    assert_close(
        accuracy[0],
        reference.accuracy(probs, labels),
        "the accuracy metric should be the fraction of images whose most probable digit is the label",
    )


@pytest.mark.grade("compile_model", points=1)
def test_compile_model_trains_with_the_given_optimizer(student, rng) -> None:
    params = small_net(student, rng, "_grader_co")
    n = int(rng.integers(8, 33))
    learning_rate = float(rng.uniform(0.05, 0.5))
    images, labels = random_images(rng, n), rng.integers(0, 10, size=n)
    lab = student.install(quality.IN_KERNEL)
    student.call(f"{lab}.compile_with_sgd", "_grader_co", learning_rate)
    student.call("_grader_co.train_on_batch", images, labels)
    _, expected = reference.sgd_step(images, labels, params, learning_rate)
    got = student.call("_grader_co.get_weights")
    assert_true(
        isinstance(got, list) and len(got) == len(expected), "the model's weights did not come back"
    )
    for value, want in zip(got, expected, strict=True):
        assert_close(
            value,
            want,
            "after compile_model(model, optimizer), one training step should be one step of the "
            "given optimizer on the mean cross-entropy: compile with optimizer=optimizer",
        )


# --- 1.3 the CNN -----------------------------------------------------------------------------------
@pytest.mark.grade("cnn_model", points=1)
def test_cnn_model_outputs_ten_probabilities_per_image(student, rng) -> None:
    probability_rows(student, "build_cnn_model", rng)


@pytest.mark.grade("cnn_model", points=1)
def test_cnn_model_convolves_with_a_sane_number_of_weights(student, rng) -> None:
    lab = student.install(quality.IN_KERNEL)
    student.call(f"{lab}.build", "_grader_cnn", "build_cnn_model")
    student.call("_grader_cnn", random_images(rng, 2))  # builds the weights
    kinds = student.call(f"{lab}.layer_kinds", "_grader_cnn")
    assert_true(
        isinstance(kinds, list) and any("Conv" in str(kind) for kind in kinds),
        "build_cnn_model() should contain convolution layers (keras.layers.Conv2D)",
    )
    params = student.call("_grader_cnn.count_params")
    low, high = CNN_PARAMS
    assert_true(
        isinstance(params, int) and low <= params <= high,
        f"the CNN has {params} weights; the lab's design has about 125,000, and anything outside "
        f"{low:,}-{high:,} means a missing pooling layer or a Dense layer far from 128 units",
    )


@pytest.mark.trains
@pytest.mark.grade("cnn_model", points=3)
@pytest.mark.budget(seconds=quality.BUDGET)
def test_cnn_model_heldout_accuracy(student, seed, memo) -> None:
    scores, bar = quality_bar(student, "build_cnn_model", seed, memo)
    assert_true(
        scores.accuracy_verdict.passed,
        accuracy_failure(scores, bar, "your CNN", "a CNN of the lab's design")
        + ". Compare your layers with the table in section 1.3 (two Conv2D + MaxPool2D blocks, "
        "Flatten, Dense(128, ReLU), Dense(10, softmax)).",
    )


@pytest.mark.trains
@pytest.mark.grade("cnn_model", points=1)
@pytest.mark.budget(seconds=quality.BUDGET)
def test_cnn_model_heldout_probabilities_are_confident(student, seed, memo) -> None:
    scores, bar = quality_bar(student, "build_cnn_model", seed, memo)
    assert_true(
        scores.cross_entropy_verdict.passed,
        cross_entropy_failure(scores, bar, "your CNN", "a CNN of the lab's design")
        + ". Its probabilities stay timid even when it is right: is a softmax applied twice?",
    )


# --- 1.4 the hand-written training step --------------------------------------------------------
@pytest.mark.grade("train_step", points=2)
def test_train_step_equals_one_sgd_step_on_the_mean_loss(student, rng) -> None:
    params = small_net(student, rng, "_grader_tm")
    n = int(rng.integers(8, 33))
    learning_rate = float(rng.uniform(0.05, 0.5))
    images, labels = random_images(rng, n), rng.integers(0, 10, size=n)
    lab = student.install(quality.IN_KERNEL)
    returned = student.call(f"{lab}.train_step_once", "_grader_tm", learning_rate, images, labels)
    loss = as_array(returned, "the loss train_step returned")
    assert_true(
        loss.size == 1,
        f"train_step should return the batch's loss as one number; it returned shape {loss.shape}",
    )
    expected_loss, expected = reference.sgd_step(images, labels, params, learning_rate)
    got_loss = float(loss.reshape(()))
    assert_true(
        not close(got_loss, n * expected_loss, rtol=1e-3, atol=0),
        "train_step's loss is the SUM of the batch's losses; it should be their mean",
    )
    assert_close(
        got_loss,
        expected_loss,
        "train_step should return the mean cross-entropy of the model's predictions on the whole "
        "batch against its own labels, computed before the update",
    )
    got = student.call("_grader_tm.get_weights")
    for value, want in zip(got, expected, strict=True):
        assert_close(
            value,
            want,
            "after train_step, the weights should have moved by one optimizer step on the gradient "
            "of the mean loss of the whole batch (tape.gradient, then optimizer.apply_gradients)",
        )


@pytest.mark.grade("train_step", points=1)
def test_train_step_repeated_steps_lower_the_loss(student, rng) -> None:
    small_net(student, rng, "_grader_tr")
    # Real digits (public ones, labels included): random pixels with random labels are too hard
    # for a small network to fit in a few steps.
    digits = quality.grader_digits()
    chosen = rng.choice(len(digits.train_labels), size=32, replace=False)
    images = (digits.train_images[chosen] / np.float32(255.0))[..., None]  # (32, 28, 28, 1)
    lab = student.install(quality.IN_KERNEL)
    x, y = images.astype(np.float32), digits.train_labels[chosen]
    losses = as_array(
        student.call(f"{lab}.train_steps", "_grader_tr", 0.2, x, y, 30), "the losses of 30 steps"
    )
    assert_true(
        losses.shape == (30,) and bool(np.all(np.isfinite(losses))),
        "30 calls of train_step on one batch should each return a finite loss",
    )
    assert_true(
        losses[-5:].mean() < 0.5 * losses[:5].mean(),
        f"30 steps of train_step on one batch should drive its loss well down; it went from "
        f"{losses[0]:.3f} to {losses[-1]:.3f}. Apply the gradients of the loss to the model's "
        "trainable variables (subtracting them, which is what the optimizer does)",
    )

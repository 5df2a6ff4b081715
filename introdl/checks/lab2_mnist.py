"""Public checks for Lab 2 Part 1 (MNIST digit classification), one per graded exercise.

Each function is named after the grade cell that calls it. They check shapes, probabilities,
the kinds of layers, and small cases whose answer is known (a network that predicts the same
probabilities for every digit has a cross-entropy of exactly ln 10), never a reference
implementation, and they train nothing bigger than a ten-unit layer for a few steps.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import keras
import numpy as np

from introdl.checks import CheckFailed, as_array, calling, describe, fail, passed
from introdl.checks import quiet as _quiet

__all__ = ["CheckFailed", "cnn_model", "compile_model", "fc_model", "train_step"]

_SEED = 6191
NUM_CLASSES = 10
IMAGE_SHAPE = (28, 28, 1)
# A network of the lab's shape has ~100k-250k weights. Below this it cannot hold Dense(128) on
# top of its features; above the upper bound the conv features reach Dense(128) unpooled.
CNN_PARAMS = (20_000, 1_500_000)
SOFTMAX_HINT = (
    "The last layer should be Dense(10) with a softmax activation, so that each row is a "
    "probability distribution over the ten digits."
)


def _images(n: int, seed: int = _SEED) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(0.0, 1.0, size=(n, *IMAGE_SHAPE)).astype(np.float32)  # (n, 28, 28, 1)


def _labels(n: int, seed: int = _SEED) -> np.ndarray:
    return np.random.default_rng(seed + 1).integers(0, NUM_CLASSES, size=n)


def _build(builder: Callable[[], Any], name: str) -> keras.Model:
    with calling(f"{name}()"), _quiet():
        model = builder()
    if model is None:
        fail(f"{name}() returned None: did you forget `return` at the end?")
    if not isinstance(model, keras.Model):
        fail(
            f"{name}() should return a Keras model (keras.Sequential); got {type(model).__name__}."
        )
    return model


def _check_probabilities(model: keras.Model, name: str) -> None:
    x = _images(4)
    with calling(f"{name}() on a batch of 4 images of shape (28, 28, 1)"), _quiet():
        out = as_array(model(x), f"the output of {name}()")
    if out.shape != (4, NUM_CLASSES):
        fail(
            f"on a batch of 4 images the model should output shape (4, 10), one row of ten "
            f"scores per image; got {out.shape}. {SOFTMAX_HINT}"
        )
    if not np.all(np.isfinite(out)):
        fail("the model's output holds NaN or infinite values.")
    sums = out.sum(axis=1)
    if out.min() < 0 or not np.allclose(sums, 1.0, atol=1e-4):
        fail(
            f"each output row should be probabilities (non-negative, summing to 1); the rows sum "
            f"to {describe(sums)} and the smallest value is {out.min():.3g}. {SOFTMAX_HINT}"
        )


def _layer_kinds(model: keras.Model) -> list[str]:
    return [type(layer).__name__ for layer in model._flatten_layers(include_self=False)]


# --- 1.2 The fully connected network ------------------------------------------------------------


def fc_model(build_fc_model: Callable[[], Any]) -> None:
    """build_fc_model() flattens the image, has a hidden layer, and outputs 10 probabilities."""
    model = _build(build_fc_model, "build_fc_model")
    _check_probabilities(model, "build_fc_model")
    kinds = _layer_kinds(model)
    if any("Conv" in kind for kind in kinds):
        fail(
            "build_fc_model should use fully connected (Dense) layers only; it has "
            f"{[k for k in kinds if 'Conv' in k]}. Convolutions come in the CNN, section 1.3."
        )
    direct = 28 * 28 * NUM_CLASSES + NUM_CLASSES  # Flatten straight into Dense(10)
    if model.count_params() <= direct:
        fail(
            f"the network has {model.count_params():,} weights: that is at most a single Dense(10) "
            "on the flattened image. Add the hidden Dense(128, ReLU) layer before the output layer."
        )
    passed(
        f"build_fc_model() maps a batch of images to 10 probabilities each ({model.count_params():,} weights)"
    )


# --- Compiling ----------------------------------------------------------------------------------


def _known_probability_model(probabilities: np.ndarray) -> keras.Model:
    """A model that outputs PROBABILITIES for every image (zero kernel, bias = log p)."""
    model = keras.Sequential(
        [
            keras.Input(IMAGE_SHAPE),
            keras.layers.Flatten(),
            keras.layers.Dense(NUM_CLASSES, activation="softmax"),
        ]
    )
    kernel, _ = model.layers[-1].get_weights()
    model.layers[-1].set_weights([np.zeros_like(kernel), np.log(probabilities).astype("float32")])
    return model


def compile_model(compile_model: Callable[[Any, Any], Any]) -> None:
    """compile_model(model, optimizer) uses that optimizer, cross-entropy on probabilities, accuracy."""
    probabilities = np.array([0.05, 0.3, 0.05, 0.05, 0.2, 0.05, 0.1, 0.05, 0.1, 0.05])
    model = _known_probability_model(probabilities)
    optimizer = keras.optimizers.SGD(learning_rate=0.1)
    with calling("compile_model(model, optimizer)"), _quiet():
        compile_model(model, optimizer)
    if model.optimizer is not optimizer:
        fail(
            "compile_model(model, optimizer) should compile the model with the optimizer it is "
            "given (optimizer=optimizer), not one of its own."
        )
    x, y = _images(6), np.array([1, 4, 1, 0, 6, 2])
    with (
        calling(
            "model.evaluate(images, labels) after compile_model",
            "The labels are integers 0-9, and the model outputs probabilities: use the sparse "
            "categorical cross-entropy.",
        ),
        _quiet(),
    ):
        scores = model.evaluate(x, y, verbose=0, return_dict=True)
    expected_loss = float(-np.mean(np.log(probabilities[y])))
    loss = float(scores.get("loss", float("nan")))
    if not math.isclose(loss, expected_loss, rel_tol=1e-3):
        fail(
            f"on a model whose outputs are known probabilities, the loss should be the mean "
            f"cross-entropy {expected_loss:.4f}; got {loss:.4f}. Use the sparse categorical "
            "cross-entropy on probabilities (from_logits=False, the default): the model already "
            "ends in a softmax and the labels are integers."
        )
    accuracy = [v for k, v in scores.items() if "acc" in k]
    if not accuracy:
        fail(
            f"the model should report accuracy while it trains: add metrics=['accuracy'] "
            f"(evaluate reported only {sorted(scores)})."
        )
    if not math.isclose(float(accuracy[0]), 2 / 6, abs_tol=1e-4):
        fail(
            f"the accuracy metric should be the fraction of images whose most probable digit is "
            f"the label (here 2 of 6); got {float(accuracy[0]):.4f}. Use metrics=['accuracy']."
        )
    passed(
        "compile_model uses the given optimizer, the cross-entropy of probabilities, and accuracy"
    )


# --- 1.3 The CNN --------------------------------------------------------------------------------


def cnn_model(build_cnn_model: Callable[[], Any]) -> None:
    """build_cnn_model() has two conv/pool blocks, Dense(128) and outputs 10 probabilities."""
    model = _build(build_cnn_model, "build_cnn_model")
    _check_probabilities(model, "build_cnn_model")
    kinds = _layer_kinds(model)
    convs = [k for k in kinds if "Conv" in k]
    pools = [k for k in kinds if "Pool" in k]
    if len(convs) < 2:
        fail(
            f"the CNN should have two convolution layers (keras.layers.Conv2D); it has {len(convs)} "
            f"(its layers: {kinds})."
        )
    if len(pools) < 2:
        fail(
            f"each convolution should be followed by a pooling layer (keras.layers.MaxPool2D); the "
            f"CNN has {len(pools)} (its layers: {kinds})."
        )
    params = model.count_params()
    low, high = CNN_PARAMS
    if params > high:
        fail(
            f"the CNN has {params:,} weights, more than {high:,}: the convolution features reach the "
            "Dense layer without being pooled, or the Dense layer is far larger than 128 units."
        )
    if params < low:
        fail(
            f"the CNN has only {params:,} weights, fewer than {low:,}: is the Dense(128) layer "
            "before the output missing or much smaller?"
        )
    passed(
        f"build_cnn_model() has {len(convs)} convolutions, {len(pools)} poolings and outputs 10 probabilities ({params:,} weights)"
    )


# --- 1.4 The hand-written training step ----------------------------------------------------------


def train_step(train_step: Callable[..., Any]) -> None:
    """train_step(model, optimizer, images, labels) returns the batch's mean loss and takes a step."""
    uniform = np.full(NUM_CLASSES, 1 / NUM_CLASSES)
    model = _known_probability_model(uniform)
    optimizer = keras.optimizers.SGD(learning_rate=0.5)
    batch = 8
    x, y = _images(batch, _SEED + 2), _labels(batch, _SEED + 2)
    before = [w.copy() for w in model.get_weights()]
    with calling("train_step(model, optimizer, images, labels)"), _quiet():
        loss = train_step(model, optimizer, x, y)
    value = as_array(loss, "the loss train_step returned")
    if value.size != 1:
        fail(
            f"train_step should return the batch's loss as one number (the mean over the batch); "
            f"got an array of shape {value.shape}. Average the per-image losses (tf.reduce_mean)."
        )
    first = float(value.reshape(()))
    ln10 = math.log(NUM_CLASSES)
    if math.isclose(first, batch * ln10, rel_tol=1e-3):
        fail(
            f"for a model that gives every digit probability 0.1 the mean cross-entropy is ln 10 = "
            f"{ln10:.4f}; train_step returned {first:.4f}, {batch} times that: it sums the losses of "
            "the batch. Return (and differentiate) the mean instead."
        )
    if not math.isclose(first, ln10, rel_tol=1e-3):
        fail(
            f"for a model that gives every digit probability 0.1 the mean cross-entropy is ln 10 = "
            f"{ln10:.4f}; train_step returned {first:.4f}. Compute the loss of the model's "
            "predictions on `images` against `labels`, before updating the weights."
        )
    after = model.get_weights()
    if all(np.array_equal(a, b) for a, b in zip(before, after, strict=True)):
        fail(
            "the model's weights did not change: train_step should compute the gradients of the "
            "loss with the tape and apply them with optimizer.apply_gradients."
        )
    losses = [first]
    for step in range(30):
        with calling(f"train_step (repeated, step {step + 2})"), _quiet():
            losses.append(
                float(as_array(train_step(model, optimizer, x, y), "the loss").reshape(()))
            )
    if not losses[-1] < 0.5 * losses[0]:
        fail(
            f"31 steps on one batch should drive its loss well down; it went from {losses[0]:.3f} to "
            f"{losses[-1]:.3f}. Do you apply the gradients of the loss (not of something else) to "
            "model.trainable_variables, in the same order?"
        )
    passed(
        f"train_step returns the mean loss and lowers it: {losses[0]:.3f} -> {losses[-1]:.3f} in 31 steps"
    )

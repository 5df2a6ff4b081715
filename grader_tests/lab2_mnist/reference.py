"""Reference computations for the hidden tests of lab2_mnist. Never released to students.

A small fully connected network (Flatten -> Dense(hidden, ReLU) -> Dense(10, softmax)) in NumPy,
float64: its probabilities, the mean sparse categorical cross-entropy, and one SGD step on that
loss. The tests build the same network in the student's kernel with the same weights and compare.
"""

from __future__ import annotations

from typing import Any

import numpy as np

Array = np.ndarray[Any, Any]
Params = list[Array]  # [kernel1 (784, hidden), bias1 (hidden,), kernel2 (hidden, 10), bias2 (10,)]
NUM_CLASSES = 10
# Keras clips probabilities to [eps, 1 - eps] before the log; the same here.
EPSILON = 1e-7


def random_params(rng: np.random.Generator, hidden: int) -> Params:
    """Weights that give confident but not saturated probabilities on images in [0, 1]."""
    return [
        rng.normal(0.0, 0.05, size=(28 * 28, hidden)).astype(np.float32),
        rng.normal(0.0, 0.1, size=hidden).astype(np.float32),
        rng.normal(0.0, 0.5, size=(hidden, NUM_CLASSES)).astype(np.float32),
        rng.normal(0.0, 0.1, size=NUM_CLASSES).astype(np.float32),
    ]


def _forward(images: Array, params: Params) -> tuple[Array, Array, Array]:
    w1, b1, w2, b2 = (p.astype(np.float64) for p in params)
    x = images.reshape(len(images), -1).astype(np.float64)  # (batch, 784)
    hidden = np.maximum(x @ w1 + b1, 0.0)  # (batch, hidden)
    logits = hidden @ w2 + b2  # (batch, 10)
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return x, hidden, shifted / shifted.sum(axis=1, keepdims=True)


def probabilities(images: Array, params: Params) -> Array:
    return _forward(images, params)[2]


def mean_cross_entropy(probs: Array, labels: Array) -> float:
    """Mean over the batch of -log(probability of the true class)."""
    picked = np.clip(probs[np.arange(len(labels)), labels], EPSILON, 1 - EPSILON)
    return float(-np.mean(np.log(picked)))


def accuracy(probs: Array, labels: Array) -> float:
    return float(np.mean(np.argmax(probs, axis=1) == labels))


def sgd_step(
    images: Array, labels: Array, params: Params, learning_rate: float
) -> tuple[float, Params]:
    """(loss before the step, weights after one SGD step on the mean cross-entropy)."""
    x, hidden, probs = _forward(images, params)
    n = len(labels)
    d_logits = probs.copy()
    d_logits[np.arange(n), labels] -= 1.0
    d_logits /= n  # (batch, 10): gradient of the MEAN loss
    w2 = params[2].astype(np.float64)
    d_hidden = (d_logits @ w2.T) * (hidden > 0)  # (batch, hidden)
    grads = [x.T @ d_hidden, d_hidden.sum(axis=0), hidden.T @ d_logits, d_logits.sum(axis=0)]
    updated = [p.astype(np.float64) - learning_rate * g for p, g in zip(params, grads, strict=True)]
    return mean_cross_entropy(probs, labels), updated

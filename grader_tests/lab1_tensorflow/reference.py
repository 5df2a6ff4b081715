"""Reference results for the hidden tests of lab1_tensorflow. Never released to students."""

from __future__ import annotations

from typing import Any

import numpy as np

Array = np.ndarray[Any, Any]


def sigmoid(z: Array) -> Array:
    return 1.0 / (1.0 + np.exp(-z))


def dense(x: Array, w: Array, b: Array) -> Array:
    return sigmoid(x.astype(np.float64) @ w.astype(np.float64) + b.astype(np.float64))


def func(a: Array, b: Array) -> Array:
    return (a + b) * (b - 1)


def gradient_descent_history(x0: float, x_f: float, learning_rate: float, steps: int) -> Array:
    """x after each step of x <- x - lr * d/dx (x - x_f)^2."""
    history = []
    x = x0
    for _ in range(steps):
        x = x - learning_rate * 2.0 * (x - x_f)
        history.append(x)
    return np.asarray(history)

"""Public checks of Lab 1 Part 1, section 1.4 (automatic differentiation).

Re-exported by `introdl.checks.lab1_tensorflow` (the notebook imports `from introdl.checks import
lab1_tensorflow as check`); split from it so that each module reads whole.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from introdl.checks import as_array, calling, fail, passed
from introdl.checks import quiet as _quiet

# --- 1.4 Automatic differentiation ---------------------------------------------------------------


def gradient_tape(gradient_of_square: Callable[[float], Any]) -> None:
    """gradient_of_square(x) is dy/dx of y = x * x, that is 2x."""
    for x in (3.0, -2.0, 0.5, 0.0):
        with calling(f"gradient_of_square({x})"):
            result = gradient_of_square(x)
        if result is None:
            fail(
                f"gradient_of_square({x}) returned None. tape.gradient gives None when the tape did not "
                "record y as a function of x: make x a tf.Variable (or call tape.watch(x)) and compute "
                "y = x * x inside the `with tf.GradientTape() as tape:` block."
            )
        got = as_array(result, f"gradient_of_square({x})")
        if got.size != 1:
            fail(f"gradient_of_square({x}) should be a single number; got shape {got.shape}.")
        value = float(got.reshape(()))
        if not np.isclose(value, 2 * x, atol=1e-5):
            hint = (
                " That is y = x * x itself: return tape.gradient(y, x)."
                if np.isclose(value, x * x)
                else ""
            )
            fail(f"gradient_of_square({x}) should be dy/dx = 2x = {2 * x}; got {value:.6g}.{hint}")
    passed("gradient_of_square(x) = 2x, from tf.GradientTape")


def gradient_descent(minimize_loss: Callable[..., Any]) -> None:
    """minimize_loss(x_f, ...) runs gradient descent on (x - x_f)**2 and returns (x, history)."""
    hint = (
        "If a gradient was None, x stopped being a tf.Variable: update it in place with "
        "x.assign(...) rather than x = x - ..."
    )

    def run(x_f: float, learning_rate: float, steps: int, seed: int) -> tuple[float, list[float]]:
        call = f"minimize_loss({x_f}, learning_rate={learning_rate}, num_training_iterations={steps}, seed={seed})"
        with calling(call, hint=hint), _quiet():
            result = minimize_loss(
                x_f, learning_rate=learning_rate, num_training_iterations=steps, seed=seed
            )
        if not (isinstance(result, tuple) and len(result) == 2):
            fail(f"{call} should return a pair (x_final, history); got {type(result).__name__}.")
        x_final, history = result
        if not isinstance(x_final, float):
            fail(
                f"x_final should be a Python float (float(x.numpy())); got {type(x_final).__name__}."
            )
        if not isinstance(history, list) or not all(isinstance(v, float) for v in history):
            fail(
                "history should be a list of Python floats: append float(x.numpy()) after each step."
            )
        if len(history) != steps:
            fail(
                f"{call} should record one value of x per iteration ({steps}); history has {len(history)}."
            )
        if steps and not np.isclose(x_final, history[-1]):
            fail(
                f"x_final should be the last value of x, history[-1] = {history[-1]:.6g}; got {x_final:.6g}."
            )
        return x_final, history

    x_f = 4.0
    _, history = run(x_f, 0.01, 40, seed=0)
    distance = np.abs(np.array(history) - x_f)
    if not np.all(np.isfinite(distance)):
        fail(
            "x became inf or nan: check the sign and size of the update x - learning_rate * gradient."
        )
    grew = np.flatnonzero(np.diff(distance) > 1e-6)
    if grew.size:
        i = int(grew[0])
        fail(
            f"x should move steadily toward x_f = {x_f}, but |x - x_f| grew from {distance[i]:.4g} to "
            f"{distance[i + 1]:.4g} at iteration {i + 1}. Step against the gradient: x - learning_rate * dL/dx."
        )
    shrink = float(np.median(distance[1:] / distance[:-1]))
    if not 0.975 < shrink < 0.985:
        fail(
            f"with L = (x - x_f)**2, dL/dx = 2 (x - x_f), so each step with learning_rate=0.01 should shrink "
            f"|x - x_f| by 2% (a factor 0.98); got a factor {shrink:.4f}. Check the loss and the update."
        )
    x_final, _ = run(-2.5, 0.1, 60, seed=1)
    if abs(x_final - -2.5) > 1e-3:
        fail(
            f"with x_f = -2.5 and learning_rate=0.1, 60 iterations should reach x ≈ -2.5; got {x_final:.6g}."
        )
    first = run(x_f, 0.01, 3, seed=0)[1]
    if first != run(x_f, 0.01, 3, seed=0)[1]:
        fail(
            "two runs with the same seed gave different histories: draw the starting x after seeding with `seed`."
        )
    if first == run(x_f, 0.01, 3, seed=1)[1]:
        fail(
            "seeds 0 and 1 gave the same history: the starting x should be drawn with the given seed."
        )
    passed("minimize_loss runs gradient descent on (x - x_f)**2 and converges to x_f")

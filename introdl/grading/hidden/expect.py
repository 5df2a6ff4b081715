"""Assertions for hidden tests whose failure messages teach and never show grader source.

Every message says what was expected in words, then what came back, briefly. Values that came
through the `student` door are plain data; these helpers check their type first, so a value of an
unexpected kind fails clearly instead of comparing as equal.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def as_array(value: Any, what: str) -> np.ndarray[Any, Any]:
    """VALUE as a numeric numpy array, or an AssertionError saying what came back instead."""
    if isinstance(value, np.ndarray):
        array = value
    elif isinstance(value, bool | int | float | np.number | np.bool_) or (
        isinstance(value, list) and all(isinstance(v, bool | int | float | list) for v in value)
    ):
        array = np.asarray(value)
    else:
        raise AssertionError(
            f"{what} should be a number or an array of numbers; it was a {type(value).__name__}"
        )
    if array.dtype == object or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise AssertionError(f"{what} should hold numbers; it holds {array.dtype}")
    return array


def assert_shape(value: Any, shape: tuple[int, ...], message: str) -> np.ndarray[Any, Any]:
    array = as_array(value, "the result")
    if tuple(array.shape) != tuple(shape):
        raise AssertionError(f"{message} (expected shape {tuple(shape)}, got {tuple(array.shape)})")
    return array


def assert_close(
    got: Any, expected: Any, message: str, *, rtol: float = 1e-4, atol: float = 1e-5
) -> np.ndarray[Any, Any]:
    """GOT equals EXPECTED elementwise within tolerance, with matching shapes."""
    want = np.asarray(expected, dtype=np.float64)
    array = as_array(got, "the result")
    if array.shape != want.shape:
        raise AssertionError(f"{message} (expected shape {want.shape}, got {array.shape})")
    values = array.astype(np.float64)
    if not np.all(np.isfinite(values)) and np.all(np.isfinite(want)):
        raise AssertionError(f"{message} (the result contains NaN or infinity)")
    if not np.allclose(values, want, rtol=rtol, atol=atol):
        worst = float(np.max(np.abs(values - want)))
        raise AssertionError(
            f"{message} (largest difference {worst:.3g}, tolerance {atol:g} + {rtol:g} x |expected|)"
        )
    return array


def assert_true(condition: bool, message: str) -> None:
    """A plain check that cannot be rewritten into a source-revealing assertion."""
    if not condition:
        raise AssertionError(message)

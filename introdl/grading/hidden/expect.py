"""Assertions for hidden tests whose failure messages teach and never show grader source.

The one place for array conversion and numeric tolerances in hidden tests: `as_array` (numbers,
numpy scalars and arrays, lists of numbers), `close` (the test for "equal within tolerance"),
`assert_close`, `assert_shape`, `assert_true`. A test that needs a looser tolerance passes
``rtol=``/``atol=`` and says why in a comment; nothing calls numpy's allclose on its own.

Every message says what was expected in words, then what came back, briefly. Values that came
through the `student` door are plain data; these helpers check their type first, so a value of an
unexpected kind fails clearly instead of comparing as equal. Expected values are never printed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

# float32 arithmetic done another way (other ops, other order) differs by about 1e-6 relative;
# the tolerance leaves two orders of magnitude for that and still catches any real mistake.
RTOL = 1e-4
ATOL = 1e-5


def as_array(value: Any, what: str) -> np.ndarray[Any, Any]:
    """VALUE as a numeric numpy array, or an AssertionError saying what came back instead."""
    if isinstance(value, np.ndarray):
        array = value
    elif isinstance(value, bool | int | float | np.number | np.bool_) or (
        isinstance(value, list)
        and all(isinstance(v, bool | int | float | np.number | np.bool_ | list) for v in value)
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


def close(got: Any, expected: Any, *, rtol: float = RTOL, atol: float = ATOL) -> bool:
    """Whether GOT equals EXPECTED elementwise within tolerance (same shape, both finite)."""
    try:
        assert_close(got, expected, "", rtol=rtol, atol=atol)
    except AssertionError:
        return False
    return True


def assert_close(
    got: Any, expected: Any, message: str, *, rtol: float = RTOL, atol: float = ATOL
) -> np.ndarray[Any, Any]:
    """GOT equals EXPECTED elementwise within tolerance, with matching shapes."""
    want = np.asarray(expected, dtype=np.float64)
    try:
        array = as_array(got, "the result")
    except AssertionError as err:
        raise AssertionError(f"{message} ({err})") from None
    if array.shape != want.shape:
        raise AssertionError(f"{message} (expected shape {want.shape}, got {array.shape})")
    values = array.astype(np.float64)
    if not np.all(np.isfinite(values)) and np.all(np.isfinite(want)):
        raise AssertionError(f"{message} (the result contains NaN or infinity)")
    near = np.isclose(values, want, rtol=rtol, atol=atol)
    if not near.all():
        with np.errstate(invalid="ignore"):
            worst = float(np.max(np.abs(values - want)[~near]))
        raise AssertionError(
            f"{message} ({int((~near).sum())} of {near.size} values differ; largest difference "
            f"{worst:.3g}, tolerance {atol:g} + {rtol:g} x |expected|)"
        )
    return array


def assert_true(condition: bool, message: str) -> None:
    """A plain check that cannot be rewritten into a source-revealing assertion."""
    if not condition:
        raise AssertionError(message)

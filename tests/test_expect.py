"""`expect`, the one place for array conversion and tolerances in hidden tests: does it fail?

Every lab's numeric checks go through `expect.assert_close` / `expect.close`; if they never
failed, no hidden test would notice a wrong number. These cases show where the line is.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from introdl.grading.hidden import expect
from introdl.grading.hidden.expect import ATOL, RTOL, assert_close

BASE = np.linspace(-3.0, 3.0, 12).reshape(3, 4)
JUST_OUTSIDE = 1.5 * (ATOL + RTOL * np.abs(BASE))  # per element, half again the tolerance
JUST_INSIDE = 0.5 * (ATOL + RTOL * np.abs(BASE))

WRONG: dict[str, tuple[Any, str]] = {
    "one-element-off": (
        BASE + np.where(np.arange(12).reshape(3, 4) == 5, JUST_OUTSIDE, 0),
        "1 of 12 values differ",
    ),
    "all-off-by-tolerance": (BASE + JUST_OUTSIDE, "12 of 12 values differ"),
    "other-shape": (BASE.reshape(4, 3), "expected shape (3, 4), got (4, 3)"),
    "broadcast-shape": (BASE[:, :1], "expected shape (3, 4), got (3, 1)"),
    "nan": (np.where(BASE > 2, np.nan, BASE), "NaN or infinity"),
    "text": ("0.5", "should be a number or an array of numbers; it was a str"),
    "none": (None, "it was a NoneType"),
    "strings-array": (np.array(["a", "b"]), "should hold numbers"),
}

RIGHT: dict[str, Any] = {
    "exact": BASE.copy(),
    "float32": BASE.astype(np.float32),
    "within-tolerance": BASE - JUST_INSIDE,
    "nested-list": BASE.tolist(),
}


@pytest.mark.parametrize(("got", "why"), WRONG.values(), ids=WRONG.keys())
def test_assert_close_fails_on_a_wrong_result(got: Any, why: str) -> None:
    """Does `assert_close` fail, saying why in words without the expected values?"""
    with pytest.raises(AssertionError) as caught:
        assert_close(got, BASE, "the loss should be the mean cross-entropy")
    message = str(caught.value)
    assert message.startswith("the loss should be the mean cross-entropy")
    assert why in message
    assert "1.9090" not in message  # an expected value (BASE[2, 3] = 1.909...) is never shown
    assert not expect.close(got, BASE)


@pytest.mark.parametrize("got", RIGHT.values(), ids=RIGHT.keys())
def test_assert_close_passes_a_right_result(got: Any) -> None:
    """Does `assert_close` accept the same numbers in another dtype or container?"""
    assert_close(got, BASE, "never shown")
    assert expect.close(got, BASE)


@pytest.mark.parametrize(
    "scalar", [np.float32(0.25), np.float64(0.25), 0.25, np.array(0.25)], ids=repr
)
def test_numpy_scalars_from_the_door_are_numbers(scalar: Any) -> None:
    """Do the numpy scalars the door returns for 0-d tensors convert like any number?"""
    assert expect.as_array(scalar, "the loss").shape == ()
    assert_close(scalar, 0.25, "never shown")
    assert not expect.close(scalar, 0.25 + 10 * ATOL)


def test_explicit_tolerances_are_respected() -> None:
    """Does a test's own looser or exact tolerance apply instead of the default?"""
    assert not expect.close(BASE + 1e-3, BASE)
    assert expect.close(BASE + 1e-3, BASE, rtol=0, atol=2e-3)
    with pytest.raises(AssertionError, match="tolerance 0"):
        assert_close(BASE + 1e-12, BASE, "exact", rtol=0, atol=0)

"""Public checks: students run them under each exercise, inside their own notebook.

A check exercises the student's function or class on inputs of its own and either prints one
short "✓ ..." line or raises `CheckFailed` (an AssertionError, so nbgrader scores the cell 0)
whose message says in words what is wrong and how to fix it.

Checks test properties and small known cases, never against a reference implementation: they
ship to students, so they must not give the answer away. They write nothing to stderr (nbgrader
scores a grade cell with any stderr output 0), and they never import `introdl.grading`.

This module holds the helpers that every lab's checks share; the checks themselves live in one
module per lab (`introdl.checks.lab1_tensorflow`, ...), imported by the notebook as `check`.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import numpy as np

__all__ = [
    "CheckFailed",
    "as_array",
    "calling",
    "describe",
    "fail",
    "first_line",
    "passed",
    "quiet",
]

# Keras decorates its error messages with terminal colour codes; they are noise in a message.
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class CheckFailed(AssertionError):
    """A public check found a mistake; the message says what is wrong and how to fix it."""


def fail(message: str) -> NoReturn:
    """Stop the check with MESSAGE (what is wrong, what was expected, what to change)."""
    raise CheckFailed(message)


def passed(message: str) -> None:
    """Report a passed check on one line of stdout."""
    print(f"✓ {message}")


@contextmanager
def calling(what: str, hint: str = "") -> Iterator[None]:
    """Run student code, naming WHAT was called (and giving HINT) if it crashes.

    NotImplementedError (an exercise not done yet) passes through unchanged, so a student
    release run top to bottom fails only with NotImplementedError. Any other error becomes a
    CheckFailed chained to the original, whose traceback stays visible above the message.
    """
    try:
        yield
    except (NotImplementedError, CheckFailed):
        raise
    except Exception as err:
        raise CheckFailed(
            f"{what} raised {type(err).__name__}: {first_line(err)}\n"
            + (f"{hint}\n" if hint else "")
            + "Read the traceback above to see which line of your code failed, fix it, "
            "re-run that cell, then re-run this check."
        ) from err


def first_line(err: BaseException) -> str:
    """The first informative line of an exception's message, without colour codes.

    Keras prefixes errors raised inside `call` with "Exception encountered when calling X.call()."
    and puts the original message on a later line; that original line is the informative one.
    """
    lines = [line.strip() for line in _ANSI.sub("", str(err)).splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].startswith("Exception encountered when calling"):
        return f"in {lines[0].removeprefix('Exception encountered when calling').strip(' .')}: {lines[1]}"
    return lines[0] if lines else "(no message)"


def as_array(value: Any, what: str) -> np.ndarray:
    """VALUE (a tensor, a Keras variable, an array or a number) as a NumPy array.

    WHAT names the value in the message when it is None or not numeric.
    """
    if value is None:
        fail(f"{what} is None: did you forget a `return` statement?")
    try:
        array = np.asarray(value)
    except Exception as err:
        fail(
            f"{what} should be a tensor or a number; got {type(value).__name__} ({first_line(err)})."
        )
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
        fail(f"{what} should hold numbers; got {type(value).__name__} of dtype {array.dtype}.")
    return array


def describe(array: np.ndarray, limit: int = 6) -> str:
    """A short rendering of ARRAY for a message: its values when small, else shape and range."""
    if array.ndim == 0:
        return f"{array.item():.6g}" if np.issubdtype(array.dtype, np.number) else str(array.item())
    if array.size <= limit:
        return np.array2string(array, precision=4, separator=", ")
    low, high = array.min(), array.max()
    if low == high:
        return f"an array of shape {array.shape} with every value {low:.4g}"
    return f"an array of shape {array.shape} with values from {low:.4g} to {high:.4g}"


@contextmanager
def quiet() -> Iterator[None]:
    """Silence Python warnings raised while a check runs the student's code.

    Keras warns on stderr about harmless things (for instance when a model is first called
    through a branch that skips its layers), and nbgrader scores a cell with any stderr as 0.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield

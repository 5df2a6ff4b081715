"""Reading a hidden test's markers, and what a student may read about how it ended.

`grade_of` and `budget_of` read `@pytest.mark.grade(...)` and `@pytest.mark.budget(...)`;
`feedback_message` turns an exception into the authored message a student sees (never a
traceback); `BudgetExceeded` is what a test that runs past its budget gets raised in it;
`HostTooSlow` is what a test raises when its own wall-clock safety net ran out (an error).
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import pytest

from introdl.grading.record.results import VISIBILITIES, Visibility

DEFAULT_BUDGET = 60.0  # seconds per test when it names no budget
MAX_MESSAGE = 1500  # characters of feedback per test; a message is a sentence, not a dump
NO_MESSAGE = "a hidden check failed (this check gives no message)"


class BudgetExceeded(BaseException):
    """Raised inside a hidden test that ran past its budget, and again every second until it stops.

    A BaseException, so that a test's own `except Exception` cannot swallow it.
    """


class SetupBudgetExceeded(Exception):
    """BudgetExceeded for fixture setup, where pytest's bookkeeping only survives Exceptions."""


class HostTooSlow(Exception):
    """Raised by a hidden test whose wall-clock safety net ran out before its verdict was sure.

    The test's result is an error (the grading host was too busy), not a failure: its budgets
    that decide are counted in steps or CPU seconds, and those were not used up.
    """


def grade_of(item: pytest.Item) -> tuple[str, float, Visibility]:
    """(grade_id, points, visibility) from a test's `grade` marker; ValueError when it is missing or bad."""
    marker = item.get_closest_marker("grade")
    if marker is None:
        raise ValueError(
            "has no @pytest.mark.grade(grade_id, points=N) marker; every hidden test needs one"
        )
    args = list(marker.args)
    grade_id = args[0] if args else marker.kwargs.get("grade_id")
    pts = args[1] if len(args) > 1 else marker.kwargs.get("points")
    visibility = marker.kwargs.get("visibility", "visible")
    # Gradescope's names as their own marker too: `@pytest.mark.visibility("after_due_date")`.
    standalone = item.get_closest_marker("visibility")
    if standalone is not None:
        named = standalone.args[0] if standalone.args else standalone.kwargs.get("name")
        if "visibility" in marker.kwargs and marker.kwargs["visibility"] != named:
            raise ValueError(
                f"grade marker for {grade_id!r} says visibility={visibility!r} but its "
                f"visibility marker says {named!r}: keep one"
            )
        visibility = named
    if not isinstance(grade_id, str) or not grade_id:
        raise ValueError(f"grade marker needs a grade id string first, got {grade_id!r}")
    if (
        isinstance(pts, bool)
        or not isinstance(pts, int | float)
        or not math.isfinite(pts)
        or pts <= 0
    ):
        raise ValueError(f"grade marker for {grade_id!r} needs points=N with N > 0, got {pts!r}")
    if visibility not in VISIBILITIES:
        raise ValueError(
            f"grade marker visibility must be one of {', '.join(VISIBILITIES)}, got {visibility!r}"
        )
    return grade_id, float(pts), cast(Visibility, visibility)


def budget_of(item: pytest.Item, default: float) -> float:
    """Seconds from a test's `budget` marker (`@pytest.mark.budget(seconds=60)`), else DEFAULT."""
    marker = item.get_closest_marker("budget")
    if marker is None:
        return default
    seconds = marker.args[0] if marker.args else marker.kwargs.get("seconds")
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not seconds > 0:
        raise ValueError(f"budget marker needs seconds=S with S > 0, got {seconds!r}")
    return float(seconds)


def feedback_message(exc: BaseException, scrub: Sequence[str] = ()) -> str:
    """What a student may read about EXC: an authored message, or an exception's type and message.

    Never a traceback. Platform exceptions (the door's StudentError, timeouts) carry messages
    written for students and are shown as they are; grader paths in SCRUB are blanked out.
    """
    if isinstance(
        exc, BudgetExceeded | SetupBudgetExceeded | pytest.fail.Exception | pytest.skip.Exception
    ):
        text = str(getattr(exc, "msg", "") or exc)
    elif isinstance(exc, AssertionError):
        text = str(exc).strip() or NO_MESSAGE
    elif type(exc).__module__.startswith("introdl."):
        text = str(exc).strip() or type(exc).__name__
    else:
        detail = str(exc).strip()
        text = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
    for path in scrub:
        text = text.replace(path, "<grader>")
    if len(text) > MAX_MESSAGE:
        text = text[: MAX_MESSAGE - 1] + "…"
    return text


def item_location(item: pytest.Item) -> str:
    """A test's file and name for authoring errors (course staff read these, never students)."""
    return f"{item.path}::{item.name}"


def node_key(nodeid: str) -> int:
    """A stable 63-bit number for a test id (Python's hash() changes between processes)."""
    return int.from_bytes(hashlib.sha256(nodeid.encode()).digest()[:8], "big") >> 1


def seed_key(nodeid: str, module: object) -> int:
    """The key a test's `rng` and `seed` are drawn from: its node id's, or, when its module sets
    `SEEDED_AS = "<file>.py"` (a suite split into topic files), that of the id the test had in that
    file, so moving a test between a suite's files keeps every grading seed's draws."""
    seeded_as = getattr(module, "SEEDED_AS", None)
    if isinstance(seeded_as, str) and "::" in nodeid:
        nodeid = seeded_as + nodeid[nodeid.index("::") :]
    return node_key(nodeid)


@dataclass
class Timing:
    budget: float
    cut: bool = False  # the budget was shortened to the submission's grading deadline
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None


def planned(item: pytest.Item) -> dict[str, Any]:
    """A hidden test as the live view announces it before it runs (no source, no inputs)."""
    grade_id, points, visibility = grade_of(item)
    return {
        "name": item.name,
        "grade_id": grade_id,
        "max_score": points,
        "visibility": visibility,
        "trains": item.get_closest_marker("trains") is not None,
    }


def overrun_message(timing: Timing) -> str:
    """What a student reads about a test stopped by its budget or by the grading deadline."""
    if timing.cut:
        return (
            "the time this lab allows for grading one submission ran out before this test "
            "finished (earlier cells or tests of this notebook took it)"
        )
    return f"the test ran past its time budget of {timing.budget:g} s and was stopped"

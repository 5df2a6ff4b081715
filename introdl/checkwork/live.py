"""Checks being graded, as they go: what a student may see of a grading before its verdict.

The grading workers send the engine's progress events (introdl/grading/record/live.py) here, tagged
with their check; `LiveChecks` keeps, per running check, the notebook's progress (code cells run,
the public checks of the grade cells and how they ended), the hidden tests planned and each outcome
as it lands. `live_view` cuts that to what the student may read, by the same visibility rules as
the verdict (grader.student_view): visible tests by name, `after_due_date` tests only counted
before the due date, hidden tests neither named nor counted. Kept in memory only: a check whose
service restarts is graded again from the start, and its progress with it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from introdl.checkwork.fair_queue import Check
from introdl.checkwork.grader import student_view


@dataclass
class Live:
    """One running check's progress, from its grading's events."""

    started: float = field(default_factory=time.time)
    code_cells: int = 0
    cells_done: int = 0
    public: list[dict[str, Any]] = field(default_factory=list)  # grade cells that ran
    planned: list[dict[str, Any]] = field(default_factory=list)  # hidden tests, in run order
    results: list[dict[str, Any]] = field(default_factory=list)  # their outcomes so far
    first_result_at: float | None = None  # when a public check or hidden test first ended

    def update(self, event: dict[str, Any], now: float) -> None:
        kind = event.get("event")
        if kind == "notebook":
            self.code_cells = int(event.get("code_cells") or 0)
        elif kind == "cell":
            self.cells_done += 1
            if event.get("grade_id") and event.get("status") != "skipped":
                self.public.append(
                    {
                        "grade_id": str(event["grade_id"]),
                        "code_cell": event.get("code_cell"),
                        "heading": event.get("heading"),
                        "status": str(event.get("status")),
                    }
                )
                self._landed(now)
        elif kind == "tests":
            self.planned = [dict(t) for t in event.get("planned") or []]
        elif kind == "test" and isinstance(event.get("result"), dict):
            self.results.append(dict(event["result"]))
            self._landed(now)

    def _landed(self, now: float) -> None:
        if self.first_result_at is None:
            self.first_result_at = now


class LiveChecks:
    """The progress of every check being graded, by check id (the service's process only)."""

    def __init__(self) -> None:
        self._live: dict[int, Live] = {}

    def start(self, check_id: int) -> None:
        self._live[check_id] = Live()

    def update(self, check_id: int, event: dict[str, Any]) -> None:
        live = self._live.get(check_id)
        if live is not None:  # events of a check already finished (or stopped) are dropped
            live.update(event, time.time())

    def get(self, check_id: int) -> Live | None:
        return self._live.get(check_id)

    def finish(self, check_id: int) -> Live | None:
        return self._live.pop(check_id, None)


def with_first_result(results: dict[str, Any], live: Live | None, check: Check) -> dict[str, Any]:
    """RESULTS with how long CHECK's first streamed result took from its request, when known."""
    if live is None or live.first_result_at is None:
        return results
    return {**results, "first_result_seconds": round(live.first_result_at - check.requested_at, 3)}


def live_view(live: Live, *, due: datetime | None, now: datetime) -> dict[str, Any]:
    """What the student may read of LIVE at NOW: notebook progress, results so far, what is left."""
    done = {str(r.get("name")) for r in live.results}
    shown = student_view({"tests": live.results}, due=due, now=now)
    visible = [t for t in live.planned if _shown(t, due=due, now=now)]
    waiting = [t for t in live.planned if str(t.get("name")) not in done]
    running = waiting[0] if waiting else None
    waiting = [t for t in waiting if t.get("visibility", "visible") != "hidden"]  # not counted
    waiting_visible = [t for t in waiting if _shown(t, due=due, now=now)]
    phase = "notebook" if not live.planned else "tests"
    return {
        "phase": phase,
        "notebook": {"code_cells": live.code_cells, "done": min(live.cells_done, live.code_cells)},
        "public_checks": [
            {
                "grade_id": p["grade_id"],
                "code_cell": p["code_cell"],
                "heading": p.get("heading"),
                "passed": p["status"] == "ok",
            }
            for p in live.public
        ],
        "tests": shown["tests"],
        "more_tests": shown["more_tests"],
        "score_so_far": shown["score"],
        "max_score_so_far": shown["max_score"],
        "tests_planned": len(visible),
        "tests_waiting": [str(t["name"]) for t in waiting_visible],
        "other_tests_waiting": len(waiting) - len(waiting_visible),
        "running": None
        if running is None or not _shown(running, due=due, now=now)
        else str(running["name"]),
        "trains_waiting": sum(1 for t in waiting if t.get("trains")),
    }


def _shown(test: dict[str, Any], *, due: datetime | None, now: datetime) -> bool:
    """Whether a planned test may be named to the student now (grader.student_view's rule)."""
    visibility = test.get("visibility", "visible")
    return visibility == "visible" or (
        visibility == "after_due_date" and due is not None and now >= due
    )

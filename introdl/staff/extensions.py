"""Per-student extensions: granted and revoked by staff, kept in the staff records, applied to the
gradebook.

A grant or a revocation is one `StaffStore.change` (the row and its audit line together). In the
same transaction, the student's submission in nbgrader's gradebook gets the extension
(`SubmittedAssignment.extension`, which nbgrader's `total_seconds_late` counts) and the penalties of
notebooks already graded are re-priced by the course's policy (grading/record/late.py), without
regrading: if the gradebook cannot be written, the grant is not recorded either. A submission
graded later gets the extension from the staff records when its grades land (`land_grades`).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nbgrader.api import MissingEntry

from introdl.grading.api import (
    BadInput,
    course_directory,
    open_gradebook,
    parse_until,
    recompute_penalties,
    set_extension,
)
from introdl.staff.store import StaffStore

# The exchange's rule for names (introdl/hub/exchange_store.py): what a hub user name may be.
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}$")
MAX_REASON = 1000


@dataclass(frozen=True)
class Extension:
    """A student's own due date for a lab."""

    student: str
    lab: str
    until: datetime  # UTC
    reason: str
    granted_by: str
    granted_at: float


@dataclass(frozen=True)
class ExtensionChange:
    """What `grant` or `revoke` did (also what `introdl extension` prints)."""

    action: str  # "granted" or "revoked"
    lab: str
    student: str
    due: str  # the lab's due date, ISO 8601 UTC
    until: str  # the new due date of the student; "" after a revocation
    reason: str
    who: str
    penalties: dict[str, float] = field(default_factory=dict)  # re-priced graded notebooks

    def summary(self) -> str:
        if self.action == "revoked":
            line = f"{self.who} revoked {self.student}'s extension of {self.lab} (due {self.due})"
        else:
            line = f"{self.who} extended {self.lab} for {self.student} until {self.until} (due {self.due})"
        if self.penalties:
            line += "; late penalty of the graded notebooks now " + ", ".join(
                f"{nb}: {points:g} points" for nb, points in self.penalties.items()
            )
        return line


def _row(row: Any) -> Extension:
    return Extension(
        student=row["student"],
        lab=row["lab"],
        until=parse_until(row["until"]),
        reason=row["reason"],
        granted_by=row["granted_by"],
        granted_at=row["granted_at"],
    )


def extensions(store: StaffStore, *, student: str | None = None) -> list[Extension]:
    """Every extension (STUDENT's only when given), by lab then student."""
    if student is None:
        rows = store.read("SELECT * FROM extensions ORDER BY lab, student")
    else:
        rows = store.read("SELECT * FROM extensions WHERE student = ? ORDER BY lab", (student,))
    return [_row(r) for r in rows]


def extension_of(store: StaffStore, student: str, lab: str) -> Extension | None:
    rows = store.read("SELECT * FROM extensions WHERE student = ? AND lab = ?", (student, lab))
    return _row(rows[0]) if rows else None


def checked_name(value: str, what: str) -> str:
    if not NAME.match(value or ""):
        raise BadInput(f"{what} {value!r} is not a valid name (letters, digits, _ . @ -)")
    return value


def lab_due(course: Path, lab: str) -> datetime:
    """LAB's due date (UTC) in the gradebook; an unknown lab or one without a due date is refused."""
    with open_gradebook(course_directory(course)) as gb:
        try:
            due: datetime | None = gb.find_assignment(lab).duedate
        except MissingEntry:
            raise BadInput(
                f"{lab} is not a lab of the gradebook of {course}; give a released lab "
                "(`introdl release LAB` records it)"
            ) from None
    if due is None:
        raise BadInput(
            f"{lab} has no due date in the gradebook of {course}: set one "
            f'(nbgrader db assignment add {lab} --duedate="2026-12-20 17:00 UTC") before extending it'
        )
    return due.replace(tzinfo=UTC)


def parse_time(text: str) -> datetime:
    try:
        return parse_until(text.strip())
    except (ValueError, AttributeError):
        raise BadInput(
            f"--until {text!r} is not a time: give ISO 8601, e.g. 2026-12-24T17:00 (UTC) "
            "or 2026-12-24T17:00+01:00"
        ) from None


def grant(
    store: StaffStore,
    course: Path,
    *,
    lab: str,
    student: str,
    until: str,
    reason: str = "",
    who: str,
) -> ExtensionChange:
    """Give STUDENT until UNTIL (ISO 8601; UTC when no zone) for LAB; replaces an earlier grant."""
    checked_name(student, "student")
    checked_name(lab, "lab")
    new = parse_time(until)
    due = lab_due(course, lab)
    if new <= due:
        raise BadInput(
            f"--until {new:%Y-%m-%d %H:%M} UTC is not after {lab}'s due date "
            f"({due:%Y-%m-%d %H:%M} UTC): an extension must end later than the due date"
        )
    reason = reason.strip()
    if len(reason) > MAX_REASON:
        raise BadInput(f"the reason is {len(reason)} characters; keep it under {MAX_REASON}")
    old = extension_of(store, student, lab)
    detail: dict[str, Any] = {
        "until": new.isoformat(),
        "reason": reason,
        "previous": old.until.isoformat() if old else None,
        "penalties": {},  # filled in the transaction (change() dumps DETAIL's values at its end)
    }
    with store.change(who=who, action="extension.grant", student=student, lab=lab, **detail) as db:
        db.execute(
            "INSERT OR REPLACE INTO extensions (student, lab, until, reason, granted_by, "
            "granted_at) VALUES (?, ?, ?, ?, ?, ?)",
            (student, lab, new.isoformat(), reason, who, time.time()),
        )
        penalties = _apply(course, lab, student, new)
        detail["penalties"].update(penalties)
    return ExtensionChange(
        "granted", lab, student, due.isoformat(), new.isoformat(), reason, who, penalties
    )


def revoke(store: StaffStore, course: Path, *, lab: str, student: str, who: str) -> ExtensionChange:
    """Take STUDENT's extension of LAB back: the lab's own due date holds again."""
    checked_name(student, "student")
    checked_name(lab, "lab")
    old = extension_of(store, student, lab)
    if old is None:
        raise BadInput(f"{student} has no extension of {lab} to revoke")
    due = lab_due(course, lab)
    detail: dict[str, Any] = {
        "previous": old.until.isoformat(),
        "reason": old.reason,
        "penalties": {},
    }
    with store.change(who=who, action="extension.revoke", student=student, lab=lab, **detail) as db:
        db.execute("DELETE FROM extensions WHERE student = ? AND lab = ?", (student, lab))
        penalties = _apply(course, lab, student, None)
        detail["penalties"].update(penalties)
    return ExtensionChange("revoked", lab, student, due.isoformat(), "", "", who, penalties)


def _apply(course: Path, lab: str, student: str, until: datetime | None) -> dict[str, float]:
    """The extension into the gradebook, and the graded notebooks' penalties re-priced."""
    coursedir = course_directory(course)
    with open_gradebook(coursedir) as gb:
        if not set_extension(gb, lab, student, until):
            return {}
        return recompute_penalties(gb, coursedir.config, lab, student)

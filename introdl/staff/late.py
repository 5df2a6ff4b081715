"""What a student sees of their deadlines on the check service's home page, per lab: the due
date, their own extension, when they last handed in, whether that was late and the penalty the
course's policy gives, and, once graded, the score with the penalty the gradebook holds.

Everything is the caller's own: the student is the page's hub user, the extension comes from the
staff records, the hand-in time from the exchange's clock (handins.py), the grades from nbgrader's
gradebook (read-only).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING

from introdl.grading.record.late import Policy, course_policy
from introdl.staff.extensions import Extension, extension_of

if TYPE_CHECKING:
    from introdl.checkwork.app import CheckApp


@dataclass(frozen=True)
class Graded:
    score: float  # before the penalty
    max_score: float
    penalty: float


@dataclass(frozen=True)
class LabStatus:
    lab: str
    due: datetime | None
    extension: Extension | None
    handed_in: datetime | None  # the latest hand-in; None: none, or the exchange did not say
    handins_known: bool
    percent: float  # the policy's penalty for the latest hand-in (or for one now, if none)
    late_seconds: float
    graded: Graded | None

    @property
    def deadline(self) -> datetime | None:
        return self.extension.until if self.extension else self.due


def status(
    lab: str,
    *,
    due: datetime | None,
    extension: Extension | None,
    handins: dict[str, datetime] | None,
    policy: Policy,
    graded: Graded | None,
    now: datetime,
) -> LabStatus:
    deadline = extension.until if extension else due
    handed_in = (handins or {}).get(lab)
    at = handed_in or now
    late = max(0.0, (at - deadline).total_seconds()) if deadline else 0.0
    return LabStatus(
        lab, due, extension, handed_in, handins is not None, policy.percent(late), late, graded
    )


async def student_deadlines(app: CheckApp, student: str) -> list[LabStatus]:
    """STUDENT's status for every released lab."""
    policy, _ = course_policy(app.course)
    handins = await app.handins.latest(student) if app.handins else None
    now = datetime.now(UTC)
    return [
        status(
            lab,
            due=app.due(lab),
            extension=extension_of(app.staff, student, lab),
            handins=handins,
            policy=policy,
            graded=graded_of(app.course, lab, student),
            now=now,
        )
        for lab in app.labs()
    ]


def graded_of(course: Path, lab: str, student: str) -> Graded | None:
    """STUDENT's graded LAB in the gradebook (read-only): scores summed over notebooks."""
    gradebook = course / "gradebook.db"
    if not gradebook.is_file():
        return None
    query = """
        SELECT sn.late_submission_penalty,
          (SELECT SUM(COALESCE(g.manual_score, g.auto_score, 0) + COALESCE(g.extra_credit, 0))
             FROM grade g WHERE g.notebook_id = sn.id),
          (SELECT SUM(gc.max_score) FROM grade_cells gc JOIN base_cell bc ON gc.id = bc.id
             WHERE bc.notebook_id = sn.notebook_id),
          (SELECT COUNT(*) FROM grade g WHERE g.notebook_id = sn.id)
        FROM submitted_notebook sn
        JOIN submitted_assignment sa ON sn.assignment_id = sa.id
        JOIN assignment a ON sa.assignment_id = a.id
        WHERE a.name = ? AND sa.student_id = ?"""
    db = sqlite3.connect(f"{gradebook.resolve().as_uri()}?mode=ro", uri=True)
    try:
        rows = db.execute(query, (lab, student)).fetchall()
    except sqlite3.Error:
        return None
    finally:
        db.close()
    rows = [r for r in rows if r[3]]  # notebooks with grades
    if not rows:
        return None
    return Graded(
        score=sum(float(r[1] or 0) for r in rows),
        max_score=sum(float(r[2] or 0) for r in rows),
        penalty=sum(float(r[0] or 0) for r in rows),
    )


def utc(t: datetime | None) -> str:
    return "" if t is None else f"{t.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def days(seconds: float) -> str:
    whole = int(seconds // 86_400)
    hours = int(seconds % 86_400 // 3600)
    return f"{whole} d {hours} h" if whole else f"{hours} h {int(seconds % 3600 // 60)} min"


def late_words(row: LabStatus) -> str:
    if row.deadline is None:
        return "no due date set"
    if row.handed_in is None:
        if not row.handins_known:
            return "hand-in times are not available right now"
        if row.late_seconds <= 0:
            return "not handed in yet"
        return (
            f"not handed in; the due date has passed: a hand-in now is {days(row.late_seconds)} "
            f"late, a penalty of {row.percent:g}% of its score"
        )
    when = f"handed in {utc(row.handed_in)}"
    if row.late_seconds <= 0:
        return f"{when}: on time"
    if not row.percent:
        return f"{when}: {days(row.late_seconds)} late, no late penalty (the course's policy)"
    return f"{when}: {days(row.late_seconds)} late, penalty {row.percent:g}% of the score"


def deadlines_html(rows: list[LabStatus]) -> str:
    """The home page's table of deadlines (every value escaped)."""
    body = (
        "<h2>Due dates</h2><table id='deadlines'><tr><th>lab</th><th>due</th>"
        "<th>your extension</th><th>your hand-in</th><th>grade</th></tr>"
    )
    for row in rows:
        lab = escape(row.lab)
        ext = ""
        if row.extension:
            ext = f"until {utc(row.extension.until)}"
            if row.extension.reason:
                ext += f" ({escape(row.extension.reason)})"
        grade = ""
        if row.graded:
            g = row.graded
            grade = f"{g.score - g.penalty:g} / {g.max_score:g}"
            if g.penalty:
                grade += f" ({g.score:g} minus a late penalty of {g.penalty:g})"
        body += (
            f"<tr><td>{lab}</td><td id='due-{lab}'>{utc(row.due) or 'none'}</td>"
            f"<td id='extension-{lab}'>{ext}</td>"
            f"<td id='late-{lab}'>{escape(late_words(row))}</td>"
            f"<td id='grade-{lab}'>{escape(grade)}</td></tr>"
        )
    return body + "</table>"

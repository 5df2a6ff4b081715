"""The course's late-penalty policy, and the per-student extensions grading applies before it.

An instructor sets the policy in nbgrader_config.py, and points nbgrader at it:

    c.LatePolicy.percent_per_day = 10      # of the notebook's score, per started day late
    c.LatePolicy.max_percent = 50          # never more than this (100: a late score may reach 0)
    c.LatePolicy.grace_minutes = 5         # a hand-in this soon after the due date is on time
    c.LatePolicy.check_state = "/srv/introdl/check"   # where staff's extensions are kept
    c.AssignLatePenalties.plugin_class = "introdl.grading.record.late.LatePenalty"

"Per day" means per *started* day (24 h) after the (extended) due date, as a syllabus says "10%
per day or part of a day": 1 s late costs one day's percent, 24 h 1 s two. Past the grace period
the days count from the due date itself, not from the end of the grace period. The penalty is
stored by nbgrader's own `AssignLatePenalties` in the gradebook (`late_submission_penalty`), so
formgrader, `nbgrader export`, the feedback ("Late submission penalty") and an LMS push that reads
the gradebook all show the same number.

Extensions are granted by staff (`introdl extension`, the check service's staff page) and kept in
the staff records beside the check service's queue (introdl/staff/store.py owns that file; grading
only reads it, read-only, and never imports introdl.staff). `apply_staff_extension` copies a
student's extension into nbgrader's `SubmittedAssignment.extension`, which nbgrader's
`total_seconds_late` already counts; `recompute_penalties` re-prices graded notebooks when an
extension changes after grading, without regrading them.
"""

from __future__ import annotations

import math
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from nbgrader.api import Gradebook, MissingEntry
from nbgrader.plugins import LateSubmissionPlugin
from nbgrader.preprocessors import AssignLatePenalties
from traitlets import Float, Unicode
from traitlets.config import Configurable

from introdl.grading.course import course_config
from introdl.grading.errors import BadInput

DAY = 86_400.0
STAFF_FILE = "staff.sqlite"  # introdl/staff/store.py FILE_NAME (a test keeps them equal)
PLUGIN = "introdl.grading.record.late.LatePenalty"


class LatePolicy(Configurable):
    """The course's late penalty (nbgrader_config.py, `c.LatePolicy.*`)."""

    percent_per_day = Float(
        0.0, help="percent of the notebook's score taken per started day late (0: no penalty)"
    ).tag(config=True)
    max_percent = Float(100.0, help="the penalty's cap, in percent of the score").tag(config=True)
    grace_minutes = Float(
        0.0, help="minutes after the (extended) due date that still count as on time"
    ).tag(config=True)
    check_state = Unicode(
        "",
        help="the check service's state folder (its --state), whose staff.sqlite holds the "
        "extensions staff granted; empty: only extensions already in the gradebook count",
    ).tag(config=True)


@dataclass(frozen=True)
class Policy:
    """The numbers of a LatePolicy, checked."""

    percent_per_day: float = 0.0
    max_percent: float = 100.0
    grace_minutes: float = 0.0

    def days_late(self, seconds_late: float) -> int:
        """Started days late; 0 when on time or within the grace period."""
        if seconds_late <= self.grace_minutes * 60:
            return 0
        return math.ceil(seconds_late / DAY)

    def percent(self, seconds_late: float) -> float:
        """The penalty in percent of the score for a hand-in SECONDS_LATE after the due date."""
        return min(self.max_percent, self.days_late(seconds_late) * self.percent_per_day)

    def penalty(self, score: float, seconds_late: float) -> float:
        """The points taken from SCORE (never more than SCORE, never negative)."""
        return max(0.0, min(score, score * self.percent(seconds_late) / 100.0))


def checked(settings: LatePolicy, config_file: str) -> Policy:
    def bad(setting: str, why: str) -> BadInput:
        return BadInput(f"{config_file}: c.LatePolicy.{setting} {why}")

    if not 0 <= settings.percent_per_day <= 100:
        raise bad("percent_per_day", f"= {settings.percent_per_day}: give 0 to 100")
    if not 0 <= settings.max_percent <= 100:
        raise bad("max_percent", f"= {settings.max_percent}: give 0 to 100")
    if settings.grace_minutes < 0:
        raise bad("grace_minutes", f"= {settings.grace_minutes}: give 0 or more minutes")
    return Policy(
        float(settings.percent_per_day), float(settings.max_percent), float(settings.grace_minutes)
    )


def course_policy(course_root: Path) -> tuple[Policy, LatePolicy]:
    """The course's checked policy and its settings; a policy nbgrader would not apply (the
    plugin is not configured) is an error that says what to add."""
    config_file = str(course_root / "nbgrader_config.py")
    config = course_config(course_root)
    settings = LatePolicy(config=config)
    policy = checked(settings, config_file)
    plugin = config.get("AssignLatePenalties", {}).get("plugin_class", "")
    named = plugin if isinstance(plugin, str) else f"{plugin.__module__}.{plugin.__name__}"
    if policy.percent_per_day and named != PLUGIN:
        raise BadInput(
            f"{config_file}: c.LatePolicy.percent_per_day is set but nbgrader would not apply it; "
            f'add c.AssignLatePenalties.plugin_class = "{PLUGIN}"'
        )
    return policy, settings


class LatePenalty(LateSubmissionPlugin):  # type: ignore[misc]
    """nbgrader's late-penalty plugin with the course's `c.LatePolicy` (AssignLatePenalties calls
    it with the seconds late, extension counted, and stores what it returns). Without a percent
    per day it is nbgrader's own plugin (`c.LateSubmissionPlugin.penalty_method`)."""

    def late_submission_penalty(
        self, student_id: str, score: float, total_seconds_late: float
    ) -> float | None:
        config_file = "nbgrader_config.py (c.LatePolicy)"
        policy = checked(LatePolicy(parent=self), config_file)
        if not policy.percent_per_day:
            penalty: float | None = super().late_submission_penalty(
                student_id, score, total_seconds_late
            )
            return penalty
        return policy.penalty(float(score or 0.0), float(total_seconds_late))


def extension_until(check_state: str | Path, student: str, lab: str) -> datetime | None:
    """STUDENT's extended due date for LAB from the staff records (UTC), read-only."""
    path = Path(check_state) / STAFF_FILE
    if not path.is_file():
        return None
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            row = db.execute(
                "SELECT until FROM extensions WHERE student = ? AND lab = ?", (student, lab)
            ).fetchone()
        finally:
            db.close()
    except sqlite3.Error as err:
        raise BadInput(
            f"{path}: cannot read the staff's extensions ({err}); grade as a user who may read "
            "it, or set c.LatePolicy.check_state to the check service's state folder"
        ) from err
    return None if row is None else parse_until(str(row[0]))


def parse_until(text: str) -> datetime:
    """An ISO 8601 time as an aware UTC datetime (a time without a zone is UTC)."""
    when = datetime.fromisoformat(text)
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def naive_utc(when: datetime) -> datetime:
    return when.astimezone(UTC).replace(tzinfo=None)


def set_extension(gb: Gradebook, lab: str, student: str, until: datetime | None) -> bool:
    """Make STUDENT's gradebook submission of LAB due at UNTIL (None: at the lab's due date).
    False when there is no submission (nothing to extend yet) or the lab has no due date."""
    try:
        submission = gb.find_submission(lab, student)
    except MissingEntry:
        return False
    due = submission.assignment.duedate
    if due is None:
        return False
    submission.extension = None if until is None else max(naive_utc(until) - due, timedelta(0))
    gb.db.commit()
    return True


def apply_staff_extension(gb: Gradebook, config: Any, lab: str, student: str) -> None:
    """Copy STUDENT's extension for LAB from the staff records into the gradebook (land_grades
    calls this before AssignLatePenalties); nothing when c.LatePolicy.check_state is unset."""
    state = LatePolicy(config=config).check_state
    if state:
        set_extension(gb, lab, student, extension_until(state, student, lab))


def recompute_penalties(gb: Gradebook, config: Any, lab: str, student: str) -> dict[str, float]:
    """Re-price STUDENT's graded notebooks of LAB after their extension changed, with the plugin
    and the bounds of nbgrader's AssignLatePenalties (so the numbers are the ones grading stores):
    {notebook: penalty}. Scores are not touched; no submission: {}."""
    assign = AssignLatePenalties(config=config)
    assign.init_plugin()
    try:
        submission = gb.find_submission(lab, student)
    except MissingEntry:
        return {}
    late = submission.total_seconds_late
    penalties = {}
    for notebook in submission.notebooks:
        notebook.late_submission_penalty = None
        if late > 0:
            penalty = assign.plugin_inst.late_submission_penalty(student, notebook.score, late)
            if penalty is not None:
                notebook.late_submission_penalty = assign._check_late_penalty(notebook, penalty)
        penalties[notebook.name] = float(notebook.late_submission_penalty or 0.0)
    gb.db.commit()
    return penalties

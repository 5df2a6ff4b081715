"""Each student's final score for a lab, from nbgrader's gradebook.

The final score is what nbgrader's own `export` reports: the submission's score minus the late
penalty stored with it (nbgrader's AssignLatePenalties, run when grades land), never below 0.
Penalties are not computed here. Students are matched to the LMS by the gradebook's
`lms_user_id` column (set at LTI launch, or by the course from the LMS's roster).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nbgrader.api import MissingEntry

from introdl.grading.api import BadInput, course_directory, open_gradebook


@dataclass(frozen=True)
class Final:
    student: str  # the gradebook's (and the hub's) name
    lms_user_id: str  # "" when the gradebook has none
    first_name: str
    last_name: str
    email: str
    submitted: bool
    score: float  # after the late penalty; 0 when not submitted
    late_penalty: float


@dataclass(frozen=True)
class LabFinals:
    lab: str
    max_score: float
    students: tuple[Final, ...]


def lab_finals(course: Path, lab: str) -> LabFinals:
    """Every student of the gradebook with their final score for LAB (in student-id order)."""
    coursedir = course_directory(course)
    with open_gradebook(coursedir) as gb:
        try:
            assignment = gb.find_assignment(lab)
        except MissingEntry:
            raise BadInput(
                f"the gradebook ({coursedir.db_url}) has no lab {lab!r}; release and grade it first "
                "(`introdl release`, `introdl grade`)"
            ) from None
        max_score = float(assignment.max_score)
        finals = []
        for student in sorted(gb.students, key=lambda s: s.id):
            try:
                submission = gb.find_submission(lab, student.id)
            except MissingEntry:
                submission = None
            penalty = float(submission.late_submission_penalty or 0.0) if submission else 0.0
            score = max(0.0, float(submission.score) - penalty) if submission else 0.0
            finals.append(
                Final(
                    student=student.id,
                    lms_user_id=(student.lms_user_id or "").strip(),
                    first_name=student.first_name or "",
                    last_name=student.last_name or "",
                    email=student.email or "",
                    submitted=submission is not None,
                    score=round(score, 6),
                    late_penalty=penalty,
                )
            )
    return LabFinals(lab=lab, max_score=max_score, students=tuple(finals))

"""`introdl lms csv LAB --lms canvas|moodle --out PATH`: grades as the LMS's gradebook imports them.

For courses whose LMS admins will not register an LTI tool. Both files come from nbgrader's
gradebook (final scores, late penalties taken off) and match students by `lms_user_id`:

- Canvas (Gradebook > Import): `Student, ID, SIS User ID, SIS Login ID, Section`, then one column
  `<assignment name> (<assignment id>)` (just the name: Canvas offers to create the assignment),
  and a `Points Possible` row under the header, as Canvas's own export writes it. Canvas matches a
  row by its `ID` (the Canvas user id), so `lms_user_id` must hold that id for this file.
- Moodle (Grades > Import > CSV file): `First name, Last name, ID number, Email address` and the
  grade column; on import, map `ID number` to `useridnumber` (or `Email address` to `useremail`).

A student with no submission gets an empty cell (both LMSs leave an empty cell unchanged); one
with no `lms_user_id` is left out and named in the result. A cell that a spreadsheet would read as
a formula (it starts with =, +, -, @) is prefixed with ', so a student's name cannot run one.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from pathlib import Path

from introdl.grading.api import BadInput
from introdl.lms.finals import Final, LabFinals, lab_finals

CANVAS_HEADER = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")
MOODLE_HEADER = ("First name", "Last name", "ID number", "Email address")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class CsvResult:
    lab: str
    lms: str
    out: str
    rows: int
    without_lms_user_id: tuple[str, ...]
    not_submitted: tuple[str, ...]

    def summary(self) -> str:
        lines = [
            f"{self.out}: {self.rows} students of {self.lab} for {self.lms}'s gradebook import"
        ]
        if self.without_lms_user_id:
            lines.append(f"  left out (no lms_user_id): {', '.join(self.without_lms_user_id)}")
        if self.not_submitted:
            lines.append(f"  empty cell (no submission): {', '.join(self.not_submitted)}")
        return "\n".join(lines)


def inert(cell: str) -> str:
    return f"'{cell}" if cell.startswith(FORMULA_START) else cell


def _score(final: Final) -> str:
    return f"{final.score:.2f}" if final.submitted else ""


def canvas_rows(finals: LabFinals, name: str, assignment_id: str) -> list[list[str]]:
    column = f"{name} ({assignment_id})" if assignment_id else name
    rows = [[*CANVAS_HEADER, column]]
    rows.append(["    Points Possible", "", "", "", "", f"{finals.max_score:.2f}"])
    for f in finals.students:
        if f.lms_user_id:
            sortable = ", ".join(p for p in (f.last_name, f.first_name) if p) or f.student
            rows.append([inert(sortable), inert(f.lms_user_id), "", "", "", _score(f)])
    return rows


def moodle_rows(finals: LabFinals, name: str) -> list[list[str]]:
    rows = [[*MOODLE_HEADER, name]]
    for f in finals.students:
        if f.lms_user_id:
            cells = (f.first_name or f.student, f.last_name, f.lms_user_id, f.email)
            rows.append([inert(c) for c in cells] + [_score(f)])
    return rows


def write_csv(
    course: Path, lab: str, *, lms: str, out: Path, name: str = "", assignment_id: str = ""
) -> CsvResult:
    if lms not in ("canvas", "moodle"):
        raise BadInput(f"--lms {lms!r}: use canvas or moodle")
    finals = lab_finals(course, lab)
    label = name or lab
    rows = (
        canvas_rows(finals, label, assignment_id) if lms == "canvas" else moodle_rows(finals, label)
    )
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    out.parent.mkdir(parents=True, exist_ok=True)
    # Grades are personal data: the file is its owner's alone, as the gradebook is.
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
        handle.write(buffer.getvalue())
    return CsvResult(
        lab=lab,
        lms=lms,
        out=str(out),
        rows=sum(1 for f in finals.students if f.lms_user_id),
        without_lms_user_id=tuple(f.student for f in finals.students if not f.lms_user_id),
        not_submitted=tuple(
            f.student for f in finals.students if f.lms_user_id and not f.submitted
        ),
    )

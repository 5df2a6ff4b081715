"""A student launched from the LMS goes into nbgrader's gradebook with their LMS user id.

The hub (introdl/hub/lti.py) runs this after a Learner's LTI 1.3 launch, as the account that owns
the course (grader-<course>), with the launch's verified claims on stdin as JSON:

    {"student": "<hub name>", "lms_user_id": "<sub>", "first_name": "", "last_name": "", "email": ""}

`lms_user_id` is the `sub` of the id_token: the same id the LMS's roster (NRPS `user_id`) and its
score service use, so `introdl lms push` matches people without guessing. The student never
supplies it: it comes from a token the hub verified against the LMS's keys. A student whose
gradebook row already holds a DIFFERENT `lms_user_id` is not changed (two LMS accounts for one hub
name is for staff to sort out): the command says so and exits 1.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from nbgrader.api import MissingEntry

from introdl.grading.record.gradebook import course_directory, open_gradebook

FIELDS = ("first_name", "last_name", "email")


@dataclass(frozen=True)
class Enrolled:
    student: str
    lms_user_id: str
    changed: bool  # False: the row already said so
    conflict: str = ""  # the other lms_user_id the row holds (nothing was written)


def record_student(
    course: Path,
    *,
    student: str,
    lms_user_id: str,
    first_name: str = "",
    last_name: str = "",
    email: str = "",
) -> Enrolled:
    """Add STUDENT to COURSE's gradebook (or update their row) with LMS_USER_ID and their names."""
    if not student or not lms_user_id:
        raise ValueError("a student needs a hub name and an lms_user_id")
    names = {"first_name": first_name, "last_name": last_name, "email": email}
    with open_gradebook(course_directory(course)) as gb:
        try:
            row = gb.find_student(student)
        except MissingEntry:
            gb.add_student(
                student, lms_user_id=lms_user_id, **{k: v or None for k, v in names.items()}
            )
            return Enrolled(student, lms_user_id, changed=True)
        held = (row.lms_user_id or "").strip()
        if held and held != lms_user_id:
            return Enrolled(student, lms_user_id, changed=False, conflict=held)
        update = {k: v for k, v in names.items() if v and getattr(row, k) != v}
        if held != lms_user_id:
            update["lms_user_id"] = lms_user_id
        if update:
            gb.update_or_create_student(student, **update)
        return Enrolled(student, lms_user_id, changed=bool(update))


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m introdl.lms.enrol COURSE_ROOT < launch.json", file=sys.stderr)
        return 2
    launch = json.loads(sys.stdin.read())
    done = record_student(
        Path(args[0]),
        student=str(launch["student"]),
        lms_user_id=str(launch["lms_user_id"]),
        **{k: str(launch.get(k) or "") for k in FIELDS},
    )
    if done.conflict:
        print(
            f"gradebook: {done.student} already has lms_user_id {done.conflict!r}, not "
            f"{done.lms_user_id!r}: left unchanged (two LMS accounts for one hub name?)",
            file=sys.stderr,
        )
        return 1
    print(
        f"gradebook: {done.student} lms_user_id={done.lms_user_id} "
        + ("recorded" if done.changed else "unchanged")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

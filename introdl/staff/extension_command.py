"""`introdl extension LAB STUDENT --until 2026-12-24T17:00 [--reason ...]` and `--revoke`.

Run by staff on the grading host. Who grants is the Unix user running the command (the audit
trail's `who`); the staff records are the check service's (`--state`, else the course's
`c.LatePolicy.check_state`).
"""

from __future__ import annotations

import os
import pwd
from pathlib import Path

from introdl.grading.api import BadInput, course_policy, course_root
from introdl.staff import extensions as ext
from introdl.staff.store import StaffStore


def unix_user() -> str:
    return f"unix:{pwd.getpwuid(os.getuid()).pw_name}"


def extension(
    *,
    lab: str = "",
    student: str = "",
    until: str = "",
    reason: str = "",
    revoke: bool = False,
    state: str = "",
) -> ext.ExtensionChange:
    """Grant STUDENT an extension of LAB until a time (ISO 8601, UTC unless a zone is given), or
    take it back with --revoke. Penalties of notebooks already graded are re-priced at once."""
    if not lab or not student:
        raise BadInput("give the lab and the student: introdl extension LAB STUDENT --until TIME")
    if revoke == bool(until):
        raise BadInput("give either --until TIME (grant) or --revoke (take back), not both")
    root = course_root()
    _, settings = course_policy(root)
    folder = state or settings.check_state
    if not folder:
        raise BadInput(
            f"where are the staff records? give --state (the check service's --state folder) or "
            f"set c.LatePolicy.check_state in {root / 'nbgrader_config.py'}"
        )
    if not Path(folder).is_dir():
        raise BadInput(f"--state {folder}: no such folder (the check service's state folder)")
    store = StaffStore.beside(Path(folder))
    try:
        if revoke:
            return ext.revoke(store, root, lab=lab, student=student, who=unix_user())
        return ext.grant(
            store, root, lab=lab, student=student, until=until, reason=reason, who=unix_user()
        )
    finally:
        store.close()

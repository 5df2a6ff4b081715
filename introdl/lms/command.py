"""`introdl lms ACTION LAB`: the command line's door to grade passback (docs/lms.md)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from introdl.grading.api import BadInput, course_config, course_root
from introdl.lms import csv_export, push
from introdl.lms.keys import load_private_key, public_jwk
from introdl.lms.settings import LTI

ACTIONS = ("push", "status", "csv", "jwks")


@dataclass(frozen=True)
class JwksResult:
    """The tool's public key set: what the LMS admin registers (never the private key)."""

    keys: tuple[dict[str, str], ...]

    def summary(self) -> str:
        return json.dumps({"keys": list(self.keys)}, indent=2)


def lms(
    *,
    action: str = "status",
    lab: str = "",
    dry_run: bool = False,
    lms: str = "",
    out: str = "",
    name: str = "",
    assignment_id: str = "",
) -> Any:
    """Grades to the LMS: `push LAB [--dry-run]`, `status LAB`, `csv LAB --lms canvas|moodle --out
    PATH`, or `jwks` (the tool's public key for the LMS admin). Settings: c.LTI in nbgrader_config.py.

    Exit codes: 0 done, 1 some scores were not accepted (named, recorded; push again), 2 bad input.
    """
    if action not in ACTIONS:
        raise BadInput(f"unknown action {action!r}: use one of {', '.join(ACTIONS)}")
    course = course_root()
    if action == "jwks":
        key_file = LTI(config=course_config(course)).private_key_file
        if not key_file:
            raise BadInput(f"{course / 'nbgrader_config.py'}: set c.LTI.private_key_file")
        return JwksResult(keys=(public_jwk(load_private_key(Path(key_file))),))
    if not lab:
        raise BadInput(f"`introdl lms {action}` needs a lab id: introdl lms {action} LAB")
    if action == "push":
        return push.push(course, lab, dry_run=dry_run)
    if action == "status":
        return push.status(course, lab)
    if not lms or not out:
        raise BadInput("`introdl lms csv LAB` needs --lms canvas|moodle and --out PATH")
    return csv_export.write_csv(
        course, lab, lms=lms, out=Path(out), name=name, assignment_id=assignment_id
    )

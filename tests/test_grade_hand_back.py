"""A root grader hands the course back to its owner, the --export CSV included (found by following
docs/deploy.md: `introdl grade --export grades.csv` left a root-owned file in the course)."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import pytest

from introdl.grading.commands.grade import hand_back


@pytest.mark.skipif(os.geteuid() != 0, reason="only root hands files back")
def test_the_export_and_the_gradebook_go_back_to_the_courses_owner(tmp_path: Path) -> None:
    nobody = pwd.getpwnam("nobody")
    root = tmp_path / "course"
    root.mkdir()
    os.chown(root, nobody.pw_uid, nobody.pw_gid)
    for name in ("gradebook.db", "grades.csv"):
        (root / name).write_text("x")
    outside = tmp_path / "elsewhere.csv"
    outside.write_text("x")
    hand_back(root, extra=(root / "grades.csv", outside))
    assert (root / "gradebook.db").stat().st_uid == nobody.pw_uid
    assert (root / "grades.csv").stat().st_uid == nobody.pw_uid
    assert outside.stat().st_uid == 0  # not the course's: left alone

"""Files the grader writes into a course on someone else's behalf go back to the course's owner.

Batch grading runs as the course's owner, so what it writes is theirs. The check service runs as
root (the sandbox needs it) and writes into the course when staff answer a regrade request by a
rerun (introdl/staff/regrade.py): left root-owned, the autograded notebook and results.json could
no longer be rewritten by the owner's own `introdl grade` or `nbgrader`. `give_back` hands them
over: every path under the given folders, to the uid and gid of the course folder.
"""

from __future__ import annotations

import os
from pathlib import Path


def give_back(course: Path, *folders: Path) -> int:
    """Chown FOLDERS (and everything under them, symlinks untouched) to COURSE's owner when this
    process is root and the course is someone else's; how many paths were changed."""
    if os.geteuid() != 0:
        return 0
    owner = course.stat()
    if owner.st_uid == 0:
        return 0
    changed = 0
    for folder in folders:
        if not folder.exists() or folder.is_symlink():
            continue
        for path in [folder, *folder.rglob("*")]:
            info = path.lstat()
            if path.is_symlink() or (info.st_uid, info.st_gid) == (owner.st_uid, owner.st_gid):
                continue
            os.chown(path, owner.st_uid, owner.st_gid, follow_symlinks=False)
            changed += 1
    return changed

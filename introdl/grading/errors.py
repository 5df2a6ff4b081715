"""Errors the CLI turns into exit code 2 with a message that names the file and the remedy
(and `Stopped`, a batch interrupted by Ctrl-C: exit code 130, the shell's code for SIGINT)."""

from __future__ import annotations

import errno


class BadInput(Exception):
    """Input the platform cannot use (a missing file, an unknown lab, a broken notebook)."""


class DiskFull(BadInput):
    """The grader could not write (no space or quota left); what is already landed stays landed."""


class Stopped(Exception):
    """A batch stopped by Ctrl-C (SIGINT) after its workers stopped; what landed stays landed."""


def disk_full_errno(err: BaseException) -> bool:
    """Is ERR (or what it wraps, as SQLAlchemy wraps sqlite3) a full disk or an exhausted quota?"""
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if "database or disk is full" in str(current):  # sqlite3.OperationalError (SQLITE_FULL)
            return True
        current = current.__cause__ or current.__context__ or getattr(current, "orig", None)
    return False

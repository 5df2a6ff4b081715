"""What the check service reads from the course and from a student's home, and how safely.

Two sources of a student's notebook (`--notebooks`): `home` (this module: the student's home is
on the service's host, as with LocalProcessSpawner) and `server` (server_notebook.py: through the
hub's proxy from the student's own running server, for DockerSpawner and KubeSpawner).

The service never takes a path from a request: the notebook of `lab` for hub user `student` is
`~student/<lab>/<lab>.ipynb`, where `nbgrader fetch` (through the course exchange, run in the
student's server whose root is their home) puts it. Each step of that path is opened without
following symbolic links, and the file must be a regular file owned by the student's own Unix
user, no larger than the cap. Labs are the course's released labs (a release notebook and a hidden
suite); due dates come from nbgrader's gradebook, opened read-only.
"""

from __future__ import annotations

import errno
import os
import pwd
import sqlite3
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

MAX_NOTEBOOK_BYTES = 20 * 1024 * 1024


class NotebookError(Exception):
    """The student's notebook cannot be read for a check; the message says what to do."""

    status = 404  # the API's answer


class ReadInProgress(NotebookError):
    """The student's notebook is being read for another request of theirs."""

    status = 429


class NotebookSource(Protocol):
    """Where the service gets a student's notebook of a lab (the path comes from the lab only)."""

    kind: str

    async def read(self, student: str, lab: str) -> bytes:
        """The bytes of STUDENT's notebook of LAB, or NotebookError saying what to do."""
        ...


class HomeNotebooks:
    """Read from the student's home on this host (`read_student_notebook`)."""

    kind = "home"

    async def read(self, student: str, lab: str) -> bytes:
        return read_student_notebook(student, lab)


def released_labs(course: Path) -> list[str]:
    """Labs a student can check: a release notebook and a hidden suite in the course."""
    release = course / "release"
    if not release.is_dir():
        return []
    return sorted(
        p.name
        for p in release.iterdir()
        if (p / f"{p.name}.ipynb").is_file() and (course / "grader_tests" / p.name).is_dir()
    )


def home_of(student: str) -> tuple[Path, int]:
    """The student's home and uid, from the system's user database (the hub's Unix accounts)."""
    try:
        entry = pwd.getpwnam(student)
    except KeyError as err:
        raise NotebookError(
            f"there is no Unix account for hub user {student!r} on this host"
        ) from err
    return Path(entry.pw_dir), entry.pw_uid


def read_student_notebook(
    student: str, lab: str, *, home: Path | None = None, max_bytes: int = MAX_NOTEBOOK_BYTES
) -> bytes:
    """The bytes of STUDENT's fetched notebook of LAB, read without following links."""
    own_home, uid = home_of(student)
    home = home or own_home
    shown = f"~{student}/{lab}/{lab}.ipynb"
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
    fds: list[int] = []
    try:
        try:
            fds.append(os.open(home, flags | os.O_DIRECTORY))
            fds.append(os.open(lab, flags | os.O_DIRECTORY, dir_fd=fds[-1]))
            fds.append(os.open(f"{lab}.ipynb", flags | os.O_NONBLOCK, dir_fd=fds[-1]))
        except FileNotFoundError as err:
            raise NotebookError(
                f"there is no {shown}: fetch {lab} first (Nbgrader > Assignment List > Fetch), "
                "work in that notebook, save it, then ask again"
            ) from err
        except OSError as err:
            if err.errno in (errno.ELOOP, errno.ENOTDIR):
                raise NotebookError(
                    f"{shown} (or its folder) is a link or not a folder: the check reads only the "
                    f"notebook that nbgrader fetched; put {lab}.ipynb back in ~/{lab}/"
                ) from err
            raise NotebookError(f"cannot read {shown}: {err.strerror}") from err
        info = os.fstat(fds[-1])
        if not stat.S_ISREG(info.st_mode):
            raise NotebookError(f"{shown} is not a regular file")
        if info.st_uid != uid:
            raise NotebookError(
                f"{shown} is not owned by {student}: the check grades only your own notebook"
            )
        if info.st_size > max_bytes:
            raise NotebookError(
                f"{shown} is {info.st_size / 2**20:.1f} MiB, over the check's limit of "
                f"{max_bytes / 2**20:.0f} MiB: clear the outputs (Edit > Clear Outputs) and save"
            )
        chunks = []
        remaining = max_bytes + 1
        while remaining > 0:
            chunk = os.read(fds[-1], min(remaining, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        data = b"".join(chunks)
        if len(data) > max_bytes:
            raise NotebookError(f"{shown} grew past {max_bytes / 2**20:.0f} MiB while being read")
        return data
    finally:
        for fd in fds:
            os.close(fd)


def due_date(course: Path, lab: str) -> datetime | None:
    """The lab's due date (UTC) from nbgrader's gradebook, read-only; None when none is set."""
    gradebook = course / "gradebook.db"
    if not gradebook.is_file():
        return None
    db = sqlite3.connect(f"{gradebook.resolve().as_uri()}?mode=ro", uri=True)
    try:
        row = db.execute("SELECT duedate FROM assignment WHERE name=?", (lab,)).fetchone()
    except sqlite3.Error:
        return None
    finally:
        db.close()
    if not row or not row[0]:
        return None
    # nbgrader stores naive UTC datetimes ("2026-12-20 17:00:00.000000").
    return datetime.fromisoformat(str(row[0])).replace(tzinfo=UTC)

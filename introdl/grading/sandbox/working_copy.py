"""The working copy a submission runs in: a directory of its own, with a size quota where root.

The working copy is the sandbox's only writable place besides its small private /tmp. As root (the
grading host) it is a tmpfs mounted for this one submission, of `Limits.workdir_bytes` and at most
`Limits.workdir_files` inodes: a submission that writes more gets ENOSPC ("No space left on device")
in its own cell, never fills the grading host's disk, and its files vanish at unmount. tmpfs pages
are memory, used only as written, and are charged to the memory cgroup of the process that wrote
them (the sandbox's, where cgroups apply).

Without root, or where mounting is refused (an unprivileged container), it is a plain temporary
directory: each file is still capped by RLIMIT_FSIZE but the total is not (`WorkingCopy.quota` is
None, and `reason` says why); a full disk then stops the batch with `DiskFull`, losing nothing.

Example::

    with working_copy(slot=0, limits=DEFAULT_LIMITS) as copy:
        prepare_workdir(submission, nb, copy.path, quota=copy.quota)
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from introdl.grading.sandbox.limits import Limits

PREFIX = "introdl-work-"
FSTYPE_NAME = "introdl-work"  # the tmpfs's source name in /proc/mounts


@dataclass(frozen=True)
class WorkingCopy:
    path: Path
    quota: int | None  # bytes the submission may write in total; None where not enforced
    reason: str = ""  # why there is no quota, when there is none


@contextlib.contextmanager
def working_copy(slot: int, limits: Limits) -> Iterator[WorkingCopy]:
    """A fresh working copy for sandbox slot `slot`; unmounted and removed on exit."""
    path = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{slot}-"))
    reason = mount_quota(path, limits.workdir_bytes, limits.workdir_files)
    try:
        yield WorkingCopy(path, None if reason else limits.workdir_bytes, reason)
    finally:
        if not reason:
            unmount(path)
        shutil.rmtree(path, ignore_errors=True)


def mount_quota(path: Path, size_bytes: int, inodes: int) -> str:
    """Mount a tmpfs of `size_bytes` on `path`; returns "" on success, else why it was not."""
    if sys.platform != "linux" or os.geteuid() != 0:
        return "the grader is not root, so it cannot mount a size-limited working copy"
    if shutil.which("mount") is None:
        return "the mount command is missing (apt-get install mount)"
    options = f"size={size_bytes},nr_inodes={inodes},mode=0700,nosuid,nodev"
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, FSTYPE_NAME, str(path)],
        capture_output=True,
        text=True,
        check=False,
        start_new_session=True,  # a Ctrl-C at the terminal must not kill mount half way
    )
    if done.returncode != 0:
        return f"mounting a tmpfs on {path} was refused: {done.stderr.strip()}"
    return ""


def unmount(path: Path) -> None:
    """Unmount the working copy at `path` (lazily if something still holds it open).

    In a session of its own: the Ctrl-C that stops a batch reaches the whole foreground process
    group, and an umount killed by it would leave the tmpfs mounted.
    """
    for argv in (["umount", str(path)], ["umount", "--lazy", str(path)]):
        done = subprocess.run(argv, capture_output=True, check=False, start_new_session=True)
        if done.returncode == 0:
            return


def is_quota_mount(path: Path) -> bool:
    """Is `path` the mount point of a working copy's tmpfs?"""
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return False
    target = str(path)
    return any(
        line.split()[:3] == [FSTYPE_NAME, target, "tmpfs"] for line in mounts if line.strip()
    )

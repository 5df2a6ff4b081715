"""Machine-wide sandbox slots: each running kernel holds a lock on its slot's file.

A slot picks the sandbox's uid (limits.sandbox_uid), and cleaning up a sandbox kills every
process of that uid, so two graders on one machine (two TAs, a test run beside a batch) must never
use the same slot at once. `claim` takes the preferred slot if free, else the next free one.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from introdl.grading.errors import BadInput

LOCK_DIR = Path(os.environ.get("INTRODL_SLOT_DIR", "/tmp/introdl-slots"))
MAX_SLOTS = 4000


class SlotLock:
    """A held slot; `release` (idempotent) frees it. The OS frees it too if the grader dies."""

    def __init__(self, slot: int, fd: int) -> None:
        self.slot = slot
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def claim(preferred: int = 0) -> SlotLock:
    """Lock the preferred slot, or the next free one after it."""
    LOCK_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
    for offset in range(MAX_SLOTS):
        slot = (preferred + offset) % MAX_SLOTS
        fd = os.open(LOCK_DIR / f"{slot}.lock", os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        return SlotLock(slot, fd)
    raise BadInput(
        f"all {MAX_SLOTS} sandbox slots in {LOCK_DIR} are in use; wait for other graders to finish"
    )

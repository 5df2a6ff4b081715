"""Do two graders on one machine always get distinct sandbox slots (and so distinct uids)?"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from introdl.grading.sandbox import slots


@pytest.fixture(autouse=True)
def lock_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(slots, "LOCK_DIR", tmp_path)
    return tmp_path


def test_a_held_slot_is_not_given_twice() -> None:
    """Does claiming a slot that is held give the next free one, and releasing free it again?"""
    first = slots.claim(5)
    second = slots.claim(5)
    assert (first.slot, second.slot) == (5, 6)
    first.release()
    first.release()  # idempotent
    third = slots.claim(5)
    assert third.slot == 5
    second.release()
    third.release()


def test_a_slot_held_by_another_process_is_skipped(lock_dir: Path) -> None:
    """Is a slot locked by another grader process (not just this one) left alone?"""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import fcntl, os, sys, time\nfd = os.open('{lock_dir}/7.lock', os.O_CREAT | os.O_RDWR)\nfcntl.flock(fd, fcntl.LOCK_EX)\nprint('held', flush=True)\ntime.sleep(30)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        lock = slots.claim(7)
        assert lock.slot == 8
        lock.release()
    finally:
        holder.kill()
        holder.wait()
    lock = slots.claim(7)  # the dead holder's lock went with it
    assert lock.slot == 7
    lock.release()

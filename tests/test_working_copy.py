"""The working copy's quota: a submission cannot fill the grading host's disk (real tmpfs, real bwrap)."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import time
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from introdl.grading.door.student import Student
from introdl.grading.kernel.launch import start_kernel, sweep_stale
from introdl.grading.sandbox.limits import TEST_LIMITS, MiB
from introdl.grading.sandbox.working_copy import is_quota_mount, mount_quota, working_copy
from introdl.grading.submission import MAX_NOTEBOOK_BYTES, Submission, prepare_workdir
from tests.sandboxed import assert_no_leftovers, fill_working_copy, needs_bwrap, test_slot

needs_root = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("mount") is None,
    reason="mounting the working copy's tmpfs needs root",
)


@needs_root
@needs_bwrap
def test_a_submission_cannot_write_past_its_working_copy_quota() -> None:
    """Does writing file after file stop at the quota with ENOSPC in the sandbox, host untouched?"""
    chunk = TEST_LIMITS.file_size_bytes // 2  # each file well under the per-file cap
    host_free = shutil.disk_usage(Path(os.environ.get("TMPDIR", "/tmp"))).free
    with working_copy(test_slot(), TEST_LIMITS) as copy:
        assert copy.quota == TEST_LIMITS.workdir_bytes
        assert is_quota_mount(copy.path)
        kernel = start_kernel(
            workdir=copy.path, backend="bwrap", slot=test_slot(), limits=TEST_LIMITS
        )
        try:
            student = Student(kernel)
            student.run(fill_working_copy(chunk))
            assert student.get("failure") == "ENOSPC"
            written = student.get("written")
            assert TEST_LIMITS.workdir_bytes - chunk <= written <= TEST_LIMITS.workdir_bytes
            # the kernel still works, and deleting frees the room again
            student.run("import os\nos.remove('chunk0.bin')\nopen('after.txt', 'w').write('ok')")
            assert (copy.path / "after.txt").read_text() == "ok"
        finally:
            kernel.shutdown()
        assert_no_leftovers(kernel)
        # what the sandbox wrote is memory of the tmpfs, not the host disk
        assert shutil.disk_usage(Path(os.environ.get("TMPDIR", "/tmp"))).free > host_free - chunk
    assert not copy.path.exists()
    assert not is_quota_mount(copy.path)


@needs_root
@needs_bwrap
def test_too_many_files_stop_at_the_inode_cap() -> None:
    """Can a submission exhaust the host's inodes with empty files? No: the tmpfs has its own cap."""
    limits = dataclasses.replace(TEST_LIMITS, workdir_files=200)
    with working_copy(test_slot(), limits) as copy:
        kernel = start_kernel(workdir=copy.path, backend="bwrap", slot=test_slot(), limits=limits)
        try:
            student = Student(kernel)
            student.run(
                "import errno\nmade, failure = 0, None\n"
                "for i in range(100000):\n"
                "    try:\n        open(f'empty{i}', 'w').close()\n        made += 1\n"
                "    except OSError as err:\n"
                "        failure = errno.errorcode[err.errno]\n        break\n"
            )
            assert student.get("failure") == "ENOSPC"
            assert 150 <= student.get("made") < 200
        finally:
            kernel.shutdown()


def submission_with(tmp_path: Path, sizes: dict[str, int]) -> Submission:
    folder = tmp_path / "submitted" / "ann" / "lab"
    folder.mkdir(parents=True)
    notebook = folder / "lab.ipynb"
    nbformat.write(new_notebook(cells=[new_code_cell("x = 1")]), notebook)
    for name, size in sizes.items():
        (folder / name).write_bytes(b"\0" * size)
    return Submission("ann", "lab", folder, notebook, None)


def test_submitted_files_past_the_quota_are_left_out_and_reported(tmp_path: Path) -> None:
    """Does a submission whose files pass the quota get the first ones copied and the rest named?"""
    quota = MAX_NOTEBOOK_BYTES + 3 * MiB
    submission = submission_with(tmp_path, {"a.bin": 2 * MiB, "b.bin": 2 * MiB, "c.bin": MiB})
    dest = tmp_path / "work"
    nb = nbformat.read(submission.notebook, as_version=4)
    notes = prepare_workdir(submission, nb, dest, quota=quota)
    assert sorted(p.name for p in dest.iterdir()) == ["a.bin", "c.bin", "lab.ipynb"]
    assert notes == [f"b.bin would pass the working copy's {quota // MiB} MB; it was not copied"]
    # without a quota everything is copied
    assert prepare_workdir(submission, nb, tmp_path / "all") == []
    assert sorted(p.name for p in (tmp_path / "all").iterdir()) == [
        "a.bin",
        "b.bin",
        "c.bin",
        "lab.ipynb",
    ]


def test_without_root_the_working_copy_says_it_has_no_quota(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Where the grader cannot mount, is the missing quota stated, and the copy still cleaned up?"""
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with working_copy(0, TEST_LIMITS) as copy:
        assert copy.quota is None
        assert "not root" in copy.reason
        assert not is_quota_mount(copy.path)
        (copy.path / "file.txt").write_text("x")
    assert not copy.path.exists()


@needs_root
def test_sweep_unmounts_the_working_copies_of_a_killed_grader(tmp_path: Path) -> None:
    """After a grader died with its working copy mounted, does the sweep unmount and remove it?"""
    stale = tmp_path / "introdl-work-7-abc123"
    young = tmp_path / "introdl-work-7-def456"
    for path in (stale, young):
        path.mkdir()
        assert mount_quota(path, MiB, 100) == ""
    try:
        (stale / "left.bin").write_bytes(b"\0" * 1000)
        old = time.time() - 3600
        os.utime(stale, (old, old))
        removed = sweep_stale(tmp_path)
        assert removed == [str(stale)]
        assert not stale.exists()
        assert is_quota_mount(young)
    finally:
        for path in (stale, young):
            if is_quota_mount(path):
                subprocess.run(["umount", str(path)], check=False)

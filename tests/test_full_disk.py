"""A disk that fills up while a class is graded: a clear error naming the place and the remedy, and
nothing already landed is lost; after space is freed the same command resumes.

The full disk is real: a small tmpfs mounted for the test (root only, as on the course machines)
and filled to the last byte.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from introdl.grading.batch import grade_class
from introdl.grading.errors import DiskFull
from introdl.grading.grade import GradeOptions
from introdl.grading.record.results import results_path
from introdl.grading.sandbox.limits import TEST_LIMITS
from introdl.grading.submission import find_submissions
from tests.corpus_course import LAB, answer, build_course, submit

needs_root_and_bwrap = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("mount") is None or shutil.which("bwrap") is None,
    reason="mounting a small tmpfs needs root; grading needs bubblewrap",
)
OPTIONS = GradeOptions(backend="bwrap", seed=7, limits=TEST_LIMITS)


@contextmanager
def small_filesystem(path: Path, megabytes: int) -> Iterator[Path]:
    path.mkdir(parents=True)
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={megabytes}m,mode=755", "tmpfs", str(path)],
        check=True,
    )
    try:
        yield path
    finally:
        subprocess.run(["umount", "--lazy", str(path)], check=False)


def fill(folder: Path) -> Path:
    """Write zeros into FOLDER's file system until it refuses; return the file to delete later."""
    filler = folder / "filler.bin"
    for block in (1 << 16, 4096, 512, 1):  # down to the last byte
        with open(filler, "ab", buffering=0) as fh, contextlib.suppress(OSError):
            while True:
                fh.write(bytes(block))
    with pytest.raises(OSError, match="No space left on device"):
        (folder / "probe.bin").write_bytes(b"x")
    return filler


@needs_root_and_bwrap
def test_a_full_course_disk_stops_the_batch_with_a_remedy_and_loses_nothing(
    tmp_path: Path,
) -> None:
    with small_filesystem(tmp_path / "fs", 64) as fs:
        course = fs / "course"
        release = build_course(course)
        submit(course, "a_first", answer(release))
        first = grade_class(course, find_submissions(course, LAB, ("a_first",)), OPTIONS)
        assert [(r.status, r.score) for r in first] == [("graded", 2.0)]
        landed = results_path(course, "a_first", LAB).read_bytes()

        submit(course, "b_second", answer(release))
        filler = fill(fs)
        with pytest.raises(DiskFull) as info:  # the CLI prints it and exits 2, as any BadInput
            grade_class(course, find_submissions(course, LAB), OPTIONS)
        message = str(info.value)
        print(message)
        assert "no space left on the device while grading b_second/corpus" in message
        assert f"df -h {course}" in message
        assert "run the same command again" in message
        assert "the 1 submission(s) already landed are kept" in message
        assert results_path(course, "a_first", LAB).read_bytes() == landed
        assert not results_path(course, "b_second", LAB).exists()

        filler.unlink()
        resumed = {
            r.student: r for r in grade_class(course, find_submissions(course, LAB), OPTIONS)
        }
        assert (resumed["a_first"].status, resumed["a_first"].score) == ("unchanged", 2.0)
        assert (resumed["b_second"].status, resumed["b_second"].score) == ("graded", 2.0)
        assert results_path(course, "a_first", LAB).read_bytes() == landed


@needs_root_and_bwrap
def test_a_full_temporary_directory_stops_the_batch_before_any_score_is_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    course = tmp_path / "course"
    release = build_course(course)
    submit(course, "a_first", answer(release))
    with small_filesystem(tmp_path / "fs", 1) as fs:
        fill(fs)
        monkeypatch.setattr(tempfile, "tempdir", str(fs))
        with pytest.raises(DiskFull, match="while grading a_first/corpus") as info:
            grade_class(course, find_submissions(course, LAB), OPTIONS)
        assert f"df -h {fs}" in str(info.value)
        assert "the 0 submission(s) already landed" in str(info.value)
    assert not results_path(course, "a_first", LAB).exists()
    monkeypatch.setattr(tempfile, "tempdir", None)
    rows = grade_class(course, find_submissions(course, LAB), OPTIONS)
    assert [(r.status, r.score) for r in rows] == [("graded", 2.0)]

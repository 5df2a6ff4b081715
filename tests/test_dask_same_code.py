"""Does a Dask worker that runs other introdl code than the coordinator (a grader image built from
an older checkout) stop the batch, in words, before anything lands?

Real `dask scheduler` and `dask worker` processes on loopback; the worker imports introdl from a
copy of this package (PYTHONPATH), identical or with one file changed.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from distributed import Client

from introdl.grading.batch import grade_class
from introdl.grading.cluster.same_code import PACKAGE, fingerprint, refuse_other_code
from introdl.grading.errors import BadInput
from introdl.grading.submission import find_submissions
from tests.corpus_course import LAB
from tests.test_batch_workers import OPTIONS, course_with_class, needs_bwrap
from tests.test_dask_no_shared_disk import free_port

BIN = Path(sys.executable).parent


@contextmanager
def worker_importing(package_parent: Path, logs: Path) -> Iterator[str]:
    """A scheduler and one `dask worker` whose introdl is the one under PACKAGE_PARENT."""
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    scheduler = [BIN / "dask", "scheduler", "--host", "127.0.0.1", "--port", str(port)]
    worker = [BIN / "dask", "worker", address, "--name", "old", "--nthreads", "1"]
    env = {**os.environ, "PYTHONPATH": str(package_parent)}
    processes = [
        subprocess.Popen(
            [*command, "--no-dashboard"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=(logs / f"{command[1]}.log").open("w"),
            start_new_session=True,
        )
        for command in (scheduler, worker)
    ]
    try:
        with Client(address, timeout=60) as client:
            client.wait_for_workers(1, timeout=60)
        yield address
    finally:
        for process in reversed(processes):
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(15)


def copy_of_introdl(where: Path, change: bool) -> Path:
    shutil.copytree(PACKAGE, where / "introdl", ignore=shutil.ignore_patterns("__pycache__"))
    if change:
        grade = where / "introdl" / "grading" / "grade.py"
        grade.write_text(grade.read_text() + "\n# graded by other rules\n")
    return where


def test_the_fingerprint_follows_the_code(tmp_path: Path) -> None:
    same = copy_of_introdl(tmp_path / "same", change=False) / "introdl"
    other = copy_of_introdl(tmp_path / "other", change=True) / "introdl"
    assert fingerprint(same) == fingerprint(PACKAGE) != fingerprint(other)


@needs_bwrap
@pytest.mark.skipif(os.geteuid() != 0, reason="the bwrap sandbox is started as root")
def test_a_worker_with_other_introdl_code_stops_the_batch_before_anything_lands(
    tmp_path: Path,
) -> None:
    course, _ = course_with_class(tmp_path)
    logs = tmp_path / "logs"
    logs.mkdir()
    other = copy_of_introdl(tmp_path / "other", change=True)
    with (
        worker_importing(other, logs) as address,
        pytest.raises(BadInput, match=r"Dask worker old runs other introdl code .*grader image"),
    ):
        grade_class(course, find_submissions(course, LAB, ("a_right",)), OPTIONS, scheduler=address)
    assert not (course / "autograded").exists()

    # The same code in another place grades; a task sent with another fingerprint (a worker that
    # joined mid-batch with other code sees it so) is refused on the worker.
    same = copy_of_introdl(tmp_path / "same", change=False)
    with worker_importing(same, logs) as address:
        rows = grade_class(
            course, find_submissions(course, LAB, ("a_right",)), OPTIONS, scheduler=address
        )
        assert [(r.student, r.status, r.score) for r in rows] == [("a_right", "graded", 2.0)]
        with Client(address) as client:
            task = client.submit(refuse_other_code, "0" * 64, "old", pure=False)
            with pytest.raises(BadInput, match="runs other introdl code"):
                task.result(timeout=60)

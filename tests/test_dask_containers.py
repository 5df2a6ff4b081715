"""Do Dask workers that are containers of the course image grade a class as a local run does, even
when one of them is killed half way?

The workers are two containers of the grader image (docker/grader.Dockerfile: the course image
plus bubblewrap, built by tests/grader_image.py), each running `dask worker --nthreads 1`; the
scheduler is a real `dask scheduler` on this host; inside each worker the bwrap backend grades.

- Network: podman's default bridge, not the host's network. The scheduler listens on the
  bridge's gateway address only (10.88.0.1 here); each worker reaches it from a network namespace
  of its own, and the scheduler reaches the workers at their bridge addresses, as it would reach
  workers on other machines. Nothing listens on 0.0.0.0.
- Disk: the containers have no volume at all (checked with `podman inspect`): not the course,
  not its data, not a bundle cache. The course reaches them only as Dask ships it.
- Privileges: `--privileged`, what podman 4.3 (runc, cgroup v1, no AppArmor or SELinux on this
  host) needed here for the bwrap sandbox with every limit. With podman's defaults bwrap may not
  make its namespaces; with `--cap-add SYS_ADMIN,NET_ADMIN` alone (podman's own seccomp profile
  allows the namespace and mount calls once CAP_SYS_ADMIN is granted; bwrap needs CAP_NET_ADMIN
  to bring up the sandbox's loopback) it grades, but cgroup v1 is mounted read-only, so the
  sandbox has no memory and pids cgroups: `test_what_a_worker_container_needs_beyond_the_defaults`.

The class: lab1_tensorflow's demo students (introdl/cli/demo_students.py), whose
notebooks run at the smoke budget, one of them hostile (without the endless loop, which would
only cost 30 s: tests/test_demo_class.py covers it) and also trying the scheduler from its
sandbox. Graded once locally (`introdl grade --backend bwrap`) and on the containers (`introdl
grade --scheduler`) with the same seed: the same scores, test by test. Then again with one
worker container killed (`podman kill`) when the first result lands: each submission lands once,
with the local run's verdicts. The phases' wall times are printed (`pytest -s`; docs/cluster.md).
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import nbformat
import pytest
from distributed import Client

from introdl import cli
from introdl.cli.demo import LAB, build_course
from introdl.cli.demo_students import demo_notebooks, hostile_cells
from introdl.grading.batch import Row, grade_class
from introdl.grading.course import nbgrader
from introdl.grading.errors import BadInput
from introdl.grading.grade import GradeOptions
from introdl.grading.record.results import Results, results_path
from introdl.grading.submission import find_submissions
from tests import course_image, grader_image
from tests.podman import podman

pytestmark = pytest.mark.docker
ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SEED = 7
STUDENTS = ("ada", "ben", "cy", "dee", "eve")
# What the workers' containers get beyond the defaults (see the module docstring).
WORKER_PRIVILEGES = ("--privileged",)
TIMES: dict[str, float] = {}


def free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def reaches_scheduler(address: str) -> str:
    """A cell for the hostile student: try the scheduler's port from inside the sandbox."""
    host, port = address.removeprefix("tcp://").rsplit(":", 1)
    return (
        "import socket\n"
        "try:\n"
        f"    socket.create_connection(({host!r}, {port}), timeout=3).close()\n"
        "    print('SCHEDULER REACHED')\n"
        "except OSError as err:\n"
        "    print('scheduler unreachable:', type(err).__name__)"
    )


def write_class(course: Path, scheduler: str) -> None:
    """lab1_tensorflow released and the demo students' notebooks where `nbgrader collect` puts
    them; the hostile one without the endless loop and with a try at the scheduler."""
    build_course(ROOT, course)
    nbgrader("generate_assignment", LAB, "--force", "--log-level=WARN", cwd=course)
    source = nbformat.read(course / "source" / LAB / f"{LAB}.ipynb", as_version=4)
    release = nbformat.read(course / "release" / LAB / f"{LAB}.ipynb", as_version=4)
    notebooks = demo_notebooks(source, release, course)
    dee = notebooks["dee"]
    assert isinstance(dee, nbformat.NotebookNode)
    endless = hostile_cells(course)[-1].source
    dee.cells = [c for c in dee.cells if c.source != endless]
    dee.cells.append(nbformat.v4.new_code_cell(reaches_scheduler(scheduler)))
    for student in STUDENTS:
        folder = course / "submitted" / student / LAB
        folder.mkdir(parents=True)
        (folder / "timestamp.txt").write_text("2026-12-07 09:00:00.000000 UTC")
        notebook = notebooks[student]
        if isinstance(notebook, bytes):
            (folder / f"{LAB}.ipynb").write_bytes(notebook)
        else:
            nbformat.write(notebook, folder / f"{LAB}.ipynb")


def verdicts(course: Path) -> dict[str, Any]:
    """Per student: score, max score, each hidden test's (name, grade id, status, score, points),
    the errors and the notebook's cells' statuses: what must not depend on where it ran."""
    out = {}
    for student in STUDENTS:
        r = Results.read(results_path(course, student, LAB))
        out[student] = (
            r.score,
            r.max_score,
            [(t.name, t.grade_id, t.status, t.score, t.max_score) for t in r.tests],
            r.errors,
            [c.status for c in r.cells],
            (r.sandbox.backend, r.sandbox.sandboxed, r.sandbox.workdir_quota),
        )
    return out


def run_cli(course: Path, *args: str) -> int:
    """`introdl grade LAB ARGS` in this process, from the course directory."""
    here = Path.cwd()
    os.chdir(course)
    try:
        return cli.main(["grade", LAB, "--backend", "bwrap", "--seed", str(SEED), *args])
    finally:
        os.chdir(here)


@pytest.fixture(scope="module")
def podman_env() -> Iterator[dict[str, str]]:
    """podman configured as for the course image, with the grader image built (seconds)."""
    reason = course_image.unbuildable_reason()
    if reason is not None:
        pytest.skip(f"cannot build the images: {reason}")
    with tempfile.TemporaryDirectory(prefix="introdl-podman-conf-") as conf:
        env = course_image.config_env(Path(conf))
        took = grader_image.ensure_built(env)
        if took is not None:
            TIMES["build the grader image"] = took
        yield env


def bridge_gateway(env: dict[str, str]) -> str:
    """The host's address on podman's default bridge (up once any container has used it)."""
    found = podman(
        env, "network", "inspect", "podman", "--format", "{{range .Subnets}}{{.Gateway}}{{end}}"
    )
    gateway = found.stdout.strip()
    assert found.returncode == 0, found.stderr
    assert gateway, found.stdout
    addresses = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True).stdout
    if f"inet {gateway}/" not in addresses:
        podman(env, "run", "--rm", grader_image.IMAGE, "true", timeout=120)  # brings the bridge up
    return gateway


@contextmanager
def worker_containers(
    env: dict[str, str], logs: Path, workers: int, privileges: tuple[str, ...]
) -> Iterator[dict[str, Any]]:
    """A scheduler on the host's bridge address and WORKERS containers of the grader image, run
    with PRIVILEGES: its address, a client, worker name -> container name."""
    gateway = bridge_gateway(env)
    address = f"tcp://{gateway}:{free_port(gateway)}"
    logs.mkdir(exist_ok=True)
    scheduler = subprocess.Popen(
        [
            BIN / "dask",
            "scheduler",
            "--host",
            gateway,
            "--port",
            address.rsplit(":")[-1],
            "--no-dashboard",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(logs / "scheduler.log").open("w"),
        start_new_session=True,
    )
    containers = {f"w{i}": f"introdl-dask-test-{os.getpid()}-w{i}" for i in range(workers)}
    try:
        started = time.monotonic()
        for name, container in containers.items():
            run = podman(
                env,
                "run",
                "--detach",
                "--name",
                container,
                *privileges,
                "--env",
                "INTRODL_BUDGET=smoke",
                grader_image.IMAGE,
                "dask",
                "worker",
                address,
                "--name",
                name,
                "--nthreads",
                "1",
                "--no-dashboard",
                "--death-timeout",
                "60",  # a worker whose scheduler is gone exits (a crashed test leaves no worker)
                timeout=120,
            )
            assert run.returncode == 0, run.stderr
        with Client(address, timeout=60) as client:
            client.wait_for_workers(workers, timeout=120)
            TIMES[f"start {workers} worker container(s)"] = time.monotonic() - started
            yield {"address": address, "client": client, "containers": containers}
    finally:
        for container in containers.values():
            logs.joinpath(f"{container}.log").write_text(
                podman(env, "logs", container).stderr[-20000:]
            )
            podman(env, "rm", "--force", "--time", "5", container, timeout=120)
        os.killpg(scheduler.pid, signal.SIGTERM)
        try:
            scheduler.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(scheduler.pid, signal.SIGKILL)
            scheduler.wait()


def sandbox_cgroups(client: Client) -> list[dict[str, Any]]:
    """On each worker: which of the sandbox's cgroups (memory, pids) can be made, and notes."""

    def probe() -> dict[str, Any]:  # defined here, so Dask sends it by value
        from introdl.grading.sandbox.cgroups import Cgroups

        cgroups = Cgroups("container-probe", memory_bytes=2**30, pids=64)
        cgroups.create()
        made = sorted(cgroups.dirs)
        cgroups.remove()
        return {"made": made, "notes": cgroups.notes}

    return list(client.run(probe).values())


@pytest.fixture
def container_cluster(tmp_path: Path, podman_env: dict[str, str]) -> Iterator[dict[str, Any]]:
    """Two privileged worker containers and their scheduler."""
    with worker_containers(podman_env, tmp_path / "logs", 2, WORKER_PRIVILEGES) as cluster:
        yield {**cluster, "env": podman_env}


def test_worker_containers_grade_as_a_local_run_does_even_when_one_is_killed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, container_cluster: dict[str, Any]
) -> None:
    monkeypatch.setenv("INTRODL_BUDGET", "smoke")
    client: Client = container_cluster["client"]
    env: dict[str, str] = container_cluster["env"]
    containers: dict[str, str] = container_cluster["containers"]
    address: str = container_cluster["address"]
    course = tmp_path / "course"
    write_class(course, address)
    local = tmp_path / "local"
    shutil.copytree(course, local)

    # The workers share no disk with this host: no volume, and the course is not there.
    for container in containers.values():
        mounts = podman(env, "inspect", "--format", "{{json .Mounts}}", container)
        assert json.loads(mounts.stdout) == [], mounts.stdout
    assert set(client.run(os.path.exists, str(course)).values()) == {False}
    assert set(client.run(os.path.exists, str(ROOT / "grader_tests")).values()) == {False}

    # The sandbox's memory and pids cgroups can be made inside a worker container.
    assert sandbox_cgroups(client) == [{"made": ["memory", "pids"], "notes": []}] * 2

    started = time.monotonic()
    assert run_cli(local, "--workers", "2") == 0
    TIMES["local bwrap run, 2 workers"] = time.monotonic() - started
    home = verdicts(local)
    assert home["ada"][0] == home["ada"][1] > 0, home["ada"]
    assert home["eve"][0] == 0 < home["eve"][1], home["eve"]

    started = time.monotonic()
    assert run_cli(course, "--scheduler", address) == 0
    TIMES["2 worker containers (cold bundle caches)"] = time.monotonic() - started
    assert verdicts(course) == home
    executed = nbformat.read(results_path(course, "dee", LAB).with_name(f"{LAB}.ipynb"), 4)
    said = json.dumps(executed.cells[-1].get("outputs", []))
    assert "scheduler unreachable" in said, said
    assert "SCHEDULER REACHED" not in said, said

    # Again, with a worker container killed when the first result lands.
    landed: Counter[str] = Counter()
    killed: list[str] = []

    def kill_a_busy_worker(row: Row) -> None:
        landed[row.student] += 1
        if killed:
            return
        workers = client.scheduler_info()["workers"]
        for worker, keys in client.processing().items():
            if keys and worker in workers:
                container = containers[str(workers[worker]["name"])]
                done = podman(env, "kill", "--signal", "KILL", container, timeout=60)
                assert done.returncode == 0, done.stderr
                killed.append(container)
                TIMES["the kill, into that batch"] = time.monotonic() - started
                return

    started = time.monotonic()
    rows = grade_class(
        course,
        find_submissions(course, LAB),
        GradeOptions(backend="bwrap", seed=SEED),
        scheduler=address,
        force=True,
        on_row=kill_a_busy_worker,
    )
    TIMES["2 worker containers, one killed at the first result"] = time.monotonic() - started
    assert killed, "no worker was grading when the first result landed"
    state = podman(env, "inspect", "--format", "{{.State.Status}}", killed[0])
    assert state.stdout.strip() == "exited", state.stdout
    assert landed == dict.fromkeys(STUDENTS, 1)
    assert sorted(r.student for r in rows) == sorted(STUDENTS)
    assert verdicts(course) == home
    print("\n" + "\n".join(f"{what}: {seconds:.1f} s" for what, seconds in TIMES.items()))


@pytest.mark.parametrize(
    ("privileges", "grades"),
    [((), False), (("--cap-add", "SYS_ADMIN,NET_ADMIN"), True)],
    ids=["default", "cap-sys-admin-net-admin"],
)
def test_what_a_worker_container_needs_beyond_the_defaults(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    podman_env: dict[str, str],
    privileges: tuple[str, ...],
    grades: bool,
) -> None:
    """Without privileges bwrap may not make its namespaces: the batch stops before anything
    lands, saying what the container needs. With CAP_SYS_ADMIN and CAP_NET_ADMIN alone (podman's
    own seccomp profile, no AppArmor on this host) it grades, but cgroup v1 is read-only in the
    container, so the sandbox runs without its memory and pids cgroups."""
    monkeypatch.setenv("INTRODL_BUDGET", "smoke")
    with worker_containers(podman_env, tmp_path / "logs", 1, privileges) as cluster:
        course = tmp_path / "course"
        write_class(course, cluster["address"])
        (notes,) = [r["notes"] for r in sandbox_cgroups(cluster["client"])]
        assert any("memory cgroup not available" in note for note in notes), notes
        grade = functools.partial(
            grade_class,
            course,
            find_submissions(course, LAB, ("ada",)),
            GradeOptions(backend="bwrap", seed=SEED),
            scheduler=cluster["address"],
        )
        if not grades:
            with pytest.raises(BadInput, match=r"(?s)namespace.*--privileged.*NET_ADMIN"):
                grade()
            assert not (course / "autograded").exists()
            return
        (row,) = grade()
    assert (row.student, row.status, row.score) == ("ada", "graded", row.max_score)

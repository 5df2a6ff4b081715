"""The docker sandbox backend against a real engine: podman's Docker-compatible API on a socket.

The session starts ``podman system service`` on a unix socket under pytest's temporary directory
(configured by files, see tests/podman.py) and points DOCKER_HOST at it; the grading engine talks
to it through the Docker SDK exactly as it would to Docker. The test image is built once by
``scripts/podman-test-image``; without podman or the image these tests skip and say why.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import docker
from introdl.grading.door.student import Student, StudentError
from introdl.grading.errors import BadInput
from introdl.grading.kernel.kernel import SandboxedKernel
from introdl.grading.kernel.launch import start_kernel
from introdl.grading.sandbox import SANDBOX_WORKDIR, processes_of_uid
from introdl.grading.sandbox.docker import DockerSandbox, container_name
from introdl.grading.sandbox.limits import TEST_LIMITS, Limits
from introdl.grading.sandbox.working_copy import working_copy
from tests.podman import image_name, python_dirs
from tests.sandboxed import (
    FIXTURES,
    ROOT,
    assert_no_leftovers,
    fill_working_copy,
    run_fixture,
    test_slot,
)

pytestmark = pytest.mark.docker

LABEL = "introdl.sandbox"


@contextmanager
def docker_kernel(
    tmp_path: Path, *notebooks: str, limits: Limits = TEST_LIMITS, datadir: Path | None = None
) -> Iterator[SandboxedKernel]:
    """A docker-backend kernel over a working copy holding the fixture notebooks; checks cleanup."""
    workdir = tmp_path / "submission"
    workdir.mkdir()
    for notebook in notebooks:
        shutil.copy(FIXTURES / f"{notebook}.ipynb", workdir)
    kernel = start_kernel(
        workdir=workdir,
        datadir=datadir,
        backend="docker",
        image=image_name(),
        slot=test_slot(),
        limits=limits,
    )
    try:
        assert isinstance(kernel.sandbox, DockerSandbox)
        yield kernel
    finally:
        kernel.shutdown()
    assert kernel.cleanup_problems == []
    assert_no_leftovers(kernel)


def container_of(engine: Any, kernel: SandboxedKernel) -> Any:
    return engine.containers.get(container_name(kernel.sandbox.spec))


def assert_container_gone(engine: Any, kernel: SandboxedKernel) -> None:
    with pytest.raises(docker.errors.NotFound):
        container_of(engine, kernel)


def statuses(run) -> list[str]:  # type: ignore[no-untyped-def]
    return [cell.status for cell in run.cells]


def test_notebook_runs_in_a_container_and_the_student_door_works(
    tmp_path: Path, engine: Any
) -> None:
    """Does a submission run cell by cell in a container the engine created as asked, does the
    `Student` door call its functions, and is the container removed at shutdown?"""
    with docker_kernel(tmp_path, "submitted-numpy-functions") as kernel:
        container = container_of(engine, kernel)
        assert container.status == "running"
        assert container.labels[LABEL] == kernel.sandbox.spec.name
        host = container.attrs["HostConfig"]
        assert host["NetworkMode"] == "none"
        assert host["ReadonlyRootfs"] is True
        assert host["Memory"] == host["MemorySwap"] == TEST_LIMITS.memory_bytes
        assert host["PidsLimit"] == TEST_LIMITS.pids
        assert (
            container.attrs["Config"]["User"]
            == f"{kernel.sandbox.spec.uid}:{kernel.sandbox.spec.uid}"
        )

        run = run_fixture(kernel, "submitted-numpy-functions")
        assert set(statuses(run)) == {"ok"}, run.to_dict()
        assert "-1.41" in run.cells[-1].outputs[0]["data"]["text/plain"]
        student = Student(kernel)
        got = student.call("normalize", np.array([1.0, 2.0, 3.0, 4.0]))
        assert got.tolist() == pytest.approx([-1.3416, -0.4472, 0.4472, 1.3416], abs=1e-4)
        with pytest.raises(StudentError, match="ValueError: cannot handle 7"):
            student.call("fails", 7)
        assert kernel.sandbox.report()["backend"] == "docker"
    assert_container_gone(engine, kernel)


def test_container_has_no_network_no_privileges_and_a_read_only_system(
    tmp_path: Path, engine: Any
) -> None:
    """Inside the container: only loopback, the sandbox uid with no capabilities, the configured
    rlimits and cgroup limits, a read-only system, and writes only in the working copy and /tmp?"""
    data = tmp_path / "data"
    data.mkdir()
    (data / "songs.abc").write_text("X:1\n")
    data.chmod(0o755)
    notebooks = ("submitted-opens-network", "submitted-writes-outside")
    with docker_kernel(tmp_path, *notebooks, datadir=data) as kernel:
        for notebook in notebooks:
            run = run_fixture(kernel, notebook)
            assert set(statuses(run)) == {"ok"}, run.to_dict()
        student = Student(kernel)
        assert student.get("interfaces") == ["lo"]
        assert student.get("connected") == []
        assert student.get("escaped") == []
        assert student.get("data_files") == ["songs.abc"]
        inside = kernel.sandbox.spec.workdir / "inside.txt"
        assert inside.read_text() == "the working copy is writable"
        assert inside.stat().st_uid == kernel.sandbox.spec.uid

        student.run(
            "import os, resource\n"
            "_grader_ids = (os.getuid(), os.geteuid(), os.getgid())\n"
            "_grader_limits = {name: resource.getrlimit(getattr(resource, 'RLIMIT_' + name)) "
            "for name in ('NPROC', 'FSIZE', 'NOFILE', 'CPU', 'CORE')}\n"
            "_grader_status = {line.split(':')[0]: line.split(':')[1].strip() "
            "for line in open('/proc/self/status') if ':' in line}\n"
            "_grader_cgroup = [open(p).read().strip() for p in "
            "('/sys/fs/cgroup/memory/memory.limit_in_bytes', '/sys/fs/cgroup/pids/pids.max')]"
        )
        uid = kernel.sandbox.spec.uid
        assert uid != 0
        assert student.get("_grader_ids") == (uid, uid, uid)
        limits = student.get("_grader_limits")
        assert limits["NPROC"] == (TEST_LIMITS.nproc,) * 2
        assert limits["FSIZE"] == (TEST_LIMITS.file_size_bytes,) * 2
        assert limits["NOFILE"] == (TEST_LIMITS.open_files,) * 2
        assert limits["CPU"] == (TEST_LIMITS.cpu_seconds,) * 2
        assert limits["CORE"] == (0, 0)
        status = student.get("_grader_status")
        assert status["CapEff"] == status["CapPrm"] == status["CapBnd"] == "0000000000000000"
        assert status["NoNewPrivs"] == "1"
        assert student.get("_grader_cgroup") == [
            str(TEST_LIMITS.memory_bytes),
            str(TEST_LIMITS.pids),
        ]
        assert student.call("os.environ.get", "JPY_PARENT_PID") is None
        assert student.call("os.getcwd") == SANDBOX_WORKDIR

        # the system, the lab helpers and the (test-only, bind-mounted) Python are read-only
        for target in (
            "/etc/x",
            "/usr/x",
            "/x",
            "/opt/introdl/introdl/x",
            *(f"{p}/x" for p in python_dirs()),
        ):
            with pytest.raises(StudentError, match=r"Read-only file system|Permission denied"):
                student.run(f"open({target!r}, 'w')")
        # /tmp is a private tmpfs of the configured size
        half_tmp = TEST_LIMITS.tmp_bytes // 2 + 1
        with pytest.raises(StudentError, match="No space left on device"):
            student.run(
                "for name in ('/tmp/a', '/tmp/b'):\n"
                f"    with open(name, 'wb') as f:\n        f.write(bytes({half_tmp}))"
            )
        # the grader's checkout is not there
        with pytest.raises(StudentError, match="FileNotFoundError"):
            student.run(f"open({str(ROOT / 'pyproject.toml')!r}).read()")
        student.run("import introdl, os; _grader_pkg = os.path.dirname(introdl.__file__)")
        assert student.get("_grader_pkg") == "/opt/introdl/introdl"
    assert not Path("/tmp/scratch.txt").exists()
    assert sorted(p.name for p in data.iterdir()) == ["songs.abc"]


def test_infinite_loop_is_interrupted_and_the_next_cell_runs(tmp_path: Path, engine: Any) -> None:
    """Is a cell that never ends interrupted (by message, through the container) at its timeout?"""
    with docker_kernel(tmp_path, "submitted-infinite-loop") as kernel:
        run = run_fixture(kernel, "submitted-infinite-loop")
        assert statuses(run) == ["ok", "timeout", "ok"]
        assert TEST_LIMITS.cell_timeout <= run.cells[1].duration < TEST_LIMITS.cell_timeout + 5
        assert [e.kind for e in run.events] == ["cell_timeout"]
        assert Student(kernel).get("after") == 42
        assert container_of(engine, kernel).status == "running"


def test_kernel_that_ignores_the_interrupt_is_killed_with_its_container(
    tmp_path: Path, engine: Any
) -> None:
    """Is a kernel that swallows interrupts killed, its container removed before any shutdown?"""
    with docker_kernel(tmp_path, "submitted-ignores-interrupt") as kernel:
        run = run_fixture(kernel, "submitted-ignores-interrupt")
        assert statuses(run) == ["ok", "killed", "skipped"]
        # it sleeps: little CPU, so a first grading cannot blame it (tests/test_docker_busy_host.py)
        assert [e.kind for e in run.events] == ["cell_timeout", "host_busy", "kernel_killed"]
        assert not kernel.alive
        assert_container_gone(engine, kernel)
        assert processes_of_uid(kernel.sandbox.spec.uid) == []


def test_memory_hog_is_killed_at_the_memory_limit(tmp_path: Path, engine: Any) -> None:
    """Does the container's memory cgroup stop a submission that eats memory (not the host)?"""
    limits = dataclasses.replace(TEST_LIMITS, cell_timeout=30.0)  # filling 1 GiB takes a while
    with docker_kernel(tmp_path, "submitted-memory-hog", limits=limits) as kernel:
        run = run_fixture(kernel, "submitted-memory-hog")
        hog = run.cells[1]
        assert statuses(run) == ["ok", "died", "skipped"], run.to_dict()
        assert hog.duration < limits.cell_timeout
        assert [e.kind for e in run.events][:1] == ["kernel_died"]
        assert "signal 9" in run.events[0].detail
        assert isinstance(kernel.sandbox, DockerSandbox)
        state = kernel.sandbox.final_state()
        assert state is not None
        assert state["ExitCode"] == 137
        # podman 4.3.1 never sets OOMKilled here: its conmon sees the OOM kill but writes its
        # ``oom`` marker into its working directory. Docker sets it; then the run says so.
        if state["OOMKilled"]:
            assert "memory_exhausted" in [e.kind for e in run.events]


def test_missing_image_is_a_clear_error(tmp_path: Path, engine: Any) -> None:
    """With an engine but no such image, does start_kernel say which image and what to do?"""
    workdir = tmp_path / "submission"
    workdir.mkdir()
    with pytest.raises(BadInput, match=r"image localhost/no-such-image:1 is not available"):
        start_kernel(
            workdir=workdir,
            backend="docker",
            image="localhost/no-such-image:1",
            slot=test_slot(),
            limits=TEST_LIMITS,
        )


@pytest.mark.skipif(os.geteuid() != 0, reason="the working copy's quota is a tmpfs: root only")
def test_a_container_cannot_write_past_the_working_copy_quota(engine: Any) -> None:
    """Is the working copy's tmpfs quota what the container sees too (ENOSPC at the quota)?"""
    chunk = TEST_LIMITS.file_size_bytes // 2
    with working_copy(test_slot(), TEST_LIMITS) as copy:
        assert copy.quota == TEST_LIMITS.workdir_bytes
        kernel = start_kernel(
            workdir=copy.path,
            backend="docker",
            image=image_name(),
            slot=test_slot(),
            limits=TEST_LIMITS,
        )
        try:
            student = Student(kernel)
            student.run(fill_working_copy(chunk))
            assert student.get("failure") == "ENOSPC"
            assert TEST_LIMITS.workdir_bytes - chunk <= student.get("written")
            assert student.get("written") <= TEST_LIMITS.workdir_bytes
        finally:
            kernel.shutdown()
        assert kernel.cleanup_problems == []
    assert not copy.path.exists()


def test_a_warm_container_gets_the_submission_only_when_bound(tmp_path: Path, engine: Any) -> None:
    """With the docker backend, does a warm kernel (pool.py) start in a container over an empty
    /submission, see the submission's files once bound, grade as the cold path does, and is its
    container removed afterwards?"""
    from introdl.grading.grade import GradeOptions, grade_submission, warm_pool
    from introdl.grading.submission import find_submissions
    from tests.corpus_course import LAB, answer, build_course, submit

    course = tmp_path / "course"
    submit(course, "ada", answer(build_course(course)))
    sub = find_submissions(course, LAB)[0]
    options = GradeOptions(backend="docker", image=image_name(), seed=5, limits=TEST_LIMITS)
    with warm_pool(course, options, size=1, labs=(LAB,), slot=test_slot()) as pool:
        warm = pool.take(LAB)
        with warm:
            assert isinstance(warm.kernel.sandbox, DockerSandbox)
            listing = warm.kernel.execute(
                "import os; print(sorted(os.listdir('/submission')))", timeout=30
            )
            assert listing.outputs[0]["text"].strip() == "[]"
            warm.bind(sub, answer(build_course_release(course)))
            listing = warm.kernel.execute("print(sorted(os.listdir('/submission')))", timeout=30)
            assert listing.outputs[0]["text"].strip() == f"['{LAB}.ipynb']"
        assert_container_gone(engine, warm.kernel)
        graded = grade_submission(course, sub, options, slot=test_slot(), pool=pool)
    assert graded.results.score == 2
    assert graded.results.sandbox.backend == "docker"


def build_course_release(course: Path) -> Any:
    import nbformat

    from tests.corpus_course import LAB

    return nbformat.read(course / "release" / LAB / f"{LAB}.ipynb", as_version=4)

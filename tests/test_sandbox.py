"""The sandbox: what a submission can see, reach, write and spend (real bubblewrap)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from introdl.grading.door.student import Student, StudentError
from introdl.grading.errors import BadInput
from introdl.grading.sandbox import SANDBOX_WORKDIR, SandboxSpec, make_sandbox
from introdl.grading.sandbox.bwrap import python_roots
from introdl.grading.sandbox.docker import DockerSandbox, container_spec
from introdl.grading.sandbox.limits import TEST_LIMITS
from tests.sandboxed import ROOT, needs_bwrap, run_fixture, sandboxed_kernel, test_slot


def spec_for(tmp_path: Path, **changes: object) -> SandboxSpec:
    workdir = tmp_path / "work"
    workdir.mkdir(exist_ok=True)
    fields: dict[str, object] = {
        "workdir": workdir,
        "uid": 61000 + test_slot(),
        "name": "t",
        "limits": TEST_LIMITS,
    }
    fields.update(changes)
    return SandboxSpec(**fields)  # type: ignore[arg-type]


@needs_bwrap
def test_no_network_inside(tmp_path: Path) -> None:
    """Can a submission open a connection anywhere, even to loopback? No: only 'lo' exists."""
    with sandboxed_kernel(tmp_path, "submitted-opens-network") as kernel:
        run = run_fixture(kernel, "submitted-opens-network")
        assert [c.status for c in run.cells] == ["ok"]
        student = Student(kernel)
        assert student.get("connected") == []
        assert student.get("interfaces") == ["lo"]
        assert set(student.get("attempts").values()) <= {
            "gaierror",
            "OSError",
            "ConnectionRefusedError",
        }


@needs_bwrap
def test_course_files_and_secrets_are_invisible(tmp_path: Path) -> None:
    """Can a submission read the course repository, root's files or /etc secrets? No."""
    with sandboxed_kernel(tmp_path, "submitted-reads-hidden-tests") as kernel:
        run = run_fixture(kernel, "submitted-reads-hidden-tests")
        assert {c.status for c in run.cells} == {"ok"}
        student = Student(kernel)
        assert student.get("leaked") == []
        assert student.get("found") == []
        # only the bind targets exist; where Python lives outside the system directories
        # (a venv in a checkout, a pyenv under /root), only the path down to it is there
        expected_roots = {"bin", "dev", "etc", "lib", "lib64", "opt", "proc", "sbin"}
        expected_roots |= {"submission", "tmp", "usr", "work", "lib32", "libx32"}
        python_dirs = python_roots()
        expected_roots |= {path.parts[1] for path in python_dirs}
        assert set(student.get("visible_roots")) <= expected_roots
        for path in python_dirs:
            for parent in reversed(path.parents[:-1]):
                below = {
                    p.parts[len(parent.parts)] for p in python_dirs if p.is_relative_to(parent)
                }
                visible = set(student.call("os.listdir", str(parent)))
                if parent == Path("/tmp"):
                    # the sandbox's private /tmp (a venv under /tmp is bound into it): besides
                    # the path down to Python, only the kernel's own runtime dir and what the
                    # kernel wrote; nothing else of the host's /tmp
                    own = {kernel.runtime_dir.name, "ipython"}  # IPYTHONDIR=/tmp/ipython
                    host_only = set(os.listdir("/tmp")) - below - own
                    assert below <= visible
                    assert not visible & host_only, visible & host_only
                else:
                    assert visible == below, parent
        # the grader's own checkout (on the host) is not there either
        for path in [ROOT / "pyproject.toml", ROOT / "introdl" / "grading" / "door" / "student.py"]:
            assert path.exists()
            with pytest.raises(StudentError, match="FileNotFoundError"):
                student.run(f"open({str(path)!r}).read()")
        # the lab helpers are importable, read-only, without the rest of the repository
        student.run("import introdl, os; _grader_pkg = os.path.dirname(introdl.__file__)")
        assert student.get("_grader_pkg") == "/opt/introdl/introdl"
        assert student.call("os.listdir", "/opt/introdl") == ["introdl"]


@needs_bwrap
def test_writes_outside_the_working_copy_fail(tmp_path: Path) -> None:
    """Can a submission write anywhere but its working copy (and its private /tmp)? No."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "songs.abc").write_text("X:1\n")
    data.chmod(0o755)
    with sandboxed_kernel(tmp_path, "submitted-writes-outside", datadir=data) as kernel:
        run = run_fixture(kernel, "submitted-writes-outside")
        assert {c.status for c in run.cells} == {"ok"}, run.to_dict()
        student = Student(kernel)
        assert student.get("escaped") == []
        assert student.get("data_files") == ["songs.abc"]
        assert student.call("os.getcwd") == SANDBOX_WORKDIR
        inside = kernel.sandbox.spec.workdir / "inside.txt"
        assert inside.read_text() == "the working copy is writable"
        assert inside.stat().st_uid == kernel.sandbox.spec.uid
    assert not Path("/tmp/scratch.txt").exists()
    assert sorted(p.name for p in data.iterdir()) == ["songs.abc"]


@needs_bwrap
def test_runs_unprivileged_with_limits(tmp_path: Path) -> None:
    """Does the kernel run as the sandbox uid, with no capabilities and the configured rlimits?"""
    with sandboxed_kernel(tmp_path) as kernel:
        student = Student(kernel)
        student.run(
            "import os, resource\n"
            "_grader_ids = (os.getuid(), os.geteuid(), os.getgid(), os.getgroups())\n"
            "_grader_limits = {name: resource.getrlimit(getattr(resource, 'RLIMIT_' + name)) "
            "for name in ('NPROC', 'AS', 'FSIZE', 'NOFILE', 'CPU', 'CORE')}\n"
            "_grader_status = {line.split(':')[0]: line.split(':')[1].strip() "
            "for line in open('/proc/self/status') if ':' in line}"
        )
        uid = kernel.sandbox.spec.uid
        assert student.get("_grader_ids") == (uid, uid, uid, [])
        limits = student.get("_grader_limits")
        assert limits["NPROC"] == (TEST_LIMITS.nproc,) * 2
        assert limits["AS"] == (TEST_LIMITS.address_space_bytes,) * 2
        assert limits["FSIZE"] == (TEST_LIMITS.file_size_bytes,) * 2
        assert limits["NOFILE"] == (TEST_LIMITS.open_files,) * 2
        assert limits["CPU"] == (TEST_LIMITS.cpu_seconds,) * 2
        assert limits["CORE"] == (0, 0)
        status = student.get("_grader_status")
        assert status["CapEff"] == status["CapPrm"] == status["CapBnd"] == "0000000000000000"
        assert status["NoNewPrivs"] == "1"
        assert student.call("os.environ.get", "JPY_PARENT_PID") is None
        # a file past RLIMIT_FSIZE, and /tmp past its tmpfs size, are refused
        too_big = TEST_LIMITS.file_size_bytes + 1
        with pytest.raises(StudentError, match="File too large"):
            student.run(f"with open('big.bin', 'wb') as f:\n    f.write(bytes({too_big}))")
        half_tmp = TEST_LIMITS.tmp_bytes // 2 + 1
        with pytest.raises(StudentError, match="No space left on device"):
            student.run(
                "for name in ('/tmp/a', '/tmp/b'):\n"
                f"    with open(name, 'wb') as f:\n        f.write(bytes({half_tmp}))"
            )
        report = kernel.sandbox.report()
        assert report["sandboxed"] is True
        assert report["network"] is False
        assert report["uid"] == uid


@needs_bwrap
def test_fork_bomb_is_contained(tmp_path: Path) -> None:
    """Is a fork bomb held at the process limit, the kernel still working, and all of it gone after?"""
    with sandboxed_kernel(tmp_path, "submitted-fork-bomb") as kernel:
        run = run_fixture(kernel, "submitted-fork-bomb")
        assert [c.status for c in run.cells] == ["ok", "ok", "ok"], run.to_dict()
        student = Student(kernel)
        # the bomb filled the process table up to the limit (threads count too), and no further
        assert TEST_LIMITS.nproc // 2 <= student.get("n_procs") <= TEST_LIMITS.nproc + 1
        assert student.get("still_working") == 42
    # sandboxed_kernel checked that no process of the sandbox uid survived


def test_docker_container_spec_isolates_the_kernel(tmp_path: Path) -> None:
    """Does the Docker backend ask for no network, a read-only root, limits, a non-root user?"""
    data = tmp_path / "data"
    data.mkdir()
    ipc = tmp_path / "ipc"
    ipc.mkdir()
    spec = spec_for(tmp_path, datadir=data, shared_dirs=(ipc,))
    got = container_spec(spec, ["python", "-m", "ipykernel_launcher"], image="course:1", gpus=True)
    assert got["network_mode"] == "none"
    assert got["read_only"] is True
    assert got["user"] == f"{spec.uid}:{spec.uid}"
    assert spec.uid != 0
    assert got["cap_drop"] == ["ALL"]
    assert "no-new-privileges" in got["security_opt"]
    assert got["mem_limit"] == TEST_LIMITS.memory_bytes == got["memswap_limit"]
    assert got["pids_limit"] == TEST_LIMITS.pids
    assert "/tmp" in got["tmpfs"]
    assert got["volumes"] == {
        str(spec.workdir.resolve()): {"bind": SANDBOX_WORKDIR, "mode": "rw"},
        str(data.resolve()): {"bind": "/data", "mode": "ro"},
        str(ipc.resolve()): {"bind": str(ipc.resolve()), "mode": "rw"},
    }
    assert got["device_requests"] == [{"count": -1, "capabilities": [["gpu"]]}]
    assert got["environment"]["INTRODL_DATA_DIR"] == "/data"
    assert "JPY_PARENT_PID" not in got["environment"]
    assert "device_requests" not in container_spec(spec, ["python"], image="course:1")


def test_docker_without_an_engine_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no Docker engine answering, does the docker backend say so and what to do?"""
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-such-docker.sock")
    sandbox = make_sandbox("docker", spec_for(tmp_path))
    assert isinstance(sandbox, DockerSandbox)
    with pytest.raises(BadInput, match=r"no Docker engine answered.*--backend bwrap"):
        sandbox.setup()
    sandbox.cleanup()


def test_unknown_backend_is_bad_input(tmp_path: Path) -> None:
    """Is a misspelt backend name refused with the list of backends?"""
    with pytest.raises(BadInput, match="bwrap, docker, none"):
        make_sandbox("firejail", spec_for(tmp_path))


@needs_bwrap
def test_no_sandbox_only_by_name_and_says_so(tmp_path: Path) -> None:
    """Does the 'none' backend run the kernel unwrapped and report itself as not sandboxed?"""
    with sandboxed_kernel(tmp_path, backend="none") as kernel:
        assert kernel.sandbox.sandboxed is False
        assert "NOT SANDBOXED" in kernel.sandbox.report()["notes"][0]
        student = Student(kernel)
        student.run("import os; _grader_uid = os.getuid()")
        assert student.get("_grader_uid") == os.getuid()


@needs_bwrap
def test_refuses_to_expose_a_course_repository(tmp_path: Path) -> None:
    """Is a working copy that holds the course (nbgrader_config.py) refused before anything runs?"""
    spec = spec_for(tmp_path)
    (spec.workdir / "nbgrader_config.py").write_text("c = get_config()\n")
    sandbox = make_sandbox("bwrap", spec)
    with pytest.raises(BadInput, match="course repository"):
        sandbox.setup()
    sandbox.cleanup()


@needs_bwrap
def test_bwrap_command_masks_secrets_and_binds_only_what_is_needed(tmp_path: Path) -> None:
    """Does the bwrap command line cut the network, mask /etc secrets and leave the course out?"""
    spec = spec_for(tmp_path)
    sandbox = make_sandbox("bwrap", spec)
    sandbox.setup()
    try:
        argv = sandbox.wrap(["python", "-c", "pass"])
    finally:
        sandbox.cleanup()
    for flag in ("--unshare-net", "--unshare-pid", "--die-with-parent", "--clearenv"):
        assert flag in argv
    pairs = {(argv[i], argv[i + 1]) for i in range(len(argv) - 1)}
    if os.path.exists("/etc/shadow"):
        assert ("/dev/null", "/etc/shadow") in pairs
    sources = {argv[i + 1] for i, a in enumerate(argv) if a in ("--bind", "--ro-bind")}
    assert str(ROOT) not in sources
    assert "/root" not in sources
    assert "/work" not in sources
    assert str(spec.workdir.resolve()) in sources
    assert argv[-3:] == ["python", "-c", "pass"]
    assert shutil.which(argv[argv.index("setpriv")]) is not None


# /proc/self/mountinfo lines of a podman container on cgroup v1 (the host's cgroup namespace, the
# container's own subtree mounted), and of a host; real lines from this machine, 2026-12-07.
CONTAINER_MOUNTS = (
    "101 93 0:48 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime - tmpfs tmpfs rw,mode=755\n"
    "105 101 0:32 /libpod_parent/libpod-34d1 /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,"
    "relatime - cgroup cgroup rw,memory\n"
    "109 101 0:36 /libpod_parent/libpod-34d1 /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,"
    "relatime - cgroup cgroup rw,pids\n"
)
HOST_MOUNTS = "32 31 0:29 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n"


@pytest.mark.parametrize(
    ("own", "mountinfo", "expected"),
    [
        ("/libpod_parent/libpod-34d1", CONTAINER_MOUNTS, "/sys/fs/cgroup/pids"),
        ("/libpod_parent/libpod-34d1/worker", CONTAINER_MOUNTS, "/sys/fs/cgroup/pids/worker"),
        ("/process_api/7f", HOST_MOUNTS, "/sys/fs/cgroup/pids/process_api/7f"),
        ("/elsewhere", CONTAINER_MOUNTS, "/sys/fs/cgroup/pids/elsewhere"),  # not mounted here
    ],
)
def test_a_sandbox_finds_its_own_cgroup_in_a_container_too(
    own: str, mountinfo: str, expected: str
) -> None:
    """In a container /proc/self/cgroup names the host's path, but only the container's subtree
    is mounted: is the sandbox's parent cgroup found where it is mounted
    (tests/test_dask_containers.py makes the cgroups in real worker containers)?"""
    from introdl.grading.sandbox.cgroups import own_dir

    assert own_dir("pids", own, mountinfo) == Path(expected)


@needs_bwrap
def test_a_grader_with_a_strict_umask_still_reaches_the_kernel(tmp_path: Path) -> None:
    """A grader started with umask 077 (the production hub's services: docs/deploy.md) writes the
    kernel's request folders readable by the sandbox's uid all the same (they were 0700 root's:
    every call failed 'Permission denied ... request.json', found by the production check test)."""
    old = os.umask(0o077)
    try:
        with sandboxed_kernel(tmp_path, "submitted-numpy-functions") as kernel:
            run = run_fixture(kernel, "submitted-numpy-functions")
            assert {c.status for c in run.cells} == {"ok"}
            got = Student(kernel).call("normalize", np.array([1.0, 2.0, 3.0, 4.0]))
            assert got.round(4).tolist() == [-1.3416, -0.4472, 0.4472, 1.3416]
    finally:
        os.umask(old)

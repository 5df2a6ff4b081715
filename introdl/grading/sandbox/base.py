"""What every sandbox backend shares: the spec, the interface, the kernel's environment, the
uid sweep, and the ``none`` backend (`NoSandbox`). The factory is in the package's __init__."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import psutil

from introdl.grading.sandbox.limits import DEFAULT_LIMITS, Limits

BACKENDS = ("bwrap", "docker", "none")

# Where the submission and the public data appear inside a sandbox (bwrap and docker).
SANDBOX_WORKDIR = "/submission"
SANDBOX_DATADIR = "/data"
SANDBOX_HOME = "/tmp"

# A GPU count that asks for every GPU of the host: what `docker run --gpus all` sends (Count -1).
ALL_GPUS = -1


def gpu_count(gpus: int | None) -> int | None:
    """GPUs for the docker backend as a count: None none, `ALL_GPUS` all, N > 0 that many.

    True and False (the flag this once was) mean all and none; 0 and other negatives are refused
    (ValueError): a count of 0 would ask the engine for GPUs and get none.
    """
    if gpus is None or gpus is False:
        return None
    if gpus is True:
        return ALL_GPUS
    if isinstance(gpus, int) and (gpus == ALL_GPUS or gpus > 0):
        return gpus
    raise ValueError(
        f"gpus={gpus!r}: give None (no GPUs), {ALL_GPUS} (all) or a count of 1 or more"
    )


@dataclass(frozen=True)
class SandboxSpec:
    """What one sandbox exposes, for whom, under which limits."""

    workdir: Path  # the submission's working copy: the only writable place; chowned to `uid`
    uid: int  # unprivileged uid, distinct per concurrent sandbox (see limits.sandbox_uid)
    name: str  # unique per sandbox: names cgroups and containers
    datadir: Path | None = None  # public data, read-only
    shared_dirs: tuple[Path, ...] = ()  # read-write, same path inside (ipc sockets, exchange)
    readonly_dirs: tuple[Path, ...] = ()  # read-only, same path inside (the door's requests)
    # (host package directory, path inside): read-only packages, importable because the parent
    # of each path inside is put on PYTHONPATH (only the package is bound, never its repository)
    python_paths: tuple[tuple[Path, str], ...] = ()
    limits: Limits = DEFAULT_LIMITS
    env: Mapping[str, str] = field(default_factory=dict)  # extra environment for the kernel


class Sandbox(Protocol):
    """A place to run one kernel. `setup` before `wrap`; `cleanup` always, even after errors."""

    backend: str
    sandboxed: bool
    spec: SandboxSpec
    python: str  # the interpreter to start inside
    workdir_inside: str

    def setup(self) -> None:
        """Prepare host-side state (ownership, cgroups, images); raise BadInput when impossible."""

    def wrap(self, argv: Sequence[str]) -> list[str]:
        """The command line that runs `argv` inside the sandbox."""

    def kill(self) -> None:
        """Kill every process left in the sandbox (the launcher's own process is killed by its owner)."""

    def memory_exhausted(self) -> bool:
        """Whether the sandbox ran out of memory (OOM kill seen); False when it cannot tell."""

    def cpu_root(self, launcher_pid: int | None) -> int | None:
        """The host pid under which every process of the running sandbox lives, for the CPU
        meter (kernel/cpu.py); None when this host cannot see them. Asked once the kernel answers."""

    def cleanup(self) -> None:
        """Kill what is left and remove host-side state. Safe to call twice."""

    def report(self) -> dict[str, Any]:
        """What was enforced, for results.json: backend, sandboxed, uid, limits, cgroups, notes."""


def sandboxed_report(
    backend: str, uid: int, limits: Mapping[str, int | None], **extra: Any
) -> dict[str, Any]:
    """results.json's `sandbox` block of a real sandbox (bwrap, docker): what it enforced."""
    return {"backend": backend, "sandboxed": True, "uid": uid, **extra, "limits": dict(limits),
            "network": False}  # fmt: skip


def rlimits(limits: Limits) -> dict[str, int | None]:
    """The per-process limits both sandboxes set, as results.json names them."""
    return {
        "nproc": limits.nproc,
        "file_size_bytes": limits.file_size_bytes,
        "open_files": limits.open_files,
        "cpu_seconds": limits.cpu_seconds,
        "tmp_bytes": limits.tmp_bytes,
    }


def kernel_env(
    spec: SandboxSpec, *, workdir: str, datadir: str | None, path_dirs: Sequence[str]
) -> dict[str, str]:
    """The whole environment of a sandboxed kernel: nothing is inherited from the grader."""
    env = {
        "PATH": ":".join([*path_dirs, "/usr/local/bin", "/usr/bin", "/bin"]),
        "HOME": SANDBOX_HOME,
        "TMPDIR": "/tmp",
        "USER": "student",
        "LOGNAME": "student",
        "LANG": "C.UTF-8",
        "PWD": workdir,
        # site-packages are read-only; bytecode writes would only fail noisily
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONNOUSERSITE": "1",
        "MPLCONFIGDIR": "/tmp/matplotlib",
        "IPYTHONDIR": "/tmp/ipython",
        "JUPYTER_PLATFORM_DIRS": "1",
        "JUPYTER_RUNTIME_DIR": "/tmp/jupyter-runtime",
    }
    if datadir is not None:
        env["INTRODL_DATA_DIR"] = datadir  # the data registry's cache (introdl.data)
    env["INTRODL_OFFLINE"] = "1"  # no network inside: the registry must not try to download
    roots = list(dict.fromkeys(os.path.dirname(inside) for _, inside in spec.python_paths))
    if roots:
        env["PYTHONPATH"] = ":".join(roots)
    env.update(spec.env)
    return env


def chown_tree(root: Path, uid: int) -> list[str]:
    """Give `root` and everything below it to `uid`; returns the paths it refused to touch.

    Symlinks are changed themselves (never followed); files with several hard links are left
    alone, because a link could point at a file outside the working copy.
    """
    refused: list[str] = []
    for path in [root, *root.rglob("*")]:
        st = path.lstat()
        if not path.is_symlink() and path.is_file() and st.st_nlink > 1:
            refused.append(str(path))
            continue
        os.lchown(path, uid, uid)
    return refused


def processes_of_uid(uid: int) -> list[int]:
    """Pids of live (non-zombie) processes whose real uid is `uid`."""
    pids = []
    for proc in psutil.process_iter(["uids", "status"]):
        try:
            if proc.info["uids"].real == uid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                pids.append(proc.pid)
        except (psutil.Error, AttributeError):
            continue
    return pids


def kill_uid(uid: int, *, attempts: int = 20) -> int:
    """SIGKILL every process of the dedicated sandbox `uid` until none is left; returns how many.

    Only ever called with a sandbox uid (never 0): those uids belong to sandboxes alone.
    """
    if uid < 1000:
        raise ValueError(f"refusing to kill all processes of system uid {uid}")
    killed = 0
    for _ in range(attempts):
        pids = processes_of_uid(uid)
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except ProcessLookupError:
                pass
        time.sleep(0.05)
    return killed


class NoSandbox:
    """No isolation: the kernel runs as the grader's user, with the grader's files in reach."""

    backend = "none"
    sandboxed = False

    def __init__(self, spec: SandboxSpec) -> None:
        self.spec = spec
        self.python = sys.executable
        self.workdir_inside = str(spec.workdir.resolve())

    def setup(self) -> None:
        pass

    def wrap(self, argv: Sequence[str]) -> list[str]:
        datadir = str(self.spec.datadir.resolve()) if self.spec.datadir else None
        env = kernel_env(
            self.spec,
            workdir=self.workdir_inside,
            datadir=datadir,
            path_dirs=[os.path.dirname(self.python)],
        )
        env["HOME"] = env["TMPDIR"] = os.environ.get("TMPDIR", "/tmp")
        env["PYTHONPATH"] = ":".join(str(host.parent) for host, _ in self.spec.python_paths)
        return [
            "env",
            "-i",
            "-C",
            self.workdir_inside,
            *(f"{k}={v}" for k, v in env.items()),
            *argv,
        ]

    def kill(self) -> None:
        pass  # the kernel manager kills the kernel's process group; nothing else is known

    def memory_exhausted(self) -> bool:
        return False

    def cpu_root(self, launcher_pid: int | None) -> int | None:
        return launcher_pid

    def cleanup(self) -> None:
        pass

    def report(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "sandboxed": False,
            "uid": os.getuid(),
            "limits": {},
            "cgroups": {},
            "notes": ["NOT SANDBOXED: the submission ran as the grader's user with no limits"],
        }


# What bwrap prints when it may not make its namespaces (as in a container without privileges).
NAMESPACE_REFUSED = (
    "bwrap: Creating new namespace failed",
    "bwrap: loopback: Failed RTM_NEWADDR",
    "bwrap: Can't mount proc",
    "bwrap: No permissions to creating new namespace",
)


def startup_failure(kernel_log: str) -> str:
    """Why a sandboxed kernel died while starting, with what to do when bwrap lacked privileges."""
    said = f"the sandboxed kernel died while starting:\n{kernel_log}"
    if not any(line in kernel_log for line in NAMESPACE_REFUSED):
        return said
    return said + (
        "\nbubblewrap was not allowed to make the sandbox's namespaces: the grader must run as "
        "root with CAP_SYS_ADMIN and CAP_NET_ADMIN. In a container (a Dask grading worker), run "
        "it --privileged, or with --cap-add SYS_ADMIN,NET_ADMIN (then without the sandbox's "
        "memory and pids cgroups) and AppArmor unconfined where the host has it; docs/cluster.md"
    )

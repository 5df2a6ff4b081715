"""The bubblewrap sandbox: what a student kernel can see, touch and use.

Started as root, bwrap builds a fresh mount tree from a tmpfs: the system (/usr, /etc with its
secrets masked, the /lib and /bin links) and the Python installation read-only, a private /tmp,
/proc, a minimal /dev, and only three writable or data places: the submission's working copy
(``/submission``, the working directory), the public data (``/data``, read-only) and the directories
shared with the grader (ipc sockets, exchange), bound at their own paths. Inside new pid, net, ipc
and uts namespaces it drops to the sandbox uid with setpriv (no capabilities, no new privileges),
then prlimit caps processes, address space, file size, open files and CPU time.

Killing the outer bwrap process kills the whole pid namespace (``--die-with-parent``), so the
kernel manager's process-group kill takes every student process with it; `BwrapSandbox.kill` also
sweeps the cgroups and the sandbox uid.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from introdl.grading.errors import BadInput
from introdl.grading.sandbox.base import (
    SANDBOX_DATADIR,
    SANDBOX_WORKDIR,
    SandboxSpec,
    chown_tree,
    kernel_env,
    kill_uid,
    rlimits,
    sandboxed_report,
)
from introdl.grading.sandbox.cgroups import Cgroups

SYSTEM_DIRS = ("/usr", "/etc")
SYSTEM_LINKS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
# Masked inside /etc: password hashes, host keys, and tool configs that may hold tokens.
ETC_SECRETS = (
    "/etc/shadow",
    "/etc/shadow-",
    "/etc/gshadow",
    "/etc/gshadow-",
    "/etc/security/opasswd",
    "/etc/sudoers",
    "/etc/sudoers.d",
    "/etc/ssh",
    "/etc/ssl/private",
    "/etc/pip.conf",
    "/etc/npmrc",
    "/etc/gitconfig",
    "/etc/docker",
    "/etc/containers",
    "/etc/machine-id",
)
# A course repository is recognised by these; its hidden tests must never be bound in.
COURSE_MARKERS = ("nbgrader_config.py", "grader_tests", "gradebook.db")


def python_roots() -> list[Path]:
    """Directories the running interpreter needs: its prefix, base prefix and real executable."""
    candidates = {
        Path(sys.prefix),
        Path(sys.base_prefix),
        Path(sys.exec_prefix),
        Path(sys.base_exec_prefix),
        Path(os.path.realpath(sys.executable)).parent.parent,
    }
    roots: list[Path] = []
    for path in sorted(candidates, key=lambda p: len(p.parts)):
        if any(path.is_relative_to(system) for system in SYSTEM_DIRS):
            continue  # already visible through the system binds
        if any(path.is_relative_to(root) for root in roots):
            continue
        roots.append(path)
    return roots


def refuse_course_repo(path: Path) -> None:
    """Raise if `path` looks like (or holds) the course repository."""
    for marker in COURSE_MARKERS:
        if (path / marker).exists():
            raise BadInput(
                f"{path} holds {marker}: the sandbox would expose the course repository. "
                "Keep the Python environment, the working copy and the data outside the course "
                "folder (a venv inside it is fine: only the venv is bound)."
            )


class BwrapSandbox:
    """A bubblewrap sandbox for one kernel (see the module docstring for what it enforces)."""

    backend = "bwrap"
    sandboxed = True

    def __init__(self, spec: SandboxSpec) -> None:
        if spec.uid < 1000:
            raise BadInput(f"sandbox uid {spec.uid} is a system uid; use limits.sandbox_uid(slot)")
        if not shutil.which("bwrap") or not shutil.which("setpriv") or not shutil.which("prlimit"):
            raise BadInput(
                "the bwrap sandbox needs bubblewrap, setpriv and prlimit: "
                "apt-get install -y bubblewrap util-linux (or pass --sandbox docker)"
            )
        self.spec = spec
        self.python = sys.executable
        self.workdir_inside = SANDBOX_WORKDIR
        self.cgroups = Cgroups(
            spec.name, memory_bytes=spec.limits.memory_bytes, pids=spec.limits.pids
        )
        self.notes: list[str] = []
        self._state_dir: Path | None = None

    # --- lifecycle ---------------------------------------------------------------------------
    def setup(self) -> None:
        if os.geteuid() != 0:
            raise BadInput(
                "the bwrap sandbox must be started as root (it drops to the sandbox uid)"
            )
        for path in (self.spec.workdir, *(host for host, _ in self.spec.python_paths)):
            if not path.is_dir():
                raise BadInput(f"{path} is not a directory")
        for root in [*python_roots(), self.spec.workdir, *(h for h, _ in self.spec.python_paths)]:
            refuse_course_repo(root)
        if self.spec.datadir is not None:
            if not self.spec.datadir.is_dir():
                raise BadInput(f"data directory {self.spec.datadir} does not exist")
            refuse_course_repo(self.spec.datadir)
        refused = chown_tree(self.spec.workdir, self.spec.uid)
        if refused:
            self.notes.append(f"left {len(refused)} hard-linked file(s) owned by the grader")
        self._state_dir = Path(tempfile.mkdtemp(prefix=f"introdl-bwrap-{self.spec.name}-"))
        os.chmod(self._state_dir, 0o755)
        uid = self.spec.uid
        (self._state_dir / "passwd").write_text(
            f"root:x:0:0:root:/root:/bin/sh\nstudent:x:{uid}:{uid}:student:/tmp:/bin/sh\n"
            "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
        )
        (self._state_dir / "group").write_text(f"root:x:0:\nstudent:x:{uid}:\nnogroup:x:65534:\n")
        self.cgroups.create()

    def wrap(self, argv: Sequence[str]) -> list[str]:
        if self._state_dir is None:
            raise RuntimeError("BwrapSandbox.wrap called before setup")
        limits = self.spec.limits
        return [
            *self.cgroups.join_prefix(),
            "bwrap",
            *self._bwrap_args(),
            "setpriv",
            f"--reuid={self.spec.uid}",
            f"--regid={self.spec.uid}",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
            "--no-new-privs",
            "prlimit",
            f"--nproc={limits.nproc}",
            f"--as={limits.address_space_bytes}",
            f"--fsize={limits.file_size_bytes}",
            f"--nofile={limits.open_files}",
            f"--cpu={limits.cpu_seconds}",
            "--core=0",
            "--",
            *argv,
        ]

    def kill(self) -> None:
        self.cgroups.kill_all()
        kill_uid(self.spec.uid)

    def memory_exhausted(self) -> bool:
        return self.cgroups.oom_killed()

    def cpu_root(self, launcher_pid: int | None) -> int | None:
        return launcher_pid  # bwrap's pid namespace: every process descends from the launcher

    def cleanup(self) -> None:
        self.kill()
        self.cgroups.remove()
        if self._state_dir is not None:
            shutil.rmtree(self._state_dir, ignore_errors=True)
            self._state_dir = None

    def report(self) -> dict[str, Any]:
        limits = self.spec.limits
        enforced = {
            "address_space_bytes": limits.address_space_bytes,
            **rlimits(limits),
            "memory_bytes": limits.memory_bytes if "memory" in self.cgroups.dirs else None,
            "pids": limits.pids if "pids" in self.cgroups.dirs else None,
        }
        return {
            **sandboxed_report(self.backend, self.spec.uid, enforced),
            "cgroups": {c: c in self.cgroups.dirs for c in ("memory", "pids")},
            "notes": [*self.notes, *self.cgroups.notes],
        }

    # --- the mount tree ----------------------------------------------------------------------
    def _bwrap_args(self) -> list[str]:
        assert self._state_dir is not None
        spec = self.spec
        args = [
            "--unshare-pid",
            "--unshare-net",
            "--unshare-ipc",
            "--unshare-uts",
            "--hostname",
            "sandbox",
            "--die-with-parent",
            "--new-session",
            "--clearenv",
        ]
        present = {"/"}

        def mkdirs(path: str) -> None:
            # bwrap makes missing parents of a bind target 0700 root: unreadable for the uid
            parent = os.path.dirname(path)
            chain = []
            while parent not in present and parent != "/":
                chain.append(parent)
                parent = os.path.dirname(parent)
            for directory in reversed(chain):
                args.extend(["--perms", "0755", "--dir", directory])
                present.add(directory)

        def bind(flag: str, host: str, inside: str) -> None:
            mkdirs(inside)
            args.extend([flag, host, inside])
            present.add(inside)

        for directory in SYSTEM_DIRS:
            bind("--ro-bind", directory, directory)
        for link in SYSTEM_LINKS:
            if os.path.islink(link):
                args.extend(["--symlink", os.readlink(link), link])
            elif os.path.isdir(link):
                bind("--ro-bind", link, link)
        for secret in ETC_SECRETS:
            if os.path.isdir(secret) and not os.path.islink(secret):
                args.extend(["--tmpfs", secret])
            elif os.path.lexists(secret):
                args.extend(["--ro-bind", "/dev/null", secret])
        args.extend(["--ro-bind", str(self._state_dir / "passwd"), "/etc/passwd"])
        args.extend(["--ro-bind", str(self._state_dir / "group"), "/etc/group"])
        args.extend(["--proc", "/proc", "--dev", "/dev"])
        args.extend(["--perms", "1777", "--size", str(spec.limits.tmp_bytes), "--tmpfs", "/tmp"])
        args.extend(
            ["--perms", "1777", "--size", str(spec.limits.tmp_bytes), "--tmpfs", "/dev/shm"]
        )
        present.update({"/proc", "/dev", "/tmp"})
        for root in python_roots():
            bind("--ro-bind", str(root), str(root))
        for host, inside in spec.python_paths:
            bind("--ro-bind", str(host.resolve()), inside)
        for shared in spec.shared_dirs:
            bind("--bind", str(shared.resolve()), str(shared.resolve()))
        for readonly in spec.readonly_dirs:
            bind("--ro-bind", str(readonly.resolve()), str(readonly.resolve()))
        if spec.datadir is not None:
            bind("--ro-bind", str(spec.datadir.resolve()), SANDBOX_DATADIR)
        bind("--bind", str(spec.workdir.resolve()), SANDBOX_WORKDIR)
        args.extend(["--chdir", SANDBOX_WORKDIR])
        env = kernel_env(
            spec,
            workdir=SANDBOX_WORKDIR,
            datadir=SANDBOX_DATADIR if spec.datadir is not None else None,
            path_dirs=[os.path.dirname(self.python)],
        )
        for key, value in env.items():
            args.extend(["--setenv", key, value])
        args.extend(["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"])
        return args

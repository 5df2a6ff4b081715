"""cgroup v1 memory and pids limits for a sandbox, best effort.

Applied only where ``/sys/fs/cgroup/{memory,pids}`` exist and are writable (as on the course
machine, which has cgroup v1 and no systemd). Each sandbox gets a child of the grader's own cgroup,
so the grader's limits still cover it (in a container too, where only the container's own subtree
is mounted: `own_dir`). The launcher joins the cgroups before it execs bubblewrap, so every
process of the sandbox starts inside them.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import time
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")

# A shell prologue that joins cgroups, then execs the real command:
#   sh -c JOIN_SCRIPT sh N procs_file_1 ... procs_file_N command...
JOIN_SCRIPT = (
    'n=$1; shift; i=0; while [ "$i" -lt "$n" ]; do echo $$ > "$1" || exit 121; shift; '
    'i=$((i + 1)); done; exec "$@"'
)


def _own_cgroup(controller: str) -> str:
    """This process's cgroup path for a v1 controller ('/' when it is not listed)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            if controller in controllers.split(","):
                return path
    return "/"


def cgroup_mounts(mountinfo: str, controller: str) -> list[tuple[str, str]]:
    """(root of the hierarchy that is mounted, mount point) of each v1 mount of CONTROLLER."""
    found = []
    for line in mountinfo.splitlines():
        mount, sep, fs = line.partition(" - ")
        fields, fs_fields = mount.split(), fs.split()
        if not sep or len(fields) < 5 or len(fs_fields) < 3 or fs_fields[0] != "cgroup":
            continue
        if controller in fs_fields[2].split(","):
            root, point = (re.sub(r"\\([0-7]{3})", _octal, f) for f in fields[3:5])
            found.append((root, point))
    return found


def _octal(match: re.Match[str]) -> str:
    return chr(int(match.group(1), 8))


def own_dir(controller: str, own: str | None = None, mountinfo: str | None = None) -> Path:
    """This process's cgroup directory for a v1 controller, as this mount namespace sees it.

    /proc/self/cgroup names the cgroup from the hierarchy's root, but a container that shares the
    host's cgroup namespace (podman's and Docker's default on cgroup v1, privileged or not) has
    only its own subtree mounted at /sys/fs/cgroup/<controller>: /proc/self/mountinfo says which
    subtree is mounted where. Outside a container the two agree.
    """
    own = _own_cgroup(controller) if own is None else own
    if mountinfo is None:
        try:
            mountinfo = Path("/proc/self/mountinfo").read_text()
        except OSError:
            mountinfo = ""
    for root, point in cgroup_mounts(mountinfo, controller):
        relative = os.path.relpath(own, root)
        if relative == ".":
            return Path(point)
        if relative != ".." and not relative.startswith("../"):
            return Path(point) / relative
    return ROOT / controller / own.lstrip("/")


class Cgroups:
    """The memory and pids cgroups of one sandbox (those that could be made)."""

    def __init__(self, name: str, *, memory_bytes: int, pids: int) -> None:
        self.name = name
        self.memory_bytes = memory_bytes
        self.pids = pids
        self.dirs: dict[str, Path] = {}  # controller -> its cgroup, while it exists
        self.created: list[Path] = []  # every cgroup ever made, for checks after removal
        self.notes: list[str] = []

    def create(self) -> None:
        """Make the cgroups and set their limits; a controller that fails is noted and skipped."""
        settings = {
            "memory": [("memory.limit_in_bytes", self.memory_bytes)],
            "pids": [("pids.max", self.pids)],
        }
        for controller, values in settings.items():
            parent = own_dir(controller)
            if not (parent / "cgroup.procs").exists() or not os.access(parent, os.W_OK):
                self.notes.append(f"{controller} cgroup not available at {parent}")
                continue
            path = parent / f"introdl-{self.name}"
            try:
                path.mkdir(exist_ok=True)
                for filename, value in values:
                    (path / filename).write_text(str(value))
                if controller == "memory" and (path / "memory.memsw.limit_in_bytes").exists():
                    # without this, swap would let the sandbox exceed its memory limit
                    with contextlib.suppress(OSError):
                        (path / "memory.memsw.limit_in_bytes").write_text(str(self.memory_bytes))
            except OSError as err:
                self.notes.append(f"{controller} cgroup could not be set up: {err}")
                with contextlib.suppress(OSError):
                    path.rmdir()
                continue
            self.dirs[controller] = path
            self.created.append(path)

    def join_prefix(self) -> list[str]:
        """A command prefix that moves the launched process into the cgroups, then execs."""
        if not self.dirs:
            return []
        procs = [str(d / "cgroup.procs") for d in self.dirs.values()]
        return ["/bin/sh", "-c", JOIN_SCRIPT, "introdl-cgroup-join", str(len(procs)), *procs]

    def pids_inside(self) -> set[int]:
        found: set[int] = set()
        for path in self.dirs.values():
            with contextlib.suppress(OSError, ValueError):
                found.update(int(p) for p in (path / "cgroup.procs").read_text().split())
        return found

    def kill_all(self, *, attempts: int = 40) -> None:
        """SIGKILL every process in the cgroups until they are empty."""
        for _ in range(attempts):
            pids = self.pids_inside()
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.05)

    def oom_killed(self) -> bool:
        """Whether the memory cgroup's OOM killer has struck (or the limit is being hit now)."""
        path = self.dirs.get("memory")
        if path is None:
            return False
        with contextlib.suppress(OSError, ValueError):
            fields = dict(
                line.split() for line in (path / "memory.oom_control").read_text().splitlines()
            )
            return int(fields.get("oom_kill", "0")) > 0 or fields.get("under_oom") == "1"
        return False

    def remove(self) -> None:
        """Kill what is left, then remove the cgroup directories."""
        self.kill_all()
        for controller, path in list(self.dirs.items()):
            for _ in range(40):
                try:
                    path.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.05)  # the last processes are still exiting
            else:
                self.notes.append(f"could not remove {path}")
            del self.dirs[controller]

    def remove_if_empty(self) -> bool:
        """Remove this sandbox's cgroups (found by name) if no process is left in them."""
        removed = False
        for controller in ("memory", "pids"):
            path = own_dir(controller) / f"introdl-{self.name}"
            with contextlib.suppress(OSError, ValueError):
                if not (path / "cgroup.procs").read_text().split():
                    path.rmdir()
                    removed = True
        return removed

"""Starting a sandboxed kernel for one submission, and sweeping up after a crashed grader.

The runtime directory (under /tmp: unix socket paths are limited to 107 bytes) holds

- ``ipc/`` (sandbox uid, 0700): the connection file and the kernel's sockets, bound read-write;
- ``exchange/`` (sandbox uid, 0700): the door's answers, written by the kernel, bound read-write;
- ``requests/`` (root, 0755): the door's requests, written by the grader, bound read-only;
- ``kernelspec/``: the kernelspec of this one kernel (never visible inside).
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import tempfile
import time
from pathlib import Path

import psutil

import introdl
from introdl.grading.kernel.kernel import SandboxedKernel
from introdl.grading.sandbox import SandboxSpec, default_backend, make_sandbox
from introdl.grading.sandbox.cgroups import Cgroups
from introdl.grading.sandbox.limits import DEFAULT_LIMITS, Limits, sandbox_uid
from introdl.grading.sandbox.slots import SlotLock, claim
from introdl.grading.sandbox.working_copy import is_quota_mount, unmount

# The lab helpers (the package only, never its repository) are importable inside from here.
INTRODL_INSIDE = "/opt/introdl"
# Runtime dirs (introdl-k<name>-*) and sandbox state dirs (introdl-bwrap-<name>-*, -docker-)
LEFTOVER = re.compile(r"introdl-(?:k|bwrap-|docker-)(\d+-[0-9a-f]{8})-\w+")
# Working copies (introdl-work-<slot>-*): a tmpfs mounted on each where the grader is root
WORK_LEFTOVER = re.compile(r"introdl-work-\d+-\w+")


def start_kernel(
    *,
    workdir: Path,
    datadir: Path | None = None,
    backend: str | None = None,
    slot: int = 0,
    limits: Limits = DEFAULT_LIMITS,
    env: dict[str, str] | None = None,
    image: str | None = None,
    gpus: int | None = None,
    slot_lock: SlotLock | None = None,
) -> SandboxedKernel:
    """Start a kernel in a sandbox over `workdir` (a working copy: it is chowned to the sandbox).

    `backend` is ``bwrap``, ``docker`` or ``none`` (default: docker where a Docker socket exists,
    else bwrap). `slot` picks the sandbox uid; concurrent kernels need distinct slots. `env` is
    added to the kernel's otherwise empty environment (for example ``INTRODL_BUDGET``). `image`
    and `gpus` (None none, -1 all, N that many) are the docker backend's.
    `slot_lock`, when given, is a slot already claimed; the kernel releases it at shutdown.
    """
    # another grader on this machine may hold the slot asked for; a caller may hold it already
    # (a warm kernel's pool claims the slot first, to name its working copy)
    lock = slot_lock or claim(slot)
    slot = lock.slot
    try:
        return _start(workdir, datadir, backend, slot, limits, env, image, gpus, lock)
    except BaseException:
        lock.release()
        raise


def _start(
    workdir: Path,
    datadir: Path | None,
    backend: str | None,
    slot: int,
    limits: Limits,
    env: dict[str, str] | None,
    image: str | None,
    gpus: int | None,
    lock: SlotLock,
) -> SandboxedKernel:
    name = f"{slot}-{secrets.token_hex(4)}"
    # short: unix socket paths are limited to 107 bytes
    runtime_dir = Path(tempfile.mkdtemp(prefix=f"introdl-k{name}-", dir="/tmp"))
    os.chmod(runtime_dir, 0o755)
    uid = sandbox_uid(slot)
    for sub, owner, mode in (("ipc", uid, 0o700), ("exchange", uid, 0o700), ("requests", 0, 0o755)):
        (runtime_dir / sub).mkdir()
        os.chmod(runtime_dir / sub, mode)  # whatever the grader's umask (a hub may run with 077)
        os.chown(runtime_dir / sub, owner, owner)
    spec = SandboxSpec(
        workdir=workdir,
        uid=uid,
        name=name,
        datadir=datadir,
        shared_dirs=(runtime_dir / "ipc", runtime_dir / "exchange"),
        readonly_dirs=(runtime_dir / "requests",),
        python_paths=((Path(introdl.__file__).parent, f"{INTRODL_INSIDE}/introdl"),),
        limits=limits,
        env=env or {},
    )
    try:
        sandbox = make_sandbox(backend or default_backend(), spec, image=image, gpus=gpus)
    except BaseException:
        shutil.rmtree(runtime_dir, ignore_errors=True)
        raise
    kernel = SandboxedKernel(sandbox, runtime_dir, limits)
    kernel.slot_lock = lock
    try:
        sandbox.setup()
        kernel.start()
    except BaseException:
        kernel.shutdown()
        raise
    return kernel


def sweep_stale(root: Path | None = None, *, min_age: float = 600.0) -> list[str]:
    """Remove what the kernels of a crashed grader left behind; returns the paths removed.

    A normal `shutdown` leaves nothing; a grader killed with SIGKILL leaves its runtime and state
    directories (its sandboxes die with it: ``--die-with-parent``), empty cgroups, and its
    working copies (tmpfs mounts where root: memory until unmounted). A directory
    counts as stale when it is older than `min_age` seconds and no running process mentions it on
    its command line (a live kernel's bwrap does). Run it before a batch, not during one.
    """
    root = root or Path(tempfile.gettempdir())
    mentioned: set[str] = set()
    for proc in psutil.process_iter(["cmdline"]):
        mentioned.update(proc.info["cmdline"] or [])
    live = " ".join(mentioned)
    removed: list[str] = []
    names: set[str] = set()
    now = time.time()
    for path in sorted(root.glob("introdl-*")):
        match = LEFTOVER.fullmatch(path.name)
        work = WORK_LEFTOVER.fullmatch(path.name) is not None
        if (match is None and not work) or not path.is_dir() or path.is_symlink():
            continue
        if now - path.stat().st_mtime < min_age or str(path) in live:
            continue
        if work and is_quota_mount(path):
            unmount(path)
        shutil.rmtree(path, ignore_errors=True)
        removed.append(str(path))
        if match is not None:
            names.add(match.group(1))
    for name in sorted(names):
        if Cgroups(name, memory_bytes=0, pids=0).remove_if_empty():
            removed.append(f"cgroups introdl-{name}")
    return removed

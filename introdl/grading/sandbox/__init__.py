"""Sandboxes for student kernels: one interface, three backends chosen by name.

- ``bwrap`` (bubblewrap; see `bwrap.py`): namespaces, a read-only system, only the
  submission's working copy writable, no network, an unprivileged uid, rlimits, cgroup v1 limits
  where writable. The default on a machine without Docker, and what the tests use.
- ``docker`` (see `docker.py`): the course image with ``--network none``.
- ``none``: runs the kernel unwrapped as the grader's own user. Only when asked for by name; it
  reports ``sandboxed = False`` and results must say so.

A sandbox turns a command line into a sandboxed command line (`Sandbox.wrap`); the kernel manager
launches that. Paths the kernel and the grader share (the ipc sockets, the door's exchange) are
bound at the same absolute path inside and out, so connection files need no translation.

The folder, from the bottom: `limits.py` (every limit, and a lab's own `limits.toml`), `slots.py`
(machine-wide sandbox uids), `cgroups.py`, `working_copy.py` (the submission's tmpfs copy),
`public_data.py` (the read-only data view), `base.py` (spec, interface, ``none``), then the
backends `bwrap.py` and `docker.py`. Only this factory imports the backends.
"""

from __future__ import annotations

from pathlib import Path

from introdl.grading.errors import BadInput
from introdl.grading.sandbox.base import (
    ALL_GPUS,
    BACKENDS,
    SANDBOX_DATADIR,
    SANDBOX_HOME,
    SANDBOX_WORKDIR,
    NoSandbox,
    Sandbox,
    SandboxSpec,
    chown_tree,
    gpu_count,
    kernel_env,
    kill_uid,
    processes_of_uid,
    startup_failure,
)

__all__ = [
    "ALL_GPUS",
    "BACKENDS",
    "SANDBOX_DATADIR",
    "SANDBOX_HOME",
    "SANDBOX_WORKDIR",
    "NoSandbox",
    "Sandbox",
    "SandboxSpec",
    "chown_tree",
    "default_backend",
    "gpu_count",
    "kernel_env",
    "kill_uid",
    "make_sandbox",
    "processes_of_uid",
    "startup_failure",
]


def make_sandbox(
    backend: str, spec: SandboxSpec, *, image: str | None = None, gpus: int | None = None
) -> Sandbox:
    """The sandbox called `backend` (``bwrap``, ``docker`` or ``none``) for `spec`.

    `image` and `gpus` (a count, see `gpu_count`) are the docker backend's; another backend
    given either is refused, never silently run without them.
    """
    count = gpu_count(gpus)
    if backend != "docker" and (image is not None or count is not None):
        asked = [f"image {image}"] if image is not None else []
        asked += [f"GPUs ({count})"] if count is not None else []
        raise BadInput(
            f"the {backend} sandbox runs no container image and passes no GPUs (asked for: "
            f"{', '.join(asked)}): grade with the docker backend, or without them"
        )
    if backend == "bwrap":
        from introdl.grading.sandbox.bwrap import BwrapSandbox

        return BwrapSandbox(spec)
    if backend == "docker":
        from introdl.grading.sandbox.docker import DockerSandbox

        return DockerSandbox(spec, image=image, gpus=count)
    if backend == "none":
        return NoSandbox(spec)
    raise BadInput(f"unknown sandbox backend {backend!r}; use one of {', '.join(BACKENDS)}")


def default_backend() -> str:
    """``docker`` where a Docker socket exists, else ``bwrap`` (never ``none``)."""
    return "docker" if Path("/var/run/docker.sock").exists() else "bwrap"

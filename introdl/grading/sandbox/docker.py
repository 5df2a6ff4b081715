"""The Docker sandbox: the kernel runs in a container of the course image, through the Docker SDK.

The container has no network (``network_mode="none"``), a read-only root with a tmpfs /tmp, memory
and pids limits, no capabilities, the sandbox uid, and only the working copy (read-write), the
public data and the grader-shared directories (ipc sockets and exchange, at their own paths)
mounted. GPUs are passed with a device request when asked for (`container_spec`: what
``docker run --gpus all`` or ``--gpus N`` sends). Any engine with the Docker API works (Docker, or
``podman system service``).

The kernel manager launches a command, so `DockerSandbox.wrap` returns one: this module run as
``python -m introdl.grading.sandbox.docker SPEC.json COMMAND...``, which creates the container,
relays its output and exit code, and removes it when stopped. `DockerSandbox.kill` and `cleanup`
remove the container by name, so it does not outlive a SIGKILLed launcher.

Tested against podman 4.3 (tests/test_docker_backend.py). There, ``init=True`` needs catatonit on
the engine's host, a read-only container also gets podman's own tmpfs on /run and /var/tmp
(unsized, but charged to the memory cgroup), and an OOM kill is never reported as
``OOMKilled`` (conmon writes its marker to the wrong directory), so `memory_exhausted` says False
there; Docker reports it. podman 4.3 also accepts a GPU request and drops it (the container it
creates has no ``DeviceRequests`` and no devices; tests/test_docker_gpus.py): the launcher
refuses such a container, saying so, rather than grade a GPU course without its GPUs. Docker on
a host without the NVIDIA Container Toolkit refuses the request when the container starts
("could not select device driver"); the launcher says that in words too (not run here: no
Docker engine).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from introdl.grading.errors import BadInput
from introdl.grading.sandbox.base import (
    ALL_GPUS,
    SANDBOX_DATADIR,
    SANDBOX_WORKDIR,
    SandboxSpec,
    chown_tree,
    gpu_count,
    kernel_env,
    rlimits,
    sandboxed_report,
)

DEFAULT_IMAGE = "introdl-course:latest"
CONTAINER_PYTHON = "python"
# The launcher writes the container's final ``State`` here (next to the spec file).
STATE_FILE = "state.json"


def container_spec(
    spec: SandboxSpec, command: Sequence[str], *, image: str, gpus: int | None = None
) -> dict[str, Any]:
    """Keyword arguments for ``client.containers.create`` (JSON-serialisable).

    `gpus` (see `gpu_count`): None asks for none; -1 every GPU, N that many, as a device request
    with the ``gpu`` capability, which is what ``docker run --gpus all`` (``--gpus N``) sends.
    """
    limits = spec.limits
    volumes: dict[str, dict[str, str]] = {
        str(spec.workdir.resolve()): {"bind": SANDBOX_WORKDIR, "mode": "rw"}
    }
    if spec.datadir is not None:
        volumes[str(spec.datadir.resolve())] = {"bind": SANDBOX_DATADIR, "mode": "ro"}
    for shared in spec.shared_dirs:
        volumes[str(shared.resolve())] = {"bind": str(shared.resolve()), "mode": "rw"}
    for readonly in spec.readonly_dirs:
        volumes[str(readonly.resolve())] = {"bind": str(readonly.resolve()), "mode": "ro"}
    for host, inside in spec.python_paths:
        volumes[str(host.resolve())] = {"bind": inside, "mode": "ro"}
    env = kernel_env(
        spec,
        workdir=SANDBOX_WORKDIR,
        datadir=SANDBOX_DATADIR if spec.datadir is not None else None,
        path_dirs=[],
    )
    tmpfs_options = f"rw,nosuid,nodev,size={limits.tmp_bytes},mode=1777"
    result: dict[str, Any] = {
        "image": image,
        "command": list(command),
        "name": container_name(spec),
        "labels": {"introdl.sandbox": spec.name},
        "user": f"{spec.uid}:{spec.uid}",
        "working_dir": SANDBOX_WORKDIR,
        "environment": env,
        "network_mode": "none",
        "read_only": True,
        "tmpfs": {"/tmp": tmpfs_options, "/dev/shm": tmpfs_options},
        "volumes": volumes,
        "mem_limit": limits.memory_bytes,
        "memswap_limit": limits.memory_bytes,
        "pids_limit": limits.pids,
        "ulimits": [
            {"name": "nproc", "soft": limits.nproc, "hard": limits.nproc},
            {"name": "fsize", "soft": limits.file_size_bytes, "hard": limits.file_size_bytes},
            {"name": "nofile", "soft": limits.open_files, "hard": limits.open_files},
            {"name": "cpu", "soft": limits.cpu_seconds, "hard": limits.cpu_seconds},
            {"name": "core", "soft": 0, "hard": 0},
        ],
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "ipc_mode": "private",
        "init": True,
        "stdin_open": False,
        "detach": True,
    }
    count = gpu_count(gpus)
    if count is not None:
        result["device_requests"] = [{"count": count, "capabilities": [["gpu"]]}]
    return result


def gpus_flag(count: int) -> str:
    """How `introdl grade` spells a GPU count: ``--gpus all`` or ``--gpus N``."""
    return "--gpus all" if count == ALL_GPUS else f"--gpus {count}"


def container_name(spec: SandboxSpec) -> str:
    return f"introdl-sandbox-{spec.name}"


def in_container(pid: int, container_id: str) -> bool:
    """Whether host process PID is in the cgroup of the container CONTAINER_ID (docker's
    ``docker-<id>.scope`` or ``/docker/<id>``, podman's ``libpod-<id>``): its full id, 64 hex."""
    if pid <= 0 or len(container_id) < 32:
        return False
    try:
        with open(f"/proc/{pid}/cgroup") as fh:
            return container_id in fh.read()
    except OSError:
        return False


def docker_client() -> Any:
    """A Docker API client that has answered a ping, or BadInput saying how to get one."""
    try:
        import docker

        client = docker.from_env(timeout=10)
        client.ping()
    except Exception as err:
        raise BadInput(
            f"no Docker engine answered ({type(err).__name__}: {err}). Start Docker (or "
            "`podman system service` with DOCKER_HOST pointing at its socket), "
            "or grade with --backend bwrap"
        ) from None
    return client


class DockerSandbox:
    """A container per kernel; see the module docstring."""

    backend = "docker"
    sandboxed = True

    def __init__(
        self, spec: SandboxSpec, *, image: str | None = None, gpus: int | None = None
    ) -> None:
        self.spec = spec
        self.image = image or DEFAULT_IMAGE
        self.gpus = gpu_count(gpus)
        self.python = CONTAINER_PYTHON
        self.workdir_inside = SANDBOX_WORKDIR
        self.notes: list[str] = []
        self._client: Any = None
        self._state_dir: Path | None = None
        self._oom = False

    def setup(self) -> None:
        self._client = docker_client()
        try:
            self._client.images.get(self.image)
        except Exception:
            raise BadInput(
                f"the Docker image {self.image} is not available: build it from docker/ "
                "or pass another image"
            ) from None
        refused = chown_tree(self.spec.workdir, self.spec.uid)
        if refused:
            self.notes.append(f"left {len(refused)} hard-linked file(s) owned by the grader")
        self._state_dir = Path(tempfile.mkdtemp(prefix=f"introdl-docker-{self.spec.name}-"))

    def wrap(self, argv: Sequence[str]) -> list[str]:
        if self._state_dir is None:
            raise RuntimeError("DockerSandbox.wrap called before setup")
        spec_file = self._state_dir / "container.json"
        create = container_spec(self.spec, argv, image=self.image, gpus=self.gpus)
        # The command goes on the launcher's own command line, not in the file: the kernel
        # manager fills in ``{connection_file}`` in the argv it launches, never inside files.
        del create["command"]
        spec_file.write_text(json.dumps(create))
        return [sys.executable, "-m", "introdl.grading.sandbox.docker", str(spec_file), *argv]

    def _container(self) -> Any:
        if self._client is None:
            return None
        try:
            return self._client.containers.get(container_name(self.spec))
        except Exception:
            return None

    def kill(self) -> None:
        container = self._container()
        if container is not None:
            try:
                self._oom = self._oom or bool(container.attrs["State"].get("OOMKilled"))
                container.remove(force=True)
            except Exception as err:
                self.notes.append(f"could not remove container: {err}")

    def final_state(self) -> dict[str, Any] | None:
        """The container's last ``State`` (ExitCode, OOMKilled, ...) once it ended on its own.

        None while it runs, or when it was killed by the grader (the launcher died first).
        """
        if self._state_dir is None:
            return None
        try:
            state = json.loads((self._state_dir / STATE_FILE).read_text())
        except (OSError, ValueError):
            return None
        return state if isinstance(state, dict) else None

    def memory_exhausted(self) -> bool:
        container = self._container()
        if container is not None:
            with contextlib.suppress(Exception):
                self._oom = self._oom or bool(container.attrs["State"].get("OOMKilled"))
        state = self.final_state()  # the container ended and the launcher has removed it
        if state is not None:
            self._oom = self._oom or bool(state.get("OOMKilled"))
        return self._oom

    def cpu_root(self, launcher_pid: int | None) -> int | None:
        """The container's init process as this host sees it (``State.Pid``), on a local engine.

        Trusted only when ``/proc/PID/cgroup`` names the container's id: an engine on another
        host (DOCKER_HOST=tcp://...) reports a pid of its own host, which here is nobody's or
        someone else's, and then the meter has nothing to read (None: today's verdicts).
        """
        container = self._container()
        if container is None:
            return None
        pid = container.attrs.get("State", {}).get("Pid")
        return pid if isinstance(pid, int) and in_container(pid, container.id) else None

    def cleanup(self) -> None:
        self.kill()
        if self._state_dir is not None:
            shutil.rmtree(self._state_dir, ignore_errors=True)
            self._state_dir = None

    def report(self) -> dict[str, Any]:
        limits = self.spec.limits
        enforced = {"memory_bytes": limits.memory_bytes, "pids": limits.pids, **rlimits(limits)}
        return {
            **sandboxed_report(
                self.backend, self.spec.uid, enforced, image=self.image, gpus=self.gpus
            ),
            "cgroups": {"memory": True, "pids": True},
            "notes": list(self.notes),
        }


def main(argv: Sequence[str]) -> int:
    """``SPEC.json COMMAND...``: run COMMAND in a container made from the spec file.

    Relays the container's output, and on exit (or SIGTERM) removes the container. Before that it
    leaves the container's final state next to the spec file (`STATE_FILE`), because the grader
    asks whether memory ran out only after this launcher has exited and the container is gone.
    A GPU request the engine refuses or drops ends it at once with one line naming ``--gpus``
    (the grader shows it as why the kernel did not start).
    """
    from docker.errors import APIError

    spec_file = Path(argv[0])
    spec = json.loads(spec_file.read_text())
    spec["command"] = list(argv[1:])
    client = docker_client()
    gpus = next((r["count"] for r in spec.get("device_requests", ())), None)
    container: Any = None

    def stop(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)  # the finally clause removes the container

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the kernel is interrupted by message
    try:
        try:
            container = client.containers.create(**spec)
            if gpus is not None and not container.attrs.get("HostConfig", {}).get("DeviceRequests"):
                print(gpu_refusal(gpus, dropped=True), file=sys.stderr)
                return GPU_REFUSED
            container.start()
        except APIError as err:
            if gpus is None:
                raise
            said = getattr(err, "explanation", None) or str(err)
            print(gpu_refusal(gpus, explanation=said), file=sys.stderr)
            return GPU_REFUSED
        for chunk in container.logs(stream=True, follow=True):
            sys.stdout.buffer.write(chunk)
            sys.stdout.flush()
        status = container.wait()
        container.reload()
        partial = spec_file.with_name(STATE_FILE + ".part")
        partial.write_text(json.dumps(container.attrs.get("State", {})))
        partial.replace(spec_file.with_name(STATE_FILE))
        return int(status.get("StatusCode", 1))
    finally:
        if container is not None:
            with contextlib.suppress(Exception):  # already gone: the grader removed it
                container.remove(force=True)


GPU_REFUSED = 125  # the launcher's exit code when the engine will not give the GPUs asked for


def gpu_refusal(count: int, *, dropped: bool = False, explanation: str = "") -> str:
    """One line for the grader: the engine would not run the kernel with the GPUs asked for."""
    engine = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    if dropped:
        why = (
            "accepted the container but dropped its GPU request (the container has no "
            "DeviceRequests: podman's Docker API ignores them)"
        )
    else:
        why = f"refused the GPU request ({explanation})"
    return (
        f"introdl: the Docker engine at {engine} {why}, so {gpus_flag(count)} cannot be "
        "honoured: grade on Docker with the NVIDIA Container Toolkit (docs/deploy.md), "
        "or without --gpus"
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

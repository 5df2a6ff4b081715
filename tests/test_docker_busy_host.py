"""A busy grading host is not slow student code in the docker backend either.

On a local engine the CPU meter (introdl/grading/kernel/cpu.py) reads the container's processes
on this host, from its init process (``State.Pid``); here the engine is podman (tests/podman.py).
The same three cases as tests/test_busy_host.py (bwrap): code that computes past a cell's timeout
keeps today's verdict, code that sleeps past it and a container the host never schedules
(SIGSTOP) are the host's.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from introdl.grading.kernel import cpu
from introdl.grading.sandbox.docker import container_name, in_container
from introdl.grading.sandbox.limits import TEST_LIMITS
from tests.test_busy_host import SPIN
from tests.test_docker_backend import docker_kernel

pytestmark = pytest.mark.docker

LIMITS = dataclasses.replace(TEST_LIMITS, cell_timeout=2.0, call_timeout=2.0, interrupt_grace=1.0)


@contextlib.contextmanager
def frozen(pids: list[int]) -> Iterator[None]:
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


def test_the_meter_reads_the_containers_processes_and_tells_a_busy_host(
    tmp_path: Path, engine: Any
) -> None:
    """Is the meter rooted at the container's init, and does it tell computing past a timeout
    (the student's) from sleeping past it and from a frozen container (the host's)?"""
    with docker_kernel(tmp_path, limits=LIMITS) as kernel:
        container = engine.containers.get(container_name(kernel.sandbox.spec))
        root = kernel.meter.root
        assert root is not None
        assert root == container.attrs["State"]["Pid"]
        assert in_container(root, container.id)
        assert any(is_kernel(pid) for pid in cpu.tree(root)), "the kernel is below the root"

        spun = kernel.execute(SPIN, timeout=LIMITS.cell_timeout, cell=0)
        assert spun.status == "timeout", spun
        assert spun.judgement is not None
        assert spun.judgement.kind == "student", spun.judgement
        assert spun.judgement.cpu is not None
        assert spun.judgement.cpu > 1.0

        slept = kernel.execute("import time; time.sleep(30)", timeout=LIMITS.cell_timeout, cell=1)
        assert slept.judgement is not None
        assert slept.judgement.kind == "busy", slept.judgement
        assert cpu.AGAIN in slept.judgement.words

        with frozen(cpu.tree(root)):
            result = kernel.execute("x = 1", timeout=LIMITS.cell_timeout, cell=2)
        assert result.judgement is not None
        assert result.judgement.kind == "busy"
        assert "your code used only 0.0 CPU seconds" in result.judgement.words


def is_kernel(pid: int) -> bool:
    with contextlib.suppress(OSError), open(f"/proc/{pid}/cmdline", "rb") as fh:
        return b"ipykernel_launcher" in fh.read()
    return False


def test_a_pid_outside_the_container_is_not_metered() -> None:
    """Would a pid an engine on another host reports (here: this process, or nobody) be read?"""
    assert not in_container(os.getpid(), "f" * 64)
    assert not in_container(0, "f" * 64)
    assert not in_container(os.getpid(), "")

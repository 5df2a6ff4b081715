"""A Jupyter kernel inside a sandbox: start it, run code with a deadline, kill it, clean up.

The kernel is an ipykernel started by jupyter_client's `KernelManager` from a kernelspec written
for this one kernel: its argv is the sandbox's wrapper around ``python -m ipykernel_launcher -f
{connection_file}``, and it is interrupted by message (a SIGINT would reach the sandbox's
launcher, not the kernel). Sockets use ZeroMQ's ``ipc`` transport in a directory bound into the
sandbox at its own path, because the sandbox has no network, not even loopback.

Every execution has a deadline. When it passes, the kernel is interrupted; if it has not answered
after `Limits.interrupt_grace` seconds, the whole sandbox is killed. The kernel's own stdout and
stderr (TensorFlow's C++ logs, crashes) go to a pipe whose tail is kept for reports.

Example::

    kernel = start_kernel(workdir=Path("copy/of/submission"), datadir=Path("data"), slot=0)
    try:
        run = kernel.run_notebook(Path("copy/of/submission/lab1.ipynb"))
        student = kernel.student()   # the only door for hidden tests (see bridge.py)
    finally:
        kernel.shutdown()
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import zmq
from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager

from introdl.grading.errors import BadInput
from introdl.grading.execute import Execution, execute_code
from introdl.grading.launch import start_kernel, sweep_stale
from introdl.grading.limits import Limits
from introdl.grading.outputs import OutputBudget
from introdl.grading.sandbox import Sandbox
from introdl.grading.slots import SlotLock

__all__ = ["SandboxEvent", "SandboxedKernel", "start_kernel", "sweep_stale"]

if TYPE_CHECKING:
    from introdl.grading.bridge import Student
    from introdl.grading.run_notebook import NotebookRun

KERNEL_NAME = "introdl-sandbox"
# ipykernel's start-up notice on stdout, which says nothing about why a kernel died
BANNER = re.compile(
    r"--existing|To connect another client|ipython kernel. entry point|Ctrl-C will not work|"
    r"To exit, you will have to|\"quit\" from a client|To read more about this|ipython/issues/2049"
)
# Largest single ZeroMQ message the grader accepts from the kernel; bigger ones drop the link.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024


@dataclass
class SandboxEvent:
    """Something the sandbox did to the submission, or that happened to it."""

    kind: str  # cell_timeout | call_timeout | kernel_killed | kernel_died | memory_exhausted
    #            | output_truncated | budget_exhausted
    detail: str
    cell: int | None = None  # index in the notebook's cells, when a cell was running
    at: float = 0.0  # seconds since the kernel started


class SandboxedKernel:
    """One running kernel in one sandbox. Create with `start_kernel`; always `shutdown`."""

    def __init__(self, sandbox: Sandbox, runtime_dir: Path, limits: Limits) -> None:
        self.sandbox = sandbox
        self.limits = limits
        self.slot_lock: SlotLock | None = None  # held from start to shutdown (see slots.py)
        self.runtime_dir = runtime_dir
        self.ipc_dir = runtime_dir / "ipc"
        self.exchange_dir = runtime_dir / "exchange"  # written by the kernel, read by the grader
        self.requests_dir = runtime_dir / "requests"  # written by the grader, read-only inside
        self.events: list[SandboxEvent] = []
        self.timings: dict[str, float] = {}
        self.dead = False  # killed or died: nothing more can run
        self._started = time.monotonic()
        self._km: KernelManager | None = None
        self._kc: BlockingKernelClient | None = None
        self._context: zmq.Context[Any] | None = None
        self._log: collections.deque[bytes] = collections.deque()
        self._log_thread: threading.Thread | None = None
        self._shut = False
        self._launcher_pid: int | None = None
        self.cleanup_problems: list[str] = []

    # --- events and state --------------------------------------------------------------------
    def record(self, kind: str, detail: str, cell: int | None = None) -> None:
        self.events.append(
            SandboxEvent(kind, detail, cell, round(time.monotonic() - self._started, 3))
        )

    @property
    def alive(self) -> bool:
        return not self.dead and self._km is not None and self._km.is_alive()

    @property
    def launcher_pid(self) -> int | None:
        """Pid of the process the kernel manager started (bwrap, or the docker launcher)."""
        return self._launcher_pid

    def kernel_log(self) -> str:
        """The tail of the kernel process's own stdout/stderr (not the cells' outputs)."""
        return b"".join(self._log).decode("utf-8", "replace")

    # --- start -------------------------------------------------------------------------------
    def start(self) -> None:
        """Launch the kernel in the (already set up) sandbox and wait until it answers."""
        t0 = time.monotonic()
        argv = self.sandbox.wrap(
            [self.sandbox.python, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
        )
        spec_dir = self.runtime_dir / "kernelspec" / KERNEL_NAME
        spec_dir.mkdir(parents=True)
        (spec_dir / "kernel.json").write_text(
            json.dumps(
                {
                    "argv": argv,
                    "display_name": "Student submission (sandboxed)",
                    "language": "python",
                    "interrupt_mode": "message",
                    "env": {},
                }
            )
        )
        km = KernelManager(
            kernel_name=KERNEL_NAME,
            kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(spec_dir.parent)]),
            transport="ipc",
            ip=str(self.ipc_dir / "kernel"),
            connection_file=str(self.ipc_dir / "kernel.json"),
        )
        km.write_connection_file()
        # the kernel runs as the sandbox uid and must read its connection file
        os.chown(km.connection_file, self.sandbox.spec.uid, self.sandbox.spec.uid)
        read_fd, write_fd = os.pipe()
        try:
            km.start_kernel(stdin=subprocess.DEVNULL, stdout=write_fd, stderr=write_fd)
        finally:
            os.close(write_fd)
        self._km = km
        process = getattr(km.provisioner, "process", None)
        self._launcher_pid = process.pid if isinstance(process, subprocess.Popen) else None
        self._log_thread = threading.Thread(target=self._read_log, args=(read_fd,), daemon=True)
        self._log_thread.start()
        self._context = zmq.Context()
        self._context.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)
        kc = BlockingKernelClient(context=self._context)
        kc.load_connection_info(km.get_connection_info())
        kc.start_channels(hb=False)
        self._kc = kc
        self._wait_for_ready(self.limits.startup_timeout)
        self.timings["kernel_start"] = round(time.monotonic() - t0, 3)

    def _read_log(self, fd: int) -> None:
        size = 0
        with os.fdopen(fd, "rb", buffering=0) as pipe:
            while chunk := pipe.read(65536):
                self._log.append(chunk)
                size += len(chunk)
                while size > self.limits.kernel_log_bytes and len(self._log) > 1:
                    size -= len(self._log.popleft())

    def _wait_for_ready(self, timeout: float) -> None:
        """Until the kernel answers kernel_info on shell and iopub is flowing."""
        assert self._kc is not None
        deadline = time.monotonic() + timeout
        replied = False
        while time.monotonic() < deadline:
            if self._km is None or not self._km.is_alive():
                self.dead = True
                raise BadInput(
                    f"the sandboxed kernel died while starting:\n{self.kernel_log()[-2000:]}"
                )
            msg_id = self._kc.kernel_info()
            step_end = min(deadline, time.monotonic() + 1.0)
            iopub_seen = False
            while time.monotonic() < step_end and not (replied and iopub_seen):
                if self._kc.iopub_channel.msg_ready():
                    self._kc.iopub_channel.get_msg(timeout=0)
                    iopub_seen = True
                elif self._kc.shell_channel.msg_ready():
                    reply = self._kc.shell_channel.get_msg(timeout=0)
                    replied = replied or reply["parent_header"].get("msg_id") == msg_id
                else:
                    time.sleep(0.02)
            if replied and iopub_seen:
                return
        raise BadInput(
            f"the sandboxed kernel did not answer within {timeout:.0f} s:\n{self.kernel_log()[-2000:]}"
        )

    # --- run code ----------------------------------------------------------------------------
    def execute(
        self,
        code: str,
        *,
        timeout: float,
        silent: bool = False,
        store_history: bool = True,
        budget: OutputBudget | None = None,
        cell: int | None = None,
        timeout_kind: str = "cell_timeout",
    ) -> Execution:
        """Run `code` with a deadline; interrupt, then kill the sandbox, when it overruns."""
        return execute_code(
            self,
            code,
            timeout=timeout,
            silent=silent,
            store_history=store_history,
            budget=budget,
            cell=cell,
            timeout_kind=timeout_kind,
        )

    @property
    def client(self) -> BlockingKernelClient:
        if self._kc is None:
            raise RuntimeError("the kernel has not been started")
        return self._kc

    def reconnect_iopub(self) -> None:
        """Open a fresh iopub connection (ZeroMQ closes one that received an oversized message)."""
        client = self.client
        client.iopub_channel.close()
        setattr(client, "_iopub_channel", None)  # noqa: B010  (the property reconnects when None)
        try:
            self._wait_for_ready(min(self.limits.startup_timeout, 10.0))
        except BadInput as err:
            self.record("kernel_died", f"lost contact with the kernel: {err}")
            self.kill("the kernel stopped answering after an oversized output")

    def interrupt(self) -> None:
        """Ask the kernel to interrupt what it runs (by message; a signal would hit the sandbox)."""
        with contextlib.suppress(Exception):
            if self._km is not None:
                self._km.interrupt_kernel()

    def process_alive(self) -> bool:
        return self._km is not None and self._km.is_alive()

    def death_detail(self) -> str:
        provisioner = getattr(self._km, "provisioner", None)
        process = getattr(provisioner, "process", None)
        code = process.poll() if isinstance(process, subprocess.Popen) else None
        lines = [line for line in self.kernel_log().splitlines() if line.strip()]
        tail = [line for line in lines if not BANNER.search(line)][-3:]
        detail = f"the kernel process exited (exit code {code}"
        if isinstance(code, int) and code > 128:
            detail += f", signal {code - 128}"
        detail += ")"
        return detail + (": " + " | ".join(tail) if tail else "")

    def note_death(self, cell: int | None) -> None:
        """Record that the kernel died on its own (and whether memory ran out); clean up."""
        if self.dead:
            return
        self.dead = True
        self.record("kernel_died", self.death_detail(), cell)
        if self.sandbox.memory_exhausted():
            self.record("memory_exhausted", "the sandbox's memory cgroup hit its limit", cell)
        self._stop_processes()

    def kill(self, reason: str, cell: int | None = None) -> None:
        """Kill the kernel and everything in its sandbox; record why."""
        if not self.dead:
            self.record("kernel_killed", reason, cell)
        self.dead = True
        self._stop_processes()

    def _stop_processes(self) -> None:
        if self._km is not None and self._km.has_kernel:
            with contextlib.suppress(Exception):
                self._km.signal_kernel(signal.SIGKILL)
            end = time.monotonic() + 5
            while self._km.is_alive() and time.monotonic() < end:
                time.sleep(0.02)
        self.sandbox.kill()

    # --- phases ------------------------------------------------------------------------------
    def run_notebook(self, notebook: Path | Any) -> NotebookRun:
        """Execute every code cell of `notebook` (a path or an nbformat node); see run_notebook.py."""
        from introdl.grading.run_notebook import run_notebook

        return run_notebook(self, notebook)

    def student(self) -> Student:
        """The `Student` door into this kernel for hidden tests (see bridge.py)."""
        from introdl.grading.bridge import Student

        return Student(self)

    # --- stop --------------------------------------------------------------------------------
    def shutdown(self) -> None:
        """Kill the kernel and its sandbox and remove every socket and temporary file.

        Idempotent, and never raises: every step runs even when an earlier one fails, and what
        went wrong is kept in `cleanup_problems` (for the results' sandbox section).
        """
        if self._shut:
            return
        self._shut = True
        self.dead = True
        t0 = time.monotonic()
        km, kc, context, thread = self._km, self._kc, self._context, self._log_thread
        steps: list[tuple[str, Callable[[], object]]] = [
            ("close the client", lambda: kc.stop_channels() if kc else None),
            ("kill the kernel", lambda: km.shutdown_kernel(now=True) if km else None),
            ("remove sockets", lambda: km.cleanup_resources() if km else None),
            ("clean up the sandbox", self.sandbox.cleanup),
            ("close ZeroMQ", lambda: context.destroy(linger=0) if context else None),
            ("stop the log reader", lambda: thread.join(timeout=5) if thread else None),
            ("remove the runtime directory", lambda: shutil.rmtree(self.runtime_dir)),
            (
                "release the sandbox slot",
                lambda: self.slot_lock.release() if self.slot_lock else None,
            ),
        ]
        for what, step in steps:
            try:
                step()
            except Exception as err:
                self.cleanup_problems.append(f"could not {what}: {type(err).__name__}: {err}")
        self.timings["shutdown"] = round(time.monotonic() - t0, 3)

    def __enter__(self) -> SandboxedKernel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

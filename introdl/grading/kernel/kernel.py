"""A Jupyter kernel inside a sandbox: start it, run code with a deadline, kill it, clean up.

The kernel is an ipykernel whose argv is the sandbox's wrapper around ``python -m
ipykernel_launcher`` (kernelspec in protocol.py). Sockets use ZeroMQ's ``ipc`` transport in a
directory bound into the sandbox at its own path: the sandbox has no network, not even loopback.

Every execution has a deadline (`SandboxedKernel.execute`), waiting on the shell and iopub
sockets together. When it passes, the kernel is interrupted (by message); if it has not answered
after `Limits.interrupt_grace` seconds, the whole sandbox is killed. A kernel process that exits
on its own (``os._exit``, an OOM kill, a crash) is noticed within a quarter of a second. Its own
stdout and stderr (TensorFlow's C++ logs, crashes) go to a pipe whose tail is kept for reports.

A deadline that passes asks the CPU `meter` (cpu.py) whether a busy host made it pass (events
``host_busy``, ``waited_idle``). `start_kernel` (launch.py) sets up the sandbox and starts this
class; `run_notebook` (notebook.py) is a function over a started kernel; `Student(kernel)` is the
door for hidden tests (door/student.py). This module imports neither, nor the door.
"""

from __future__ import annotations

import collections
import contextlib
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import zmq
from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.manager import KernelManager

from introdl.grading.errors import BadInput
from introdl.grading.kernel.cpu import Judgement, Mark, Meter
from introdl.grading.kernel.outputs import OutputBudget, OutputCollector
from introdl.grading.kernel.protocol import (
    IOPUB_GRACE,
    MAX_MESSAGE_BYTES,
    POLL_SECONDS,
    Execution,
    SandboxEvent,
    Status,
    death_detail,
    kernel_manager,
    next_message,
)
from introdl.grading.sandbox import Sandbox, startup_failure
from introdl.grading.sandbox.limits import Limits
from introdl.grading.sandbox.slots import SlotLock


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
        self.meter = Meter()  # the sandbox's CPU, read when a wall-clock limit fires (cpu.py)
        self._window, self._judged = Mark(0.0, None), cast(Judgement | None, None)  # see execute
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

    def kernel_log(self, settle: float = 0.0) -> str:
        """The tail of the kernel process's own stdout/stderr (not the cells' outputs); a dead
        kernel's last bytes may still be in the pipe: SETTLE waits up to that many seconds."""
        if settle and self._log_thread is not None:
            self._log_thread.join(settle)
        return b"".join(self._log).decode("utf-8", "replace")

    # --- start -------------------------------------------------------------------------------
    def start(self) -> None:
        """Launch the kernel in the (already set up) sandbox and wait until it answers."""
        t0 = time.monotonic()
        argv = self.sandbox.wrap(
            [self.sandbox.python, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
        )
        km = kernel_manager(argv, self.runtime_dir / "kernelspec", self.ipc_dir)
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
        self.meter.root = self.sandbox.cpu_root(self._launcher_pid)  # whose CPU counts (cpu.py)
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
                self.dead = True  # bwrap's last words may still be in the pipe: settle
                raise BadInput(startup_failure(self.kernel_log(settle=2.0)[-2000:]))
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
        start = time.monotonic()
        limits = self.limits
        collector = OutputCollector(
            limits.cell_output_bytes, budget or OutputBudget(limits.notebook_output_bytes)
        )

        def finish(
            status: Status, ename: str | None = None, evalue: str | None = None
        ) -> Execution:
            duration = round(time.monotonic() - start, 3)
            return Execution(
                status, duration, collector.outputs, collector.truncated, ename, evalue
            )

        if not self.alive:
            self.note_death(cell)
            return finish("died", "KernelDied", "the kernel is not running")
        client = self.client
        self._window, self._judged = self.meter.mark(), None
        msg_id = client.execute(
            code, silent=silent, store_history=store_history, allow_stdin=False, stop_on_error=False
        )
        try:
            waited = self._wait(msg_id, collector, start + timeout, timeout, cell, timeout_kind)
        except BaseException:
            # The grader was interrupted (a hidden test's own budget ran out): stop the kernel's
            # work too, so that the next call does not queue behind it.
            self.interrupt()
            raise
        if isinstance(waited, Execution):
            waited.duration, waited.judgement = round(time.monotonic() - start, 3), self._judged
            return waited
        reply, interrupted_at, iopub_lost = waited
        if iopub_lost:
            # ZeroMQ cut the iopub link over an oversized message; outputs after it are gone
            collector.lost("an output message was too large to receive")
            self.reconnect_iopub()
        if collector.truncated:
            dropped = collector.dropped_bytes
            detail = (
                f"{dropped} bytes of output dropped" if dropped else "an oversized output was lost"
            )
            self.record("output_truncated", detail, cell)
        if reply.get("status") == "ok":
            result = finish("ok")
        elif interrupted_at is not None:
            result = finish("timeout", "Timeout", f"interrupted after {timeout:.1f} s")
        else:
            result = finish("error", str(reply.get("ename", "")), str(reply.get("evalue", "")))
            frames = [str(line) for line in reply.get("traceback", [])]
            result.traceback = frames[-limits.traceback_lines :]
            if result.ename == "MemoryError":
                self.record("memory_exhausted", "MemoryError raised in the kernel", cell)
        count = reply.get("execution_count")
        result.execution_count = count if isinstance(count, int) else None
        result.judgement = self._judged
        return result

    def _wait(
        self,
        msg_id: str,
        collector: OutputCollector,
        deadline: float,
        timeout: float,
        cell: int | None,
        timeout_kind: str,
    ) -> Execution | tuple[dict[str, Any], float | None, bool]:
        """Collect outputs until the reply and the closing idle arrive, enforcing the deadline.

        Returns (reply, when it was interrupted, whether iopub went silent), or an Execution when
        the kernel was killed or died.
        """
        limits = self.limits
        client = self.client

        def finish(status: Status, ename: str, evalue: str) -> Execution:
            return Execution(status, 0.0, collector.outputs, collector.truncated, ename, evalue)

        poller = zmq.Poller()
        poller.register(client.iopub_channel.socket, zmq.POLLIN)
        poller.register(client.shell_channel.socket, zmq.POLLIN)
        reply: dict[str, Any] | None = None
        replied_at = 0.0
        idle = False
        interrupted_at: float | None = None
        while not (reply is not None and idle):
            now = time.monotonic()
            if reply is not None and now > replied_at + IOPUB_GRACE:
                return reply, interrupted_at, True  # the reply is in, but iopub never said idle
            if interrupted_at is None and now >= deadline:
                self.record(timeout_kind, f"no answer within {timeout:.1f} s: interrupted", cell)
                self._judged = self.judge(self._window, timeout, cell)
                self.interrupt()
                interrupted_at = now
            if interrupted_at is not None and now >= interrupted_at + limits.interrupt_grace:
                self.kill(f"ignored the interrupt for {limits.interrupt_grace:.1f} s", cell)
                return finish("killed", "Killed", "ignored the interrupt after a timeout")
            wake = deadline if interrupted_at is None else interrupted_at + limits.interrupt_grace
            wait = min(wake - now, POLL_SECONDS)
            if not poller.poll(max(1, int(wait * 1000))) and not self.process_alive():
                self.note_death(cell)
                return finish("died", "KernelDied", self.death_detail())
            while (msg := next_message(client.iopub_channel, msg_id)) is not None:
                if msg["msg_type"] == "status":
                    idle = idle or msg["content"].get("execution_state") == "idle"
                else:
                    collector.handle(msg["msg_type"], msg["content"])
            while (msg := next_message(client.shell_channel, msg_id)) is not None:
                if msg["msg_type"] == "execute_reply":
                    reply = msg["content"]
                    replied_at = time.monotonic()
        assert reply is not None  # the loop only ends once the reply is in
        return reply, interrupted_at, False

    def judge(self, since: Mark, limit: float, cell: int | None = None) -> Judgement:
        """Ask the meter why a limit of LIMIT seconds begun at SINCE fired; record its words."""
        judged = self.meter.judge(since, limit)
        if judged.kind != "student":
            self.record("host_busy" if judged.kind == "busy" else "waited_idle", judged.words, cell)
        return judged

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
        process = getattr(getattr(self._km, "provisioner", None), "process", None)
        code = process.poll() if isinstance(process, subprocess.Popen) else None
        return death_detail(code, self.kernel_log())

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

"""Running one piece of code in a sandboxed kernel, against a deadline.

The loop waits on the kernel's shell and iopub sockets together. When the deadline passes it
interrupts the kernel (by message); when the kernel has not answered `Limits.interrupt_grace`
seconds later, it kills the whole sandbox. A kernel process that exits on its own (``os._exit``,
an OOM kill, a crash) is noticed within a quarter of a second.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import zmq

from introdl.grading.outputs import OutputBudget, OutputCollector

if TYPE_CHECKING:
    from introdl.grading.kernel import SandboxedKernel

Status = Literal["ok", "error", "timeout", "killed", "died"]
# After the execute_reply, how long to wait for the iopub idle that closes the outputs.
IOPUB_GRACE = 2.0
POLL_SECONDS = 0.25


@dataclass
class Execution:
    """The outcome of one piece of code run in the kernel."""

    status: Status
    duration: float
    outputs: list[dict[str, Any]] = field(default_factory=list)
    truncated: bool = False
    ename: str | None = None
    evalue: str | None = None
    traceback: list[str] = field(default_factory=list)
    execution_count: int | None = None


def execute_code(
    kernel: SandboxedKernel,
    code: str,
    *,
    timeout: float,
    silent: bool = False,
    store_history: bool = True,
    budget: OutputBudget | None = None,
    cell: int | None = None,
    timeout_kind: str = "cell_timeout",
) -> Execution:
    """Run `code` in `kernel`; see the module docstring for what happens on overrun or death."""
    start = time.monotonic()
    limits = kernel.limits
    collector = OutputCollector(
        limits.cell_output_bytes, budget or OutputBudget(limits.notebook_output_bytes)
    )

    def finish(status: Status, ename: str | None = None, evalue: str | None = None) -> Execution:
        duration = round(time.monotonic() - start, 3)
        return Execution(status, duration, collector.outputs, collector.truncated, ename, evalue)

    if not kernel.alive:
        kernel.note_death(cell)
        return finish("died", "KernelDied", "the kernel is not running")
    client = kernel.client
    msg_id = client.execute(
        code, silent=silent, store_history=store_history, allow_stdin=False, stop_on_error=False
    )
    try:
        waited = _wait(kernel, msg_id, collector, start + timeout, timeout, cell, timeout_kind)
    except BaseException:
        # The grader was interrupted (a hidden test's own budget ran out): stop the kernel's
        # work too, so that the next call does not queue behind it.
        kernel.interrupt()
        raise
    if isinstance(waited, Execution):
        waited.duration = round(time.monotonic() - start, 3)
        return waited
    reply, interrupted_at, iopub_lost = waited
    if iopub_lost:
        # ZeroMQ cut the iopub link over an oversized message; outputs after it are gone
        collector.lost("an output message was too large to receive")
        kernel.reconnect_iopub()
    if collector.truncated:
        dropped = collector.dropped_bytes
        detail = f"{dropped} bytes of output dropped" if dropped else "an oversized output was lost"
        kernel.record("output_truncated", detail, cell)
    if reply.get("status") == "ok":
        result = finish("ok")
    elif interrupted_at is not None:
        result = finish("timeout", "Timeout", f"interrupted after {timeout:.1f} s")
    else:
        result = finish("error", str(reply.get("ename", "")), str(reply.get("evalue", "")))
        frames = [str(line) for line in reply.get("traceback", [])]
        result.traceback = frames[-limits.traceback_lines :]
        if result.ename == "MemoryError":
            kernel.record("memory_exhausted", "MemoryError raised in the kernel", cell)
    count = reply.get("execution_count")
    result.execution_count = count if isinstance(count, int) else None
    return result


def _wait(
    kernel: SandboxedKernel,
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
    limits = kernel.limits
    client = kernel.client

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
            kernel.record(timeout_kind, f"no answer within {timeout:.1f} s: interrupted", cell)
            kernel.interrupt()
            interrupted_at = now
        if interrupted_at is not None and now >= interrupted_at + limits.interrupt_grace:
            kernel.kill(f"ignored the interrupt for {limits.interrupt_grace:.1f} s", cell)
            return finish("killed", "Killed", "ignored the interrupt after a timeout")
        wake = deadline if interrupted_at is None else interrupted_at + limits.interrupt_grace
        wait = min(wake - now, POLL_SECONDS)
        if not poller.poll(max(1, int(wait * 1000))) and not kernel.process_alive():
            kernel.note_death(cell)
            return finish("died", "KernelDied", kernel.death_detail())
        while (msg := _next(client.iopub_channel, msg_id)) is not None:
            if msg["msg_type"] == "status":
                idle = idle or msg["content"].get("execution_state") == "idle"
            else:
                collector.handle(msg["msg_type"], msg["content"])
        while (msg := _next(client.shell_channel, msg_id)) is not None:
            if msg["msg_type"] == "execute_reply":
                reply = msg["content"]
                replied_at = time.monotonic()
    assert reply is not None  # the loop only ends once the reply is in
    return reply, interrupted_at, False


def _next(channel: Any, msg_id: str) -> dict[str, Any] | None:
    """The next well-formed message answering `msg_id` on `channel`, or None when none is waiting.

    The kernel holds the signing key, so its messages are as untrusted as its files: malformed
    ones and ones about other requests are skipped.
    """
    while channel.msg_ready():
        try:
            msg = channel.get_msg(timeout=0)
        except Exception:
            continue
        if (
            isinstance(msg, dict)
            and isinstance(msg.get("parent_header"), dict)
            and msg["parent_header"].get("msg_id") == msg_id
            and isinstance(msg.get("msg_type"), str)
            and isinstance(msg.get("content"), dict)
        ):
            return msg
    return None

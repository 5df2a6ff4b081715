"""The plain pieces of the Jupyter protocol as the grader uses them, below the kernel class.

What one execution and one sandbox event record (`Execution`, `SandboxEvent`), the kernelspec and
kernel manager of one sandboxed kernel (`kernel_manager`), and reading the kernel's messages, which
are as untrusted as its files (`next_message`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager

from introdl.grading.kernel.cpu import Judgement

KERNEL_NAME = "introdl-sandbox"
# ipykernel's start-up notice on stdout, which says nothing about why a kernel died
BANNER = re.compile(
    r"--existing|To connect another client|ipython kernel. entry point|Ctrl-C will not work|"
    r"To exit, you will have to|\"quit\" from a client|To read more about this|ipython/issues/2049"
)
# Largest single ZeroMQ message the grader accepts from the kernel; bigger ones drop the link.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
Status = Literal["ok", "error", "timeout", "killed", "died"]
# After the execute_reply, how long to wait for the iopub idle that closes the outputs.
IOPUB_GRACE = 2.0
POLL_SECONDS = 0.25


@dataclass
class SandboxEvent:
    """Something the sandbox did to the submission, or that happened to it."""

    kind: str  # cell_timeout | call_timeout | kernel_killed | kernel_died | memory_exhausted
    #            | output_truncated | budget_exhausted | host_busy | waited_idle (cpu.py)
    detail: str
    cell: int | None = None  # index in the notebook's cells, when a cell was running
    at: float = 0.0  # seconds since the kernel started


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
    judgement: Judgement | None = None  # why its wall-clock limit fired, when it did (cpu.py)


def kernel_manager(argv: Sequence[str], spec_root: Path, ipc_dir: Path) -> KernelManager:
    """A kernel manager for ARGV (the sandbox's wrapped command) over ipc sockets in IPC_DIR.

    The kernelspec is written for this one kernel under SPEC_ROOT; it interrupts by message (a
    SIGINT would reach the sandbox's launcher, not the kernel).
    """
    spec_dir = spec_root / KERNEL_NAME
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(
        json.dumps(
            {
                "argv": list(argv),
                "display_name": "Student submission (sandboxed)",
                "language": "python",
                "interrupt_mode": "message",
                "env": {},
            }
        )
    )
    return KernelManager(
        kernel_name=KERNEL_NAME,
        kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(spec_root)]),
        transport="ipc",
        ip=str(ipc_dir / "kernel"),
        connection_file=str(ipc_dir / "kernel.json"),
    )


def next_message(channel: Any, msg_id: str) -> dict[str, Any] | None:
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


def death_detail(code: int | None, kernel_log: str) -> str:
    """Why a kernel process is gone, in one line: its exit code or signal, and its last words."""
    lines = [line for line in kernel_log.splitlines() if line.strip()]
    tail = [line for line in lines if not BANNER.search(line)][-3:]
    detail = f"the kernel process exited (exit code {code}"
    if isinstance(code, int) and code > 128:
        detail += f", signal {code - 128}"
    detail += ")"
    return detail + (": " + " | ".join(tail) if tail else "")

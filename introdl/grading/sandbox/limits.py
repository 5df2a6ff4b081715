"""Every limit of the student phase in one place: sandbox resources, timeouts, output caps.

Sizes were measured on the 2-core course machine (see FACTS.md): ``import tensorflow`` plus a small
``fit`` peaks at about 2.2 GB of address space (VmPeak) with ~0.55 GB resident when unlimited; it
still works under RLIMIT_AS = 1.5 GiB and aborts at 1.25 GiB. TensorFlow and OpenBLAS start one
thread per core in each pool (8 MiB of stack address space each; threads count against
RLIMIT_NPROC, and OpenBLAS raises SIGINT when it cannot start them), so a bigger grading host
needs more of both. The defaults leave room for that and for the labs' real models.

A lab's own grading limits: `grader_tests/<lab>/limits.toml` tightens these defaults
(`lab_limits`). A lab with a grading-time limit (its issue: "at most 3 minutes, whatever the notebook's own
training budget") caps the notebook phase here, so a student who hard-codes a long training loop
(ignoring `introdl.budget`) has that cell interrupted, and the later cells and the hidden tests
still run. For example::

    # grader_tests/lab1_music/limits.toml
    cell_timeout = 60      # seconds for one notebook cell
    notebook_timeout = 100 # seconds for the whole notebook
    grading_timeout = 180  # seconds for the notebook and the hidden tests together

Every lab declares at least `cell_timeout`, `notebook_timeout` and `grading_timeout`, measured beside its reference
and recorded in its CALIBRATION.md. Any numeric field of `Limits` may appear. A lab may only tighten a limit, never loosen it: the
smaller of the lab's value and the grader's (its `--limits`, or the defaults) wins.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from introdl.grading.errors import BadInput

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB

# Parallel sandboxes need distinct uids: RLIMIT_NPROC counts every process of a uid system-wide.
SANDBOX_UID_BASE = 61000


def sandbox_uid(slot: int) -> int:
    """The unprivileged uid for sandbox slot ``slot`` (one slot per concurrently running kernel)."""
    if not 0 <= slot < 4000:
        raise ValueError(f"sandbox slot {slot} is out of range 0..3999")
    return SANDBOX_UID_BASE + slot


@dataclass(frozen=True)
class Limits:
    """Resource limits, timeouts and output caps for one sandboxed kernel."""

    # --- resources (prlimit for the sandbox uid) ---
    address_space_bytes: int = 8 * GiB  # RLIMIT_AS: TensorFlow reserves far more than it touches
    nproc: int = 512  # RLIMIT_NPROC: processes AND threads of the sandbox uid
    file_size_bytes: int = 1 * GiB  # RLIMIT_FSIZE: largest file the submission may write
    open_files: int = 1024  # RLIMIT_NOFILE
    cpu_seconds: int = 4 * 3600  # RLIMIT_CPU: a backstop; wall-clock budgets below bite first
    tmp_bytes: int = 1 * GiB  # size of the private /tmp (tmpfs pages are RAM)
    workdir_bytes: int = 2 * GiB  # all the working copy may hold (a tmpfs where root: RAM)
    workdir_files: int = 100_000  # inodes (files and folders) of that tmpfs
    # --- cgroup v1 (best effort: applied only where /sys/fs/cgroup/{memory,pids} are writable) ---
    memory_bytes: int = 6 * GiB  # resident memory; the kernel OOM-kills the sandbox beyond it
    pids: int = 512
    # --- wall clock (seconds) ---
    startup_timeout: float = 60.0  # kernel start until it answers kernel_info
    # Every lab tightens these two in its limits.toml (tests/test_lab_limits.py checks it); these
    # defaults only bound a new lab before it declares its own: 5x and 7x the slowest lab's
    # notebook at the smoke budget under load (lab2_mnist, 67 s at load ~8).
    cell_timeout: float = 300.0  # one notebook cell
    notebook_timeout: float = 900.0  # the whole notebook; cells past it are skipped
    call_timeout: float = 30.0  # default for one Student.call / run / get
    # The notebook and the hidden tests together: a test that would start past it fails without
    # running, and a running one is stopped there. With the sandbox's start, it bounds how long one
    # submission holds a worker, whatever it does. Every lab declares its own (its grading limit).
    grading_timeout: float = 1800.0
    interrupt_grace: float = 5.0  # after an interrupt, how long before the sandbox is killed
    # --- output caps ---
    cell_output_bytes: int = 100 * KiB  # outputs kept per cell (text and images)
    notebook_output_bytes: int = 2 * MiB  # outputs kept per notebook
    traceback_lines: int = 100  # traceback lines kept per error
    exchange_bytes: int = 256 * MiB  # one value crossing the door (npy + JSON), each way
    kernel_log_bytes: int = 64 * KiB  # tail of the kernel's own stdout/stderr kept for reports


DEFAULT_LIMITS = Limits()

# Quick limits for the project's own tests: small enough that hostile fixtures fail fast.
TEST_LIMITS = Limits(
    address_space_bytes=2 * GiB,
    nproc=64,
    file_size_bytes=64 * MiB,
    memory_bytes=1 * GiB,
    pids=64,
    tmp_bytes=64 * MiB,
    workdir_bytes=160 * MiB,  # above file_size_bytes, so each cap is seen on its own
    startup_timeout=30.0,
    cell_timeout=5.0,
    notebook_timeout=60.0,
    call_timeout=10.0,
    interrupt_grace=2.0,
    cell_output_bytes=10 * KiB,
    notebook_output_bytes=50 * KiB,
    exchange_bytes=16 * MiB,
)

LAB_LIMITS_FILE = "limits.toml"


def lab_limits(suite_dir: Path, base: Limits) -> Limits:
    """BASE tightened by SUITE_DIR/limits.toml (BASE itself when the lab has no such file)."""
    path = suite_dir / LAB_LIMITS_FILE
    if not path.is_file():
        return base
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise BadInput(f"{path}: not valid TOML ({err}); fix or delete it") from err
    fields = {f.name for f in dataclasses.fields(Limits)}
    changes: dict[str, Any] = {}
    for key, value in data.items():
        if key not in fields:
            raise BadInput(
                f"{path}: unknown limit {key!r}; known limits: {', '.join(sorted(fields))}"
            )
        current = getattr(base, key)
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise BadInput(f"{path}: {key} must be a positive number, not {value!r}")
        changes[key] = min(current, type(current)(value))
    return dataclasses.replace(base, **changes)

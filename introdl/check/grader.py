"""One check: grade a student's notebook with the batch engine, then cut the verdict to what the
student may see before the due date.

`grade_check` is the service's only door into the engine (the same sandbox, hidden tests and fresh
seed as final grading; it never writes the gradebook). `student_view` turns the engine's
results.json into the verdict a student reads, by each test's visibility (Gradescope's names):
`visible` tests show name, status, score and authored message; `after_due_date` tests, before the
due date, only count in a "k more tests: passed / failed" line; `hidden` tests are left out. A
verdict never holds a test's source, inputs or expected values: the engine records none of them.
"""

from __future__ import annotations

import multiprocessing.util
import re
import shutil
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from introdl.grading.grade import GradeOptions, grade_submission, warm_pool
from introdl.grading.pool import KernelPool
from introdl.grading.record.live import Listener
from introdl.grading.submission import submission_at

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")  # terminal colours Keras puts in its messages
MAX_STATUS_LINES = 6

# What each sandbox event means for a student, with the cell it happened in.
EVENT_WORDS = {
    "cell_timeout": "your notebook ran out of time in cell {cell}",
    "budget_exhausted": "your notebook's time budget ran out in cell {cell}",
    "memory_exhausted": "your notebook ran out of memory in cell {cell}",
    "kernel_died": "your notebook's kernel died in cell {cell}",
    "kernel_killed": "your notebook was stopped in cell {cell}",
    "output_truncated": "cell {cell} printed too much; its output was cut",
    "call_timeout": "a call into your code ran out of time",
}


DEFAULT_OPTIONS = GradeOptions()  # the engine's defaults: see GradeOptions

# The warm kernels of this grading worker process (one pool per course): each kernel serves one
# check and is destroyed; the pool starts the next for the lab checked last while it waits.
_POOLS: dict[Path, KernelPool] = {}


def worker_pool(
    root: Path,
    warm: int,
    slot: int,
    take_timeout: float | None = None,
    options: GradeOptions = DEFAULT_OPTIONS,
) -> KernelPool | None:
    """This process's pool of WARM kernels for the course at ROOT, grading as OPTIONS say
    (None when WARM is 0); a take waits at most TAKE_TIMEOUT seconds for its kernel (default:
    the pool's own)."""
    if warm < 1:
        return None
    pool = _POOLS.get(root)
    if pool is None:
        pool = _POOLS[root] = warm_pool(root, options, size=warm, slot=slot)
        # A worker process ends through multiprocessing, which runs these finalizers (not atexit).
        multiprocessing.util.Finalize(pool, pool.close, exitpriority=10)
    if take_timeout is not None:
        pool.take_timeout = take_timeout
    return pool


def grade_check(
    root: Path,
    lab: str,
    student: str,
    notebook: bytes,
    *,
    slot: int = 0,
    warm: int = 0,
    take_timeout: float | None = None,
    options: GradeOptions = DEFAULT_OPTIONS,
    on_progress: Listener | None = None,
) -> dict[str, Any]:
    """Grade NOTEBOOK (STUDENT's LAB) in the sandbox; the engine's results.json as a dict.

    The one function through which the check service calls the engine, grading as OPTIONS say
    (the service's --backend and --image; default: docker where a Docker socket exists, else
    bwrap, and the engine's default image); WARM > 0 takes the kernel
    from this process's warm pool (`worker_pool`), waiting at most TAKE_TIMEOUT seconds for it
    (a PoolTimeout naming the lab after that). The notebook is written to a private
    temporary folder, never to the course. ON_PROGRESS receives the grading's events as they
    happen (introdl/grading/record/live.py): the service's live view of a running check.
    """
    folder = Path(tempfile.mkdtemp(prefix="introdl-check-"))
    try:
        sub_dir = folder / student / lab
        sub_dir.mkdir(parents=True)
        (sub_dir / f"{lab}.ipynb").write_bytes(notebook)
        submission = submission_at(sub_dir, lab, student)
        pool = worker_pool(root, warm, slot, take_timeout, options)
        graded = grade_submission(
            root, submission, options, slot=slot, pool=pool, on_progress=on_progress
        )
        return graded.results.to_json()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def student_view(results: dict[str, Any], *, due: datetime | None, now: datetime) -> dict[str, Any]:
    """What the student may read of RESULTS at NOW (before DUE, non-visible tests are held back)."""
    before_due = due is None or now < due
    shown: list[dict[str, Any]] = []
    counted = {"passed": 0, "failed": 0}
    hidden = 0
    for test in results.get("tests", []):
        visibility = test.get("visibility", "visible")
        passed = test.get("status") == "passed"
        if visibility == "visible" or (visibility == "after_due_date" and not before_due):
            shown.append(
                {
                    "name": test["name"],
                    "status": test["status"],
                    "score": test["score"],
                    "max_score": test["max_score"],
                    "message": ANSI.sub("", str(test.get("output", ""))),
                }
            )
        elif visibility == "after_due_date":
            counted["passed" if passed else "failed"] += 1
        else:
            hidden += 1
    scored = [
        t
        for t in results.get("tests", [])
        if t.get("visibility", "visible") in ("visible", "after_due_date")
    ]
    return {
        "lab": results.get("lab"),
        "score": round(sum(float(t["score"]) for t in scored), 3),
        "max_score": round(sum(float(t["max_score"]) for t in scored), 3),
        "tests": shown,
        "more_tests": counted if sum(counted.values()) else None,
        "hidden_tests_not_shown": hidden > 0,
        "status": status_lines(results),
        "due": due.isoformat() if due else None,
    }


def status_lines(results: dict[str, Any]) -> list[str]:
    """Plain sentences about how the notebook ran: errors, time-outs, memory, cells that raised."""
    lines = [str(e) for e in results.get("errors", [])]
    for event in results.get("events", []):
        words = EVENT_WORDS.get(str(event.get("kind")))
        if words is None:
            continue
        cell = event.get("cell")
        lines.append(words.format(cell="?" if cell is None else int(cell) + 1))
    for cell in results.get("cells", []):
        if cell.get("status") == "error" and cell.get("message"):
            lines.append(f"cell {int(cell['index']) + 1} raised {cell['message']}")
    unique = list(dict.fromkeys(ANSI.sub("", line) for line in lines))
    if len(unique) > MAX_STATUS_LINES:
        rest = len(unique) - MAX_STATUS_LINES + 1
        unique = [*unique[: MAX_STATUS_LINES - 1], f"... and {rest} more"]
    return unique

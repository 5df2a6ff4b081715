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

from introdl.grading.api import (
    AGAIN,
    GradeOptions,
    KernelPool,
    Listener,
    grade_submission,
    submission_at,
    warm_pool,
)

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")  # terminal colours Keras puts in its messages
MAX_STATUS_LINES = 6

# What each sandbox event means for a student; {place} names the cell as they find it in JupyterLab
# (`place`), and a sentence whose cell is unknown ends before " in {place}".
EVENT_WORDS = {
    "cell_timeout": "your notebook ran out of time in {place}",
    "budget_exhausted": "your notebook's time budget ran out in {place}",
    "memory_exhausted": "your notebook ran out of memory in {place}",
    "kernel_died": "your notebook's kernel died in {place}",
    "kernel_killed": "your notebook was stopped in {place}",
    "output_truncated": "{place} printed too much; its output was cut",
    "call_timeout": "a call into your code ran out of time",
}
# Sentences of a message that point at what the verdict page does not show (a public check says
# "Read the traceback above ..." in the student's notebook, where the traceback is above it).
UNSEEN = re.compile(
    r"(?:^|(?<=[.!?] ))[ \t]*(?:read|see|check|look at)\b[^.\n]*?"
    r"\b(?:traceback|output|error|message|cell)s? (?:above|below)\b[^.\n]*(?:\.|$)",
    re.I | re.M,
)
SEE_IT_THERE = "(the traceback is not shown here: run that cell in JupyterLab to see it)"
# A check is never graded again by itself: the student asks again (the engine's words: AGAIN).
CHECK_AGAIN = (
    "This is not a verdict on your code: ask for a check again in a few minutes (a check is not "
    "regraded by itself)."
)


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
                    "message": ANSI.sub("", str(test.get("output", ""))).replace(
                        AGAIN, CHECK_AGAIN
                    ),
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
    """Plain sentences about how the notebook ran: errors, time-outs, memory, cells that raised,
    each cell named as the student finds it in JupyterLab."""
    busy = [str(b) for b in results.get("host_busy", [])]
    lines = [f"Not judged yet: {busy[0].replace(AGAIN, CHECK_AGAIN)}"] if busy else []
    lines += [str(e) for e in results.get("errors", [])]
    cells = [c for c in results.get("cells", []) if isinstance(c, dict)]
    by_index = {c.get("index"): c for c in cells}
    for event in results.get("events", []):
        words = EVENT_WORDS.get(str(event.get("kind")))
        if words is None:
            continue
        cell = by_index.get(event.get("cell"))
        if cell is None:  # no cell, or one these results do not list: say it without a place
            words = words.split(" in {place}")[0] if " in {place}" in words else words
            words = words.replace("{place}", "a cell")
        lines.append(words.format(place="" if cell is None else place(cell, cells)))
    for cell in cells:
        if cell.get("status") == "error" and cell.get("message"):
            lines.append(f"{place(cell, cells)} raised {seen_here(str(cell['message']))}")
    unique = list(dict.fromkeys(ANSI.sub("", line) for line in lines))
    if len(unique) > MAX_STATUS_LINES:
        rest = len(unique) - MAX_STATUS_LINES + 1
        unique = [*unique[: MAX_STATUS_LINES - 1], f"... and {rest} more"]
    return unique


def place(cell: dict[str, Any], cells: list[dict[str, Any]]) -> str:
    """CELL as the student finds it: 'the 12th code cell (under "1.3 Exercise: build the CNN")'.

    Counted among code cells only; results recorded before `code_number` existed list every code
    cell in order, so its rank among them is the same number (and they name no heading).
    """
    number = cell.get("code_number")
    if number is None:
        number = 1 + sum(1 for c in cells if int(c.get("index", 0)) < int(cell.get("index", 0)))
    heading = cell.get("heading")
    under = f' (under "{heading}")' if heading else ""
    return f"the {ordinal(int(number))} code cell{under}"


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def seen_here(message: str) -> str:
    """MESSAGE without sentences about a traceback or output the verdict page does not show,
    saying where to see it instead."""
    kept = UNSEEN.sub("", message)
    if kept == message:
        return message
    return " ".join([*kept.split(), SEE_IT_THERE])

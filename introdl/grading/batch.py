"""Grading a class: fan submissions out to workers, land each result in the gradebook as it comes.

Workers are local processes by default (one sandbox slot each), or a Dask cluster when given a
scheduler address (Dask reaches SLURM through dask-jobqueue, Kubernetes through dask-kubernetes).
Workers only grade; this coordinating process alone writes results.json, the autograded notebooks
and the gradebook. A batch that stops half way (a killed worker, a reboot) resumes without
regrading what is done: a submission whose results.json records the same fingerprint is skipped.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import tempfile
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat

from introdl.grading.errors import BadInput, DiskFull, disk_full_errno
from introdl.grading.grade import Graded, GradeOptions, grade_submission
from introdl.grading.record.results import Results, results_path
from introdl.grading.submission import Submission, parse_timestamp

FINGERPRINT_FILE = "fingerprint.txt"


@dataclass(frozen=True)
class Row:
    """One line of the class table."""

    student: str
    score: float
    max_score: float
    status: str  # graded | unchanged | error
    message: str = ""


def is_done(root: Path, sub: Submission) -> bool:
    """Was this exact submission already graded and landed?"""
    folder = results_path(root, sub.student, sub.lab).parent
    stamp = folder / FINGERPRINT_FILE
    return (
        (folder / "results.json").is_file()
        and stamp.is_file()
        and stamp.read_text().strip() == sub.fingerprint()
    )


def land(root: Path, sub: Submission, graded: Graded) -> Row:
    """Write results.json and the autograded notebook, and store the scores (coordinator only)."""
    from introdl.grading.record.gradebook import land_grades

    results = graded.results
    folder = results_path(root, sub.student, sub.lab).parent
    notebook = nbformat.reads(graded.notebook_json, as_version=4) if graded.notebook_json else None
    land_grades(
        root, sub.lab, sub.student, notebook, results, timestamp=parse_timestamp(sub.timestamp)
    )
    results.write(results_path(root, sub.student, sub.lab))
    (folder / FINGERPRINT_FILE).write_text(sub.fingerprint() + "\n")
    message = "; ".join(results.errors) or (
        "NOT SANDBOXED" if not results.sandbox.sandboxed else ""
    )
    return Row(sub.student, results.score, results.max_score, "graded", message)


def unchanged_row(root: Path, sub: Submission) -> Row:
    results = Results.read(results_path(root, sub.student, sub.lab))
    return Row(
        sub.student,
        results.score,
        results.max_score,
        "unchanged",
        "already graded; --force regrades",
    )


# --- local worker processes ------------------------------------------------------------------
_slot: int = 0


def _init_worker(slots: Any) -> None:
    """Each worker process takes one sandbox slot for its lifetime (distinct uids per sandbox)."""
    global _slot
    _slot = slots.get()


def _grade_in_worker(root: Path, sub: Submission, options: GradeOptions) -> Graded:
    return grade_submission(root, sub, options, slot=_slot)


def run_local(
    root: Path, subs: list[Submission], options: GradeOptions, workers: int
) -> Iterator[tuple[Submission, Graded | BaseException]]:
    """Grade SUBS on WORKERS local processes (in this process when WORKERS is 1)."""
    if workers <= 1 or len(subs) <= 1:
        for sub in subs:
            try:
                yield sub, grade_submission(root, sub, options, slot=0)
            except Exception as err:  # an engine failure on one submission must not stop the class
                yield sub, err
        return
    context = multiprocessing.get_context("spawn")  # no forked copies of a half-started TensorFlow
    slots = context.Manager().Queue()
    for slot in range(workers):
        slots.put(slot)
    with cf.ProcessPoolExecutor(
        workers, mp_context=context, initializer=_init_worker, initargs=(slots,)
    ) as pool:
        futures = {pool.submit(_grade_in_worker, root, sub, options): sub for sub in subs}
        for future in cf.as_completed(futures):
            sub = futures[future]
            try:
                yield sub, future.result()
            except Exception as err:  # BrokenProcessPool when a worker was killed
                yield sub, err


# --- a Dask cluster --------------------------------------------------------------------------
def _grade_on_dask_worker(root: str, sub: Submission, options: GradeOptions) -> Graded:
    from distributed import get_worker

    name = get_worker().name
    slot = int(name) if isinstance(name, int) or str(name).isdigit() else abs(hash(name)) % 1000
    return grade_submission(Path(root), sub, options, slot=slot)


def run_dask(
    root: Path, subs: list[Submission], options: GradeOptions, scheduler: str
) -> Iterator[tuple[Submission, Graded | BaseException]]:
    """Grade SUBS on the Dask cluster at SCHEDULER (workers must see the course directory)."""
    from distributed import Client, as_completed

    with Client(scheduler) as client:
        futures = {
            client.submit(
                _grade_on_dask_worker,
                str(root),
                sub,
                options,
                key=f"grade-{sub.lab}-{sub.student}-{sub.fingerprint()[:12]}",
                pure=False,
            ): sub
            for sub in subs
        }
        for future in as_completed(futures):
            sub = futures[future]
            try:
                yield sub, future.result()
            except Exception as err:  # a worker that died too often, or an engine failure
                yield sub, err


def grade_class(
    root: Path,
    subs: list[Submission],
    options: GradeOptions,
    *,
    workers: int = 1,
    scheduler: str | None = None,
    force: bool = False,
    on_row: Callable[[Row], None] | None = None,
) -> list[Row]:
    """Grade every submission not already done; land each result as it arrives."""
    rows: dict[str, Row] = {}
    todo: list[Submission] = []
    for sub in subs:
        if not force and is_done(root, sub):
            rows[sub.student] = unchanged_row(root, sub)
        else:
            todo.append(sub)
    stream = (
        run_dask(root, todo, options, scheduler)
        if scheduler
        else run_local(root, todo, options, workers)
    )
    # Landing (nbgrader's preprocessors, the gradebook, files) runs on one thread of its own, in
    # arrival order, while the next submission is graded: with one in-process worker the two
    # overlap instead of adding up. Rows are recorded, and on_row called, on this thread.
    # The gradebook module is imported here, on this thread, before any landing starts.
    import introdl.grading.record.gradebook  # noqa: F401

    with cf.ThreadPoolExecutor(1, thread_name_prefix="introdl-land") as lander:
        landing: deque[tuple[Submission, cf.Future[Row]]] = deque()

        def record(row: Row) -> None:
            rows[row.student] = row
            if on_row:
                on_row(row)

        def collect(wait: bool) -> None:
            """Record the landings that have finished, in order (all of them with WAIT)."""
            while landing and (wait or landing[0][1].done()):
                sub, future = landing.popleft()
                try:
                    record(future.result())
                except Exception as err:
                    if disk_full_errno(err):
                        raise disk_full(root, sub, err, rows) from err
                    raise

        for sub, outcome in stream:
            collect(wait=False)
            if not isinstance(outcome, BaseException):
                landing.append((sub, lander.submit(land, root, sub, outcome)))
                continue
            if isinstance(outcome, BadInput):
                raise outcome  # an authoring error (hidden suite broken): stop, nothing to land
            if disk_full_errno(outcome):
                collect(wait=True)  # what was graded before lands first, and is counted
                raise disk_full(root, sub, outcome, rows) from outcome
            record(
                Row(
                    sub.student,
                    0.0,
                    0.0,
                    "error",
                    f"grading failed ({type(outcome).__name__}: {outcome}); rerun to resume",
                )
            )
        collect(wait=True)
    return [rows[s.student] for s in subs]


def disk_full(root: Path, sub: Submission, err: BaseException, rows: dict[str, Row]) -> DiskFull:
    """The batch stops: every later submission would hit the same wall. Say where, and what to do."""
    where = getattr(err, "filename", None) or (
        "the gradebook" if "database" in str(err) else "a temporary working copy"
    )
    landed = sum(1 for row in rows.values() if row.status in ("graded", "unchanged"))
    return DiskFull(
        f"no space left on the device while grading {sub.student}/{sub.lab} (writing {where}: "
        f"{err}). Free space there (`df -h {root}` and `df -h {tempfile.gettempdir()}`), then run the "
        f"same command again: the {landed} submission(s) already landed are kept and are not "
        "regraded; this one is graded again."
    )


def default_workers() -> int:
    """One worker per two cores: TensorFlow in a sandbox uses about two."""
    return max(1, (os.cpu_count() or 2) // 2)

"""Grading a class: fan submissions out to workers, land each result in the gradebook as it comes.

Workers are local processes by default (one sandbox slot each), or a Dask cluster when given a
scheduler address (Dask reaches SLURM through dask-jobqueue, Kubernetes through dask-kubernetes;
`cluster/`: the coordinator ships the lab's bundles and each submission, so workers need no
shared disk).
Workers only grade; this coordinating process alone writes results.json, the autograded notebooks
and the gradebook. A batch that stops half way (a killed worker, a reboot) resumes without
regrading what is done: a submission whose results.json records the same fingerprint is skipped.
Ctrl-C (SIGINT) stops a batch the same way, cleanly: local workers are told to stop, each busy one
unwinds its sandbox and working copy, what was graded before lands whole, and `Stopped` says how
to resume.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import dataclasses
import multiprocessing
import multiprocessing.util
import os
import signal
import tempfile
import time
from collections import deque
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import nbformat

from introdl.grading.errors import BadInput, DiskFull, Stopped, disk_full_errno
from introdl.grading.grade import Graded, GradeOptions, grade_submission, warm_pool
from introdl.grading.pool import KernelPool
from introdl.grading.progress import Progress
from introdl.grading.record.results import Results, results_path
from introdl.grading.record.row import Row as Row  # re-exported: callers import it from here
from introdl.grading.submission import Submission, parse_timestamp

FINGERPRINT_FILE = "fingerprint.txt"
# Written after the fingerprint of a submission whose grading ended on a too busy host: it is not
# done, and the next batch grades it again as a retry (`GradeOptions.retry`), even without --force.
BUSY_MARK = " host-busy"
# After Ctrl-C, how long a local worker has to unwind its sandbox before it is killed (its
# sandboxes then die with it: bwrap's --die-with-parent; the next batch sweeps what is left).
STOP_GRACE_SECONDS = 20.0


def is_done(root: Path, sub: Submission) -> bool:
    """Was this exact submission already graded and landed?"""
    folder = results_path(root, sub.student, sub.lab).parent
    stamp = folder / FINGERPRINT_FILE
    return (
        (folder / "results.json").is_file()
        and stamp.is_file()
        and stamp.read_text().strip() == sub.fingerprint()
    )


def was_busy(root: Path, sub: Submission) -> bool:
    """Did an earlier batch land this exact submission with a too-busy-host verdict?"""
    stamp = results_path(root, sub.student, sub.lab).parent / FINGERPRINT_FILE
    return stamp.is_file() and stamp.read_text().strip() == sub.fingerprint() + BUSY_MARK


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
    busy = BUSY_MARK if results.host_busy else ""
    (folder / FINGERPRINT_FILE).write_text(sub.fingerprint() + busy + "\n")
    if busy:
        return Row(sub.student, results.score, results.max_score, "error", busy_words(results))
    message = "; ".join(results.errors) or (
        "NOT SANDBOXED" if not results.sandbox.sandboxed else ""
    )
    return Row(sub.student, results.score, results.max_score, "graded", message)


def busy_words(results: Results) -> str:
    """A row's message when a retry ended on a too busy host again (a first one is retried)."""
    return (
        f"not graded: the grading machine was too busy ({results.host_busy[0]}), on a retry too; "
        "run the same command later: it grades this submission again, without --force"
    )


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
_pool: KernelPool | None = None  # this worker's warm kernels (None: cold starts)
_busy = False  # grading a submission now
_stopping = False  # told to stop (SIGINT): the batch is over


def _on_sigint(signum: int, frame: object) -> None:
    """A worker stops once: a busy one unwinds its grading (sandbox, working copy) through
    KeyboardInterrupt; an idle one, or a second signal during that unwinding, is ignored."""
    global _stopping
    if _stopping:
        return
    _stopping = True
    if _busy:
        raise KeyboardInterrupt


def _init_worker(
    slots: Any, root: Path, options: GradeOptions, warm: int, labs: tuple[str, ...]
) -> None:
    """Each worker process takes one sandbox slot for its lifetime (distinct uids per sandbox),
    and with WARM > 0 keeps that many kernels warming while it grades."""
    global _slot, _pool
    _slot = slots.get()
    # A Python handler, not SIG_IGN: the handler is not inherited across exec by the sandbox.
    signal.signal(signal.SIGINT, _on_sigint)
    if warm > 0:
        _pool = warm_pool(root, options, size=warm, labs=labs, slot=_slot)
        # run when the worker process exits normally (multiprocessing's own exit hook; atexit
        # does not run in a worker); a worker killed outright takes its sandboxes with it
        # (--die-with-parent) and the next batch's sweep_stale removes its working copies
        multiprocessing.util.Finalize(_pool, _pool.close, exitpriority=10)


def _grade_in_worker(root: Path, sub: Submission, options: GradeOptions) -> Graded:
    global _busy
    if _stopping:
        raise KeyboardInterrupt
    _busy = True
    try:
        return grade_submission(root, sub, options, slot=_slot, pool=_pool)
    finally:
        _busy = False


def _stop_workers(pool: cf.ProcessPoolExecutor) -> None:
    """Tell every worker to stop, give busy ones STOP_GRACE_SECONDS to unwind, then kill."""
    processes = list(pool._processes.values()) if pool._processes else []
    for process in processes:
        if process.is_alive() and process.pid is not None:
            os.kill(process.pid, signal.SIGINT)
    pool.shutdown(wait=False, cancel_futures=True)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
    for process in processes:
        if process.is_alive():
            process.kill()


def run_local(
    root: Path,
    subs: list[Submission],
    options: GradeOptions,
    workers: int,
    on_start: Callable[[Submission], None] | None = None,
    warm: int = 0,
) -> Generator[tuple[Submission, Graded | BaseException], None, None]:
    """Grade SUBS on WORKERS local processes (in this process when WORKERS is 1).

    Only as many submissions as there are workers are handed out at a time, so ON_START names
    what each worker is grading, and a stop has no queue to drain. With WARM > 0 each worker
    keeps WARM kernels warming (pool.py) while it grades; 0 starts each sandbox cold.
    """
    labs = tuple(dict.fromkeys(sub.lab for sub in subs))
    if workers <= 1 or len(subs) <= 1:
        with contextlib.ExitStack() as stack:  # the pool closes however the batch ends
            kernels = None
            if warm > 0 and len(subs) > 1:
                kernels = stack.enter_context(
                    warm_pool(root, options, size=warm, labs=labs, limit=len(subs))
                )
            for sub in subs:
                if on_start:
                    on_start(sub)
                try:
                    yield sub, grade_submission(root, sub, options, slot=0, pool=kernels)
                except Exception as err:  # an engine failure on one submission must not stop it
                    yield sub, err
        return
    context = multiprocessing.get_context("spawn")  # no forked copies of a half-started TensorFlow
    slots = context.Manager().Queue()
    for slot in range(workers):
        slots.put(slot)
    pool = cf.ProcessPoolExecutor(
        workers,
        mp_context=context,
        initializer=_init_worker,
        initargs=(slots, root, options, warm, labs),
    )
    waiting = deque(subs)
    running: dict[cf.Future[Graded], Submission] = {}
    try:
        while waiting or running:
            while waiting and len(running) < workers:
                sub = waiting.popleft()
                try:
                    future = pool.submit(_grade_in_worker, root, sub, options)
                except cf.process.BrokenProcessPool as err:  # a worker was killed
                    yield sub, err
                    continue
                if on_start:
                    on_start(sub)
                running[future] = sub
            if not running:
                continue
            done, _ = cf.wait(running, return_when=cf.FIRST_COMPLETED)
            for future in done:
                sub = running.pop(future)
                try:
                    yield sub, future.result()
                except Exception as err:  # BrokenProcessPool when a worker was killed
                    yield sub, err
    except BaseException:  # Ctrl-C, or the batch stopped (a full disk, a broken suite)
        _stop_workers(pool)
        raise
    pool.shutdown(wait=True)


def grade_class(
    root: Path,
    subs: list[Submission],
    options: GradeOptions,
    *,
    workers: int = 1,
    scheduler: str | None = None,
    force: bool = False,
    on_row: Callable[[Row], None] | None = None,
    progress: Progress | None = None,
    warm: int = 0,
) -> list[Row]:
    """Grade every submission not already done; land each result as it arrives.

    WARM: kernels each worker (local, or of the Dask cluster) keeps warming while it grades (0:
    every sandbox starts cold).

    A submission whose grading ends on a too busy host (`Results.host_busy`) lands, then is graded
    once more at the end of the batch as a retry (`GradeOptions.retry`); one an earlier batch left
    so is graded in that retry pass directly. Ctrl-C raises `Stopped` once the workers have stopped
    and what was graded has landed.
    """
    rows: dict[str, Row] = {}
    todo: list[Submission] = []
    again: list[Submission] = []  # graded (again) as retries, at the end
    for sub in subs:
        if not force and is_done(root, sub):
            rows[sub.student] = unchanged_row(root, sub)
        elif not force and was_busy(root, sub):
            again.append(sub)
        else:
            todo.append(sub)
    if progress:
        progress.plan(len(todo) + len(again), len(subs) - len(todo) - len(again))

    def started(sub: Submission, worker: str | None = None) -> None:
        if progress:
            progress.started(sub.student, worker)

    def graded(
        subs: list[Submission], options: GradeOptions
    ) -> Generator[tuple[Submission, Graded | BaseException], None, None]:
        if scheduler:  # Dask is imported only for a cluster; its workers need no shared disk
            from introdl.grading.cluster.dask_run import run_dask

            return run_dask(root, subs, options, scheduler, warm=warm, on_start=started)
        return run_local(root, subs, options, workers, on_start=started, warm=warm)

    def passes() -> Generator[tuple[Submission, Graded | BaseException, bool], None, None]:
        """The batch, then its retries of the submissions a too busy host left ungraded; each
        outcome with whether it is final (a busy first grading lands, but makes no row)."""
        with contextlib.closing(graded(todo, options)) as first:  # closed at once on a stop
            for sub, outcome in first:
                busy = isinstance(outcome, Graded) and bool(outcome.results.host_busy)
                if busy:
                    again.append(sub)
                yield sub, outcome, not busy
        if again:
            retry = dataclasses.replace(options, retry=True)
            with contextlib.closing(graded(list(again), retry)) as second:
                for sub, outcome in second:
                    yield sub, outcome, True

    stream = passes()
    # Landing (nbgrader's preprocessors, the gradebook, files) runs on one thread of its own, in
    # arrival order, while the next submission is graded: with one in-process worker the two
    # overlap instead of adding up. Rows are recorded, and on_row called, on this thread.
    # The gradebook module is imported here, on this thread, before any landing starts.
    import introdl.grading.record.gradebook  # noqa: F401

    with cf.ThreadPoolExecutor(1, thread_name_prefix="introdl-land") as lander:
        landing: deque[tuple[Submission, cf.Future[Row], bool]] = deque()

        def record(row: Row) -> None:
            rows[row.student] = row
            if progress:
                progress.landed(row)
            if on_row:
                on_row(row)

        def collect(wait: bool) -> None:
            """Record the landings that have finished, in order (all of them with WAIT)."""
            while landing and (wait or landing[0][1].done()):
                sub, future, final = landing.popleft()
                try:
                    row = future.result()
                    if final:  # a busy first grading has its row after its retry
                        record(row)
                except Exception as err:
                    if disk_full_errno(err):
                        raise disk_full(root, sub, err, rows) from err
                    raise

        try:
            for sub, outcome, final in stream:
                collect(wait=False)
                if not isinstance(outcome, BaseException):
                    landing.append((sub, lander.submit(land, root, sub, outcome), final))
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
        except KeyboardInterrupt:
            stream.close()  # the workers stop (each unwinds its sandbox) before anything else
            collect(wait=True)  # what was graded before the interrupt lands whole
            raise stopped(rows, len(subs), force) from None
        finally:
            stream.close()  # a batch stopped by BadInput closes its Dask client and pools now
        collect(wait=True)
    return [rows[s.student] for s in subs]


def stopped(rows: dict[str, Row], total: int, force: bool) -> Stopped:
    kept = sum(1 for row in rows.values() if row.status in ("graded", "unchanged"))
    again = "the same command without --force" if force else "the same command"
    return Stopped(
        f"stopped (Ctrl-C): {kept} of {total} submission(s) are graded and kept. To finish, "
        f"run {again} again: graded submissions are not regraded."
    )


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

"""Grading one submission: working copy -> sandboxed kernel -> hidden tests -> Results.

This is the worker's step. It never writes the gradebook and never trusts the kernel: scores come
from the hidden tests' outcomes in this process. A submission that cannot be run (broken JSON,
another lab's notebook) gets Results with a zero on every cell and the reason.
"""

from __future__ import annotations

import contextlib
import dataclasses
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from introdl.grading.door.student import Student
from introdl.grading.hidden.busy import BusyWatch
from introdl.grading.hidden.runner import run_hidden_tests
from introdl.grading.kernel.launch import start_kernel
from introdl.grading.kernel.notebook import CellRecord, NotebookRun, run_notebook
from introdl.grading.pool import KernelPool
from introdl.grading.record.live import Listener, notify
from introdl.grading.record.results import CellRun, Event, Phases, Results, Sandbox, TestResult
from introdl.grading.sandbox import default_backend, gpu_count
from introdl.grading.sandbox.limits import DEFAULT_LIMITS, Limits, lab_limits
from introdl.grading.sandbox.public_data import public_data_dir
from introdl.grading.sandbox.working_copy import working_copy
from introdl.grading.submission import (
    Submission,
    SubmissionError,
    check_lab,
    grade_points,
    prepare_workdir,
    read_notebook,
    restore_locked_cells,
)

# Inside the sandbox every training loop runs at the smoke budget: grading time is bounded by the
# hidden tests' own budgets, never by how long a student chose to train.
SANDBOX_BUDGET = "smoke"


@dataclass(frozen=True)
class GradeOptions:
    """How to grade: sandbox backend, seed, limits, and (for calibration) a subset of tests."""

    backend: str | None = None  # None = docker where a Docker socket exists, else bwrap
    seed: int | None = None  # None = a fresh seed per submission, recorded in results.json
    limits: Limits = DEFAULT_LIMITS
    only: tuple[str, ...] = ()  # grade ids or test names; () = every hidden test
    image: str | None = None  # docker backend: the course image (None: its default)
    # docker backend: GPUs to ask the engine for: None none, -1 (ALL_GPUS) all, N > 0 that many
    # (True and False, the flag this once was, are taken as all and none)
    gpus: int | None = None
    extra_env: tuple[tuple[str, str], ...] = ()
    # The second grading of a submission whose first ended on a too busy host (kernel/cpu.py): a
    # limit that runs out while the CPU was there and unused is then the submission's own.
    retry: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "gpus", gpu_count(self.gpus))  # ValueError for 0 and below -1

    def backend_name(self) -> str:
        return self.backend or default_backend()


@dataclass(frozen=True)
class Graded:
    """What a worker sends back: plain JSON-able data only."""

    results: Results
    notebook_json: str | None  # the executed notebook (None when it could not be run)
    notes: tuple[str, ...] = field(default=())


def sandbox_env(options: GradeOptions) -> dict[str, str]:
    """The environment added inside the sandbox, the same cold or warm."""
    return {"INTRODL_BUDGET": SANDBOX_BUDGET, **dict(options.extra_env)}


def warm_pool(
    root: Path,
    options: GradeOptions,
    *,
    size: int = 1,
    labs: tuple[str, ...] = (),
    slot: int = 0,
    limit: int | None = None,
    datadir: Path | None = None,
) -> KernelPool:
    """A pool of warm kernels that grade exactly as OPTIONS say (backend, limits, environment);
    LIMIT: how many kernels to start at most (a batch of N submissions needs N); DATADIR: the
    sandboxes' /data (default: this machine's public data sets; a Dask worker's data bundle)."""
    return KernelPool(
        root,
        size=size,
        labs=labs,
        backend=options.backend_name(),
        limits=options.limits,
        env=sandbox_env(options),
        image=options.image,
        gpus=options.gpus,
        slot=slot,
        limit=limit,
        datadir=datadir,
    )


def pool_matches(pool: KernelPool, options: GradeOptions) -> None:
    """A pool built for other options would grade differently from the cold path: refuse it."""
    wanted = (
        options.backend_name(),
        options.limits,
        sandbox_env(options),
        options.image,
        options.gpus,
    )
    if (pool.backend, pool.limits, pool.env, pool.image, pool.gpus) != wanted:
        raise ValueError("the kernel pool was built for other grading options; use warm_pool()")


def release_notebook(root: Path, lab: str) -> NotebookNode:
    path = root / "release" / lab / f"{lab}.ipynb"
    nb: NotebookNode = nbformat.read(path, as_version=4)
    return nb


def grade_submission(
    root: Path,
    submission: Submission,
    options: GradeOptions,
    *,
    slot: int = 0,
    pool: KernelPool | None = None,
    datadir: Path | None = None,
    on_progress: Listener | None = None,
) -> Graded:
    """Grade SUBMISSION of its lab in sandbox slot SLOT (distinct per concurrent grading).

    ROOT holds release/<lab>/ and grader_tests/ (the course, or a worker's lab bundle); DATADIR
    is the sandbox's read-only /data (default: the public sets of this machine's data cache;
    a pool's kernels have their data view already). With POOL (see `warm_pool`) the kernel is a
    warm one taken from it, used for this submission only; `phases.sandbox_start` is then how long
    the submission waited for it. Without, the sandbox and kernel are started here (the cold path).
    ON_PROGRESS receives the grading's events as they happen (introdl/grading/record/live.py).
    """
    started = time.monotonic()
    lab = submission.lab
    release = release_notebook(root, lab)
    points = grade_points(release)
    seed = options.seed if options.seed is not None else secrets.randbits(31)
    backend = options.backend_name()
    sandbox = Sandbox(backend=backend, sandboxed=backend != "none")

    def results(**kw: object) -> Results:
        return Results(
            lab=lab,
            student=submission.student,
            seed=seed,
            max_points=points,
            sandbox=sandbox,
            timestamp=submission.timestamp,
            execution_time=time.monotonic() - started,
            **kw,  # type: ignore[arg-type]
        )

    try:
        nb = read_notebook(submission.notebook)
        check_lab(nb, release, lab)
        nb, notes = restore_locked_cells(nb, release)
    except SubmissionError as err:
        return Graded(
            results(errors=(str(err),), phases=Phases(total=time.monotonic() - started)), None
        )

    t_start = time.monotonic()
    with contextlib.ExitStack() as stack:
        limits = lab_limits(root / "grader_tests" / lab, options.limits)
        if pool is None:
            copy = stack.enter_context(working_copy(slot, limits))
            notes += prepare_workdir(submission, nb, copy.path, quota=copy.quota)
            t_start = time.monotonic()
            kernel = start_kernel(
                workdir=copy.path,
                datadir=datadir if datadir is not None else public_data_dir(root, lab),
                backend=backend,
                slot=slot,
                limits=limits,
                env=sandbox_env(options),
                image=options.image,
                gpus=options.gpus,
            )
            stack.enter_context(kernel)
        else:
            pool_matches(pool, options)
            if datadir is not None:
                raise ValueError(
                    "a warm pool's kernels see this machine's public data, not DATADIR"
                )
            warm = stack.enter_context(pool.take(lab))  # destroyed when grading ends
            copy, kernel = warm.copy, warm.kernel
            notes += warm.bind(submission, nb)
        sandbox = dataclasses.replace(sandbox, workdir_quota=copy.quota)
        workdir = copy.path
        t_notebook = time.monotonic()
        kernel.meter.retry = options.retry
        busy = BusyWatch(kernel.meter, limits.grading_timeout)  # the grading limit's window
        code = [i for i, cell in enumerate(nb.cells) if cell.cell_type == "code"]
        notify(on_progress, {"event": "notebook", "code_cells": len(code)})
        on_cell = cell_event(on_progress, code, public_checks(nb))
        run = run_notebook(kernel, workdir / submission.notebook.name, on_cell)
        t_tests = time.monotonic()
        tests = run_hidden_tests(
            root / "grader_tests" / lab,
            Student(kernel),
            seed=seed,
            points=points,
            only=options.only,
            deadline=t_notebook + limits.grading_timeout,
            on_event=on_progress,
            busy=busy,
        )
        t_end = time.monotonic()
        events = tuple(Event("repaired", note) for note in notes)
        events += tuple(Event(e.kind, e.detail, e.cell) for e in kernel.events)
    tests, host_busy = busy_verdicts(tests, [e.message for e in events if e.kind == "host_busy"])
    executed = run.executed_notebook(nb)
    phases = Phases(
        sandbox_start=t_notebook - t_start,
        notebook=t_tests - t_notebook,
        hidden_tests=t_end - t_tests,
        total=time.monotonic() - started,
    )
    graded = results(
        tests=tuple(tests),
        phases=phases,
        events=events,
        cells=cell_runs(run),
        host_busy=host_busy,
    )
    return Graded(graded, nbformat.writes(executed), tuple(notes))


def busy_verdicts(
    tests: list[TestResult], notebook: list[str]
) -> tuple[list[TestResult], tuple[str, ...]]:
    """TESTS with every test that did not pass after a too busy host's first word (NOTEBOOK: the
    sandbox's `host_busy` events, which come before every test) made an error, 0 points for now:
    the kernel it needed may have been interrupted or killed by that limit. And the sentences
    (none when every test passed: there is nothing to grade again)."""
    said = list(notebook)
    out: list[TestResult] = []
    for test in tests:
        if test.host_busy:
            said.append(test.output)
        elif said and test.status != "passed":
            words = f"not judged: {said[0]} (this run said: {test.output or test.status})"
            test = dataclasses.replace(test, status="error", score=0.0, output=words)
            test = dataclasses.replace(test, host_busy=True)
        out.append(test)
    if all(t.status == "passed" for t in out):
        return out, ()  # full marks whatever the host did: nothing to grade again
    return out, tuple(dict.fromkeys(said))


def public_checks(nb: NotebookNode) -> set[int]:
    """The indices of NB's grade cells: the public checks nbgrader scores (not answer cells)."""
    marks = [cell.get("metadata", {}).get("nbgrader", {}) for cell in nb.cells]
    return {i for i, m in enumerate(marks) if m.get("grade") and not m.get("solution")}


def cell_event(
    listener: Listener | None, code: list[int], checks: set[int]
) -> Callable[[CellRecord], None] | None:
    """The notebook runner's per-cell callback that tells LISTENER which code cell ended, counted
    as JupyterLab counts code cells (CODE: the notebook indices of its code cells), with the grade
    id of the public checks (CHECKS: the grade cells' indices)."""
    if listener is None:
        return None
    position = {index: k + 1 for k, index in enumerate(code)}

    def ended(record: CellRecord) -> None:
        grade_id = record.grade_id if record.index in checks else None
        event = {"event": "cell", "code_cell": position.get(record.index),
                 "heading": record.heading, "grade_id": grade_id,
                 "status": record.status}  # fmt: skip
        notify(listener, event)

    return ended


def cell_runs(run: NotebookRun) -> tuple[CellRun, ...]:
    return tuple(
        CellRun(
            index=c.index,
            status=c.status,
            duration=c.duration,
            grade_id=c.grade_id,
            message=f"{c.ename}: {c.evalue}" if c.ename else (c.evalue or ""),
            code_number=c.code_number,
            heading=c.heading,
        )
        for c in run.cells
    )

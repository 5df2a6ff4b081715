"""The check service's grading workers: take the fairest next check, grade it, store the verdict.

Gradings run in spawned worker processes (imports paid once per process, no forked copy of a
half-started TensorFlow), one process per worker, each with its own warm kernels; the queue and
its SQLite stay in the service's own process. A check whose grading killed its worker process,
or that was in flight at MAX_ATTEMPTS restarts, gets a verdict that says so instead of being
retried for ever.

A watchdog bounds every grading: the lab's grading limit (`grading_timeout` in
grader_tests/<lab>/limits.toml, which already bounds the notebook and the hidden tests) plus
`c.CheckService.watchdog_margin` seconds for the sandbox's start and what grading does around
the notebook. Past it the worker is stopped (SIGTERM unwinds the grading and its sandbox; a
worker that does not answer within STOP_GRACE seconds is killed, its sandboxes dying with it, and
replaced), the student reads in words that the check ran out of time, and the next check starts.
Whatever happens to a grading, its check ends `done` with a verdict: none is left `running`
(only a service that stops leaves checks running, and its next start queues them again).
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import contextlib
import logging
import multiprocessing
import signal
import time
from collections.abc import Callable
from pathlib import Path
from queue import Empty
from typing import Any

from introdl.checkwork.fair_queue import Check, CheckQueue
from introdl.checkwork.grader import grade_check
from introdl.checkwork.live import LiveChecks, with_first_result
from introdl.checkwork.settings import course_settings
from introdl.grading.grade import GradeOptions
from introdl.grading.kernel.launch import sweep_stale
from introdl.grading.pool import PoolTimeout
from introdl.grading.sandbox.limits import DEFAULT_LIMITS, lab_limits

log = logging.getLogger("introdl.checkwork")
MAX_ATTEMPTS = 3
STOP_GRACE = 10.0  # seconds a stopped grading has to unwind its sandbox before its worker is killed


def failed(check: Check, reason: str) -> dict[str, Any]:
    """A verdict for a check the engine could not grade (shown to the student as its status)."""
    return {"lab": check.lab, "student": check.student, "score": 0.0, "max_score": 0.0,
            "tests": [], "errors": [reason]}  # fmt: skip


def _next_event(channel: Any) -> tuple[int, dict[str, Any]] | None:
    """The next (check id, event) from the worker processes, or None after a second of quiet."""
    try:
        got: tuple[int, dict[str, Any]] = channel.get(timeout=1.0)
    except Empty:
        return None
    return got


class GradingStopped(Exception):
    """A grading was stopped by SIGTERM (the watchdog, or the service stopping)."""


def _grade(
    check_id: int,
    course: Path,
    lab: str,
    student: str,
    notebook: bytes,
    slot: int,
    warm: int,
    take: float,
    options: GradeOptions,
) -> dict[str, Any]:
    try:
        return grade_check(
            course, lab, student, notebook, slot=slot, warm=warm, take_timeout=take,
            options=options, on_progress=_progress_of(check_id),
        )  # fmt: skip
    except SystemExit:  # sent back as a plain error: a SystemExit would end the service's loop
        raise GradingStopped("the grading was stopped") from None


def _leave(signum: int, frame: object) -> None:
    raise SystemExit(0)  # unwinds a grading in progress; the warm pool closes at process exit


# This worker process's channel back to the service (a multiprocessing queue, set at start).
_CHANNEL: Any = None


def _init_worker(channel: Any = None) -> None:
    global _CHANNEL
    _CHANNEL = channel
    signal.signal(signal.SIGTERM, _leave)


def _progress_of(check_id: int) -> Callable[[dict[str, Any]], None] | None:
    """Send a grading's progress events to the service, tagged with CHECK_ID (the live view)."""
    channel = _CHANNEL
    if channel is None:
        return None
    return lambda event: channel.put((check_id, event))


def grading_limit(course: Path, lab: str) -> float:
    """LAB's grading limit in seconds (its limits.toml; the engine's default when unreadable)."""
    try:
        return lab_limits(course / "grader_tests" / lab, DEFAULT_LIMITS).grading_timeout
    except Exception:  # a broken limits.toml fails the grading itself, with its own words
        return DEFAULT_LIMITS.grading_timeout


def overran(check: Check, limit: float, margin: float) -> dict[str, Any]:
    """The verdict of a check the watchdog stopped."""
    return failed(
        check,
        f"your check was stopped: it took longer than {check.lab}'s limit of "
        f"{limit + margin:.0f} s ({limit:.0f} s to run the notebook and the tests, {margin:.0f} s "
        "to start the sandbox). A cell that never ends or trains far too long is the usual cause: "
        "run your notebook top to bottom yourself, fix the slow cell, then check again",
    )


class Worker:
    """One grading process, with its warm kernels; replaced when it must be killed."""

    def __init__(self, slot: int, channel: Any = None) -> None:
        self.slot = slot
        self.channel = channel
        self.executor = self._new()

    def _new(self) -> cf.ProcessPoolExecutor:
        context = multiprocessing.get_context("spawn")
        return cf.ProcessPoolExecutor(
            1, mp_context=context, initializer=_init_worker, initargs=(self.channel,)
        )

    def processes(self) -> list[multiprocessing.Process]:
        return list((self.executor._processes or {}).values())

    def stop(self) -> None:
        """SIGTERM the process (a grading unwinds; an idle worker leaves), then kill it."""
        processes = self.processes()
        for process in processes:
            with contextlib.suppress(OSError, ValueError):
                process.terminate()
        self.executor.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.join(timeout=STOP_GRACE)
            if process.is_alive():
                process.kill()
                process.join(timeout=STOP_GRACE)

    def replace(self) -> None:
        """A fresh process for the next check (this one is broken or being stopped)."""
        old = self.executor
        self.executor = self._new()
        old.shutdown(wait=False, cancel_futures=True)


class Serving:
    """What every grader of the service's queue keeps (Workers here, ClusterWorkers on Dask): the
    QUEUE it serves, the course at COURSE, WARM sandboxed kernels per worker (0: cold), MARGIN
    (seconds a grading may take beyond its lab's limit before the watchdog stops it; default the
    course's c.CheckService.watchdog_margin), OPTIONS (how the engine grades: backend, image), and
    the live view of running checks."""

    def __init__(
        self,
        queue: CheckQueue,
        course: Path,
        warm: int = 0,
        margin: float | None = None,
        options: GradeOptions | None = None,
    ) -> None:
        self.queue = queue
        self.course = course
        self.warm = warm
        self.options = options or GradeOptions()
        self.margin = float(course_settings(course).watchdog_margin if margin is None else margin)
        self.wake = asyncio.Event()
        self.live = LiveChecks()  # running checks' results so far, from the workers' events
        self.on_done: Callable[[Check], None] | None = None


class Workers(Serving):
    """WORKERS gradings at once on this host, each worker process keeping its warm sandboxed
    kernels (introdl/grading/pool.py), each for one check; the rest as for `Serving`."""

    def __init__(
        self,
        queue: CheckQueue,
        course: Path,
        workers: int,
        warm: int = 0,
        margin: float | None = None,
        options: GradeOptions | None = None,
    ) -> None:
        super().__init__(queue, course, warm, margin, options)
        self.workers = workers
        self.channel = multiprocessing.get_context("spawn").Queue()
        self.slots = [Worker(100 + i, self.channel) for i in range(workers)]

    async def run(self) -> None:
        """Serve the queue for ever (or until cancelled)."""
        try:
            await asyncio.gather(self._listen(), *(self._one(worker) for worker in self.slots))
        finally:
            self.stop()

    async def _listen(self) -> None:
        """Bring the workers' progress events into the live view, on the service's own loop."""
        loop = asyncio.get_running_loop()
        while True:
            got = await loop.run_in_executor(None, _next_event, self.channel)
            if got is not None:
                self.live.update(*got)

    def stop(self) -> None:
        """End the worker processes: a grading in progress unwinds its sandbox, the warm kernels
        are destroyed (its check stays in the queue, re-queued at the next start)."""
        for worker in self.slots:
            worker.stop()

    async def _one(self, worker: Worker) -> None:
        while True:
            check = self.queue.take()
            if check is None:
                self.wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), timeout=2.0)
                continue
            self.live.start(check.id)
            try:
                results = await self._grade(worker, check)
            except Exception as err:  # never leave a check running: it gets a verdict
                log.exception("check %d: the worker failed", check.id)
                results = failed(
                    check, f"the check could not be graded ({type(err).__name__}); ask staff"
                )
            results = with_first_result(results, self.live.finish(check.id), check)
            self.queue.finish(check.id, results)
            log.info("check %d: %s / %s", check.id, results.get("score"), results.get("max_score"))
            if self.on_done is not None:
                self.on_done(self.queue.get(check.id))

    async def _grade(self, worker: Worker, check: Check) -> dict[str, Any]:
        if check.attempts > MAX_ATTEMPTS:
            return failed(
                check, "the check service restarted while grading this notebook several "
                "times; ask staff to look at it"
            )  # fmt: skip
        loop = asyncio.get_running_loop()
        notebook = self.queue.notebook(check.id)
        limit = grading_limit(self.course, check.lab)
        # a warm kernel must come well within the margin, so that its absence is named as such
        take = max(1.0, self.margin * 2 / 3)
        log.info("grading check %d (%s, %s)", check.id, check.student, check.lab)
        executor = worker.executor
        started = time.monotonic()
        future = loop.run_in_executor(
            executor, _grade, check.id, self.course, check.lab, check.student, notebook, worker.slot,
            self.warm, take, self.options,
        )  # fmt: skip
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout=limit + self.margin)
        except TimeoutError:
            log.error(
                "check %d (%s, %s): still grading after %.0f s (limit %.0f + margin %.0f s); "
                "stopping its worker", check.id, check.student, check.lab,
                time.monotonic() - started, limit, self.margin,
            )  # fmt: skip
            await self._stop_grading(worker, executor, future)
            return overran(check, limit, self.margin)
        except cf.process.BrokenProcessPool:
            log.error("check %d: a grading worker died; starting a new one", check.id)
            if worker.executor is executor:
                worker.replace()
            return failed(check, "the grading worker stopped while grading this notebook; ask "
                          "again, and tell staff if it happens again")  # fmt: skip
        except PoolTimeout as err:
            log.error("check %d: %s", check.id, err)
            return failed(check, f"the check could not start: {err}")
        except Exception as err:  # the engine failed on this notebook: say so, go on
            log.exception("check %d failed in the engine", check.id)
            return failed(check, f"the check could not be graded ({type(err).__name__}); ask staff")

    async def _stop_grading(
        self, worker: Worker, executor: cf.ProcessPoolExecutor, future: asyncio.Future[Any]
    ) -> None:
        """SIGTERM the worker: its grading unwinds (the sandbox is destroyed) and the process
        stays, with its warm kernels. A worker that has not answered within STOP_GRACE (a
        grading stuck where signals cannot reach it) is killed and replaced; its sandboxes die
        with it, and what they leave on disk is swept as at the service's start."""
        processes = list((executor._processes or {}).values())
        for process in processes:
            with contextlib.suppress(OSError, ValueError):
                process.terminate()
        future.add_done_callback(lambda f: f.cancelled() or f.exception())  # seen, not logged
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.shield(future), timeout=STOP_GRACE)
        if future.done() and all(process.is_alive() for process in processes):
            log.info("the stopped grading ended: %r; its worker goes on", future.exception())
            return  # the grading unwound; the worker is free again
        log.error("a grading worker did not stop within %.0f s: killing it", STOP_GRACE)
        for process in processes:
            with contextlib.suppress(OSError, ValueError):
                process.kill()
        if worker.executor is executor:
            worker.replace()
        loop = asyncio.get_running_loop()
        for process in processes:
            await loop.run_in_executor(None, process.join, STOP_GRACE)
        swept = await loop.run_in_executor(None, sweep_stale)
        if swept:
            log.info("removed %d stale sandbox(es) of stopped graders", len(swept))

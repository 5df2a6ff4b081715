"""The check service's grading workers: take the fairest next check, grade it, store the verdict.

Gradings run in spawned worker processes (imports paid once per process, no forked copy of a
half-started TensorFlow); the queue and its SQLite stay in the service's own process. A check
whose grading killed its worker process, or that was in flight at MAX_ATTEMPTS restarts, gets a
verdict that says so instead of being retried for ever.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import contextlib
import logging
import multiprocessing
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

from introdl.check.fair_queue import Check, CheckQueue
from introdl.check.grader import grade_check

log = logging.getLogger("introdl.check")
MAX_ATTEMPTS = 3


def failed(check: Check, reason: str) -> dict[str, Any]:
    """A verdict for a check the engine could not grade (shown to the student as its status)."""
    return {"lab": check.lab, "student": check.student, "score": 0.0, "max_score": 0.0,
            "tests": [], "errors": [reason]}  # fmt: skip


def _grade(
    course: Path, lab: str, student: str, notebook: bytes, slot: int, warm: int
) -> dict[str, Any]:
    return grade_check(course, lab, student, notebook, slot=slot, warm=warm)


def _leave(signum: int, frame: object) -> None:
    raise SystemExit(0)  # unwinds a grading in progress; the warm pool closes at process exit


def _init_worker() -> None:
    signal.signal(signal.SIGTERM, _leave)


class Workers:
    """WORKERS gradings at once for QUEUE, against the course at COURSE; each worker process keeps
    WARM sandboxed kernels ready (introdl/grading/pool.py), each for one check."""

    def __init__(self, queue: CheckQueue, course: Path, workers: int, warm: int = 0) -> None:
        self.queue = queue
        self.course = course
        self.workers = workers
        self.warm = warm
        self.wake = asyncio.Event()
        self.pool = self._new_pool()
        self.on_done: Callable[[Check], None] | None = None

    def _new_pool(self) -> cf.ProcessPoolExecutor:
        context = multiprocessing.get_context("spawn")
        return cf.ProcessPoolExecutor(self.workers, mp_context=context, initializer=_init_worker)

    async def run(self) -> None:
        """Serve the queue for ever (or until cancelled)."""
        try:
            await asyncio.gather(*(self._one(100 + i) for i in range(self.workers)))
        finally:
            self.stop()

    def stop(self) -> None:
        """End the worker processes: a grading in progress unwinds its sandbox, the warm kernels
        are destroyed (its check stays in the queue, re-queued at the next start)."""
        processes = list(self.pool._processes.values())
        for process in processes:
            with contextlib.suppress(OSError, ValueError):
                process.terminate()
        self.pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()

    async def _one(self, slot: int) -> None:
        loop = asyncio.get_running_loop()
        while True:
            check = self.queue.take()
            if check is None:
                self.wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), timeout=2.0)
                continue
            if check.attempts > MAX_ATTEMPTS:
                results = failed(
                    check, "the check service restarted while grading this notebook several "
                    "times; ask staff to look at it"
                )  # fmt: skip
            else:
                notebook = self.queue.notebook(check.id)
                log.info("grading check %d (%s, %s)", check.id, check.student, check.lab)
                pool = self.pool
                try:
                    results = await loop.run_in_executor(
                        pool,
                        _grade,
                        self.course,
                        check.lab,
                        check.student,
                        notebook,
                        slot,
                        self.warm,
                    )
                except cf.process.BrokenProcessPool:
                    log.error("check %d: a grading worker died; starting new workers", check.id)
                    if self.pool is pool:
                        self.pool = self._new_pool()
                    results = failed(check, "the grading worker stopped while grading this "
                                     "notebook; ask again, and tell staff if it happens again")  # fmt: skip
                except Exception as err:  # the engine failed on this notebook: say so, go on
                    log.exception("check %d failed in the engine", check.id)
                    results = failed(
                        check, f"the check could not be graded ({type(err).__name__}); ask staff"
                    )
            self.queue.finish(check.id, results)
            log.info("check %d: %s / %s", check.id, results.get("score"), results.get("max_score"))
            if self.on_done is not None:
                self.on_done(self.queue.get(check.id))

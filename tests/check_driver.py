"""Drive the check service's grading workers without a hub: queue checks, serve, read verdicts."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import nbformat

from introdl.checkwork.fair_queue import Check, CheckQueue, Limits
from introdl.checkwork.workers import Workers
from introdl.grading.sandbox import processes_of_uid
from introdl.grading.sandbox.limits import SANDBOX_UID_BASE

Ask = tuple[str, str, bytes]  # student, lab, notebook


def check_queue(path: Path) -> CheckQueue:
    """A queue with no daily limit and no cool-down to speak of."""
    return CheckQueue(path, Limits(checks_per_day=10_000, cooldown_seconds=0))


def serve_checks(
    workers: Workers,
    queue: CheckQueue,
    asks: list[Ask],
    bound: float,
    per_check: Callable[[str], float] | None = None,
) -> list[Check]:
    """Queue every ask at once, let WORKERS serve until all are done, BOUND seconds have passed,
    or a check has been running longer than PER_CHECK(its lab) seconds (a grading that never
    ends fails the test instead of hanging it); stop the workers as the service does; the
    checks as stored."""

    def overdue(check: Check) -> bool:
        if per_check is None or check.state != "running" or check.started_at is None:
            return False
        return time.time() - check.started_at > per_check(check.lab)

    async def serve() -> list[int]:
        ids = [queue.request(student, lab, notebook).id for student, lab, notebook in asks]
        serving = asyncio.create_task(workers.run())
        workers.wake.set()
        deadline = time.monotonic() + bound
        try:
            while time.monotonic() < deadline and not serving.done():
                checks = [queue.get(i) for i in ids]
                if all(c.state == "done" for c in checks) or any(overdue(c) for c in checks):
                    break
                await asyncio.sleep(0.5)
        finally:
            serving.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await serving
        return ids

    return [queue.get(i) for i in asyncio.run(serve())]


def workers_sandbox_processes() -> list[int]:
    """Processes of the sandbox uids of the service's worker slots (100-199) alive now."""
    uids = range(SANDBOX_UID_BASE + 100, SANDBOX_UID_BASE + 200)
    return [pid for uid in uids for pid in processes_of_uid(uid)]


def add_lab_copy(course: Path, lab: str, copy: str) -> None:
    """A second lab in COURSE: LAB's release (stamped as COPY's) and hidden suite as COPY."""
    nb = nbformat.read(course / "release" / lab / f"{lab}.ipynb", as_version=4)
    nb.metadata.setdefault("introdl", {})["generated_from"] = f"source/{copy}/{copy}.ipynb"
    (course / "release" / copy).mkdir(parents=True)
    nbformat.write(nb, course / "release" / copy / f"{copy}.ipynb")
    shutil.copytree(course / "grader_tests" / lab, course / "grader_tests" / copy)

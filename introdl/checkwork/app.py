"""The check service's state: the queue, the course, the grading workers, who is staff.

`CheckApp.ask` queues a check of the caller's own notebook (read from their home, notebook.py,
or from their running server, server_notebook.py; no request names a file or a student), and `describe` shows a check as its student may see it (the verdict
cut by visibility, grader.py). The web handlers (handlers.py) hold one CheckApp.
"""

from __future__ import annotations

import json
import logging
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jupyterhub.services.auth import HubOAuth
from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from introdl.checkwork.eta import (
    DEFAULT_SECONDS,
    RATE_WINDOW,
    finish_times,
    late_words,
    overtaken,
)
from introdl.checkwork.fair_queue import Check, CheckQueue
from introdl.checkwork.grader import student_view
from introdl.checkwork.live import live_view
from introdl.checkwork.notebook import HomeNotebooks, NotebookSource, due_date, released_labs
from introdl.checkwork.refusals import RefusalLog
from introdl.checkwork.workers import Workers
from introdl.grading.grade import GradeOptions
from introdl.staff.handins import ExchangeHandins
from introdl.staff.store import StaffStore

if TYPE_CHECKING:
    from introdl.checkwork.cluster_workers import Grading

log = logging.getLogger("introdl.checkwork")
GROUP_CACHE_SECONDS = 30.0
DUE_CACHE_SECONDS = 30.0


class CheckApp:
    """The service's state: the queue, the course, the grading workers."""

    def __init__(
        self,
        queue: CheckQueue,
        course: Path,
        *,
        staff_group: str,
        workers: int,
        warm: int = 0,
        refusals: RefusalLog | None = None,
        notebooks: NotebookSource | None = None,
        options: GradeOptions | None = None,
        staff: StaffStore | None = None,
    ) -> None:
        self.queue = queue
        self.refusals = refusals or RefusalLog(queue.path)
        self.course = course
        # Extensions, regrade requests, the audit trail (introdl/staff): beside the queue.
        self.staff = staff or StaffStore.beside(queue.path.parent)
        self.staff_group = staff_group
        # The exchange, asked for students' hand-in times (--exchange-url); None: not shown.
        self.handins: ExchangeHandins | None = None
        self.notebooks = notebooks or HomeNotebooks()
        self.workers: Grading = Workers(queue, course, workers, warm, options=options)
        # The singleton: the OAuth callback handler finds the login state (PKCE verifier) there.
        self.hub_auth = HubOAuth.instance(cache_max_age=5)
        self._groups: dict[str, tuple[float, set[str]]] = {}
        self._due: dict[str, tuple[float, datetime | None]] = {}

    def labs(self) -> list[str]:
        return released_labs(self.course)

    async def is_staff(self, name: str) -> bool:
        cached = self._groups.get(name)
        if cached is None or time.monotonic() - cached[0] > GROUP_CACHE_SECONDS:
            request = HTTPRequest(
                f"{self.hub_auth.api_url.rstrip('/')}/users/{name}",
                headers={"Authorization": f"token {self.hub_auth.api_token}"},
            )
            response = await AsyncHTTPClient().fetch(request, raise_error=False)
            if response.code != 200:
                raise web.HTTPError(503, "the check service could not ask the hub who is staff")
            cached = (time.monotonic(), set(json.loads(response.body).get("groups") or []))
            self._groups[name] = cached
        return self.staff_group in cached[1]

    def describe(self, check: Check) -> dict[str, Any]:
        """A check as its student may see it: state, place in the queue, ETA, the verdict."""
        row: dict[str, Any] = {
            "id": check.id,
            "lab": check.lab,
            "state": check.state,
            "requested_at": check.requested_at,
        }
        if check.state in ("queued", "running"):
            clock = time.time()
            means: dict[str, float] = {}

            def seconds(lab: str) -> float:
                if lab not in means:
                    means[lab] = self.queue.mean_seconds(lab) or DEFAULT_SECONDS
                return means[lab]

            order, running = self.queue.order(), self.queue.running()
            ends = finish_times(order, running, self.workers.workers, seconds, clock)
            end = ends.get(check.id, clock + seconds(check.lab))
            if check.state == "queued":
                ahead = self.queue.arrivals_ahead(check.student, clock - RATE_WINDOW)
                mean = statistics.fmean(seconds(c.lab) for c in order) if order else 0.0
                end = clock + overtaken(end - clock, ahead, mean, self.workers.workers)
            row["eta_seconds"] = round(max(1.0, end - clock), 1)
            row["late"] = late_words(end, self.due(check.lab))
        if check.state == "queued":
            row["position"] = 1 + next((i for i, c in enumerate(order) if c.id == check.id), 0)
        if check.state == "running":
            live = self.workers.live.get(check.id)
            if live is not None:
                due = self.due(check.lab)
                row["progress"] = live_view(live, due=due, now=datetime.now(UTC))
        if check.results is not None:
            now = datetime.now(UTC)
            row["verdict"] = student_view(check.results, due=self.due(check.lab), now=now)
            row["wait_seconds"] = round(check.wait or 0.0, 2)
        return row

    def due(self, lab: str) -> datetime | None:
        """LAB's due date, read from the gradebook at most every DUE_CACHE_SECONDS (pages of
        a long queue refresh every second)."""
        cached = self._due.get(lab)
        if cached is None or time.monotonic() - cached[0] > DUE_CACHE_SECONDS:
            cached = self._due[lab] = (time.monotonic(), due_date(self.course, lab))
        return cached[1]

    async def ask(self, student: str, lab: str) -> Check:
        """Queue a check of STUDENT's own notebook of LAB (NotebookError / OverLimit say why not);
        a request over the limits is refused before the notebook is read."""
        if lab not in self.labs():
            raise web.HTTPError(404, f"{lab} is not a released lab of this course")
        self.queue.refuse_over_limit(student, lab)
        notebook = await self.notebooks.read(student, lab)
        check = self.queue.request(student, lab, notebook)
        log.info("%s asked to check %s (check %d)", student, lab, check.id)
        self.workers.wake.set()
        return check

"""The regrade pages and API of the check service (routes in routes.py).

Who acts is the hub user (`self.user`) and nothing else: no request field names a student; a
`student` field that names someone else is refused and logged. Another student's request is
answered exactly like a missing one (404), and logged. Staff actions need the staff group, and an
escalated request the instructor group (`--instructor-group`, default the staff group). Every
refused request goes to the check service's refusal log. A rerun grades off the event loop, one
at a time.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from tornado import web

from introdl.checkwork import pages
from introdl.checkwork.app import CheckApp
from introdl.checkwork.handlers import Api, Base, Page
from introdl.staff import regrade_pages as html
from introdl.staff.regrade import RegradeDesk, RegradeError, Request, stamp
from introdl.staff.regrade_feedback import CourseReleases
from introdl.staff.regrade_settings import regrade_window

log = logging.getLogger("introdl.checkwork")
_RERUN = asyncio.Lock()  # one rerun at a time: each grades in a sandbox and writes the gradebook


def desk_of(app: CheckApp) -> RegradeDesk:
    """The app's regrade desk (made on first use when the service did not set one)."""
    desk = getattr(app, "regrades", None)
    if desk is None:
        desk = RegradeDesk(
            app.staff,
            app.course,
            regrade_window(app.course),
            CourseReleases(app.course),
            options=app.workers.options,
        )
        app.regrades = desk  # type: ignore[attr-defined]
    return desk


class Regrading(Base):
    """What the regrade pages and API share: the desk, who may do what, refusals."""

    @property
    def desk(self) -> RegradeDesk:
        return desk_of(self.app_state)

    async def is_instructor(self) -> bool:
        app = self.app_state
        await app.is_staff(self.user)  # fills the group cache
        group = getattr(app, "instructor_group", None) or app.staff_group
        return group in app._groups.get(self.user, (0.0, set()))[1]

    def no_student_field(self) -> None:
        claimed = self.get_argument("student", "")
        if claimed and claimed != self.user:
            self.refuse(
                403,
                self.action(),
                f"you are logged in to the hub as {self.user}: a regrade request is always "
                f"your own, so {self.user} cannot file or read {claimed}'s",
            )

    def request_of(self, request_id: str, *, staff: bool) -> Request:
        """The request (staff: any; a student: their own, another's answered like a missing one)."""
        req = self.desk.get(int(request_id)) if request_id.isdigit() else None
        if req is None or (not staff and req.student != self.user):
            why = f"regrade request {request_id} " + (
                f"belongs to {req.student}" if req is not None else "does not exist"
            )
            who = f"hub user {self.user}"
            self.app_state.refusals.record(who=who, action=self.action(), reason=why)
            log.warning("REFUSED %s: %s", who, why)
            raise web.HTTPError(404, f"you have no regrade request {request_id[:20]}")
        return req

    def refused(self, err: RegradeError) -> None:
        self.refuse(err.status, self.action(), str(err))

    def lab_rows(self) -> list[tuple[str, str, bool, list[Any]]]:
        desk = self.desk
        rows: list[tuple[str, str, bool, list[Any]]] = []
        asked = {(r.lab, r.item) for r in desk.mine(self.user)}
        now = time.time()
        for lab in self.app_state.labs():
            window = desk.window_of(self.user, lab)
            if window is None:
                rows.append((lab, "your feedback is not released yet", False, []))
                continue
            opens, closes = window
            is_open = opens <= now < closes
            words = (
                f"opens {stamp(opens)}"
                if now < opens
                else f"open until {stamp(closes)}"
                if is_open
                else f"closed {stamp(closes)}"
            )
            items = [i for i in desk.items(self.user, lab).values() if (lab, i.key) not in asked]
            rows.append((lab, words, is_open, items))
        return rows

    async def act(self, request_id: str, verb: str) -> Request:
        """A student's (accept, escalate) or staff's (answer, rerun, close, escalate) action."""
        desk = self.desk
        student_verbs = ("accept", "escalate")
        staff_path = "/staff/" in self.request.path
        if staff_path:
            await self.require_staff()
        elif verb not in student_verbs:
            raise web.HTTPError(404)
        req = self.request_of(request_id, staff=staff_path)
        comment = self.get_argument("comment", "")
        try:
            if not staff_path and verb == "accept":
                return desk.accept(req.id, self.user)
            if verb == "escalate":
                return desk.escalate(req.id, self.user, by_student=not staff_path)
            instructor = await self.is_instructor()
            if verb == "answer":
                raw = self.get_argument("score", "").strip()
                score = float(raw) if raw else None
                return desk.answer(
                    req.id, self.user, instructor=instructor, comment=comment, score=score
                )
            if verb == "close":
                return desk.close(req.id, self.user, instructor=instructor, comment=comment)
            if verb == "rerun":
                async with _RERUN:
                    loop = asyncio.get_running_loop()
                    return await loop.run_in_executor(
                        None,
                        lambda: desk.rerun(
                            req.id, self.user, instructor=instructor, comment=comment
                        ),
                    )
        except RegradeError as err:
            self.refused(err)
        except ValueError:
            self.refuse(400, self.action(), "the score must be a number")
        raise web.HTTPError(404)

    def file(self, lab: str) -> Request:
        self.no_student_field()
        if lab not in self.app_state.labs():
            self.refuse(404, self.action(), f"{lab[:100]} is not a released lab of this course")
        try:
            req = self.desk.file(
                self.user, lab, self.get_argument("item", ""), self.get_argument("reason", "")
            )
        except RegradeError as err:
            self.refused(err)
            raise
        log.info(
            "%s asked for a regrade of %s in %s (request %d)", self.user, req.item, lab, req.id
        )
        return req


class RegradesPage(Regrading, Page):
    @web.authenticated
    def get(self, lab: str = "") -> None:
        self.no_student_field()
        self.desk.sweep()
        self.render_page(
            html.student_page(
                self.lab_rows(),
                self.desk.mine(self.user),
                xsrf=self.form_token(),
                max_reason=self.desk.window.max_reason_chars,
                prefix=self.prefix,
            )
        )

    @web.authenticated
    def post(self, lab: str) -> None:
        self.file(lab)
        self.redirect(f"{self.prefix}regrades")


class RegradePage(Regrading, Page):
    @web.authenticated
    async def get(self, request_id: str) -> None:
        staff = "/staff/" in self.request.path
        if staff:
            await self.require_staff()
        req = self.request_of(request_id, staff=staff)
        trail = [
            a
            for a in self.app_state.staff.audit_trail(student=req.student, lab=req.lab)
            if (a.detail.get("id") or a.detail.get("request", {}).get("id")) == req.id
        ]
        self.render_page(
            html.request_page(
                req, staff_view=staff, xsrf=self.form_token(), trail=trail, prefix=self.prefix
            )
        )

    @web.authenticated
    async def post(self, request_id: str, verb: str) -> None:
        req = await self.act(request_id, verb)
        staff = "/staff/" in self.request.path
        self.redirect(
            f"{self.prefix}staff/regrades/{req.id}" if staff else f"{self.prefix}regrades"
        )


class StaffRegradesPage(Regrading, Page):
    @web.authenticated
    async def get(self) -> None:
        await self.require_staff()
        self.desk.sweep()
        self.render_page(
            pages.staff_nav(self.prefix) + html.queue_page(self.desk.queue(), prefix=self.prefix)
        )


def as_json(req: Request) -> dict[str, Any]:
    return dict(req.__dict__)


class ApiRegrades(Regrading, Api):
    def get(self) -> None:
        self.no_student_field()
        self.send_json([as_json(r) for r in self.desk.mine(self.user)])

    def post(self, lab: str) -> None:
        self.send_json(as_json(self.file(lab)), 201)


class ApiRegrade(Regrading, Api):
    def get(self, request_id: str) -> None:
        self.send_json(as_json(self.request_of(request_id, staff=False)))

    async def post(self, request_id: str, verb: str) -> None:
        self.send_json(as_json(await self.act(request_id, verb)))


class ApiStaffRegrades(Regrading, Api):
    async def get(self) -> None:
        await self.require_staff()
        self.send_json([as_json(r) for r in self.desk.queue()])

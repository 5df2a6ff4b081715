"""The check service's pages and API: who asks (the hub), what each request may do, refusals.

Pages log in through the hub (HubOAuth) and their forms carry the hub's XSRF form token; the API
takes a hub token in `Authorization` only. A state-changing request from another origin, a
cookie-only API call or a repeated `student` is refused before anything else, and every refusal
goes to the refusal log (refusals.py) with who and why. Pages carry a script-free CSP.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
from datetime import UTC, datetime
from typing import Any

from jupyterhub.services.auth import HubOAuthenticated
from tornado import web

from introdl.checkwork import errors, pages
from introdl.checkwork.app import CheckApp
from introdl.checkwork.fair_queue import Check, OverLimit
from introdl.checkwork.notebook import NotebookError
from introdl.hub import error_page
from introdl.hub.request_guard import (
    NO_SCRIPT_CSP,
    address,
    cross_origin_reason,
    page_csp,
    repeated_student,
)
from introdl.staff import late

log = logging.getLogger("introdl.checkwork")
PAGE_CSP = page_csp(base64.b64encode(hashlib.sha256(pages.STYLE.encode()).digest()).decode())


class Base(HubOAuthenticated, web.RequestHandler):  # type: ignore[misc]
    app_state: CheckApp

    def initialize(self, app: CheckApp) -> None:
        self.app_state = app
        self.hub_auth = app.hub_auth

    def set_default_headers(self) -> None:
        self.set_header("Content-Security-Policy", PAGE_CSP)
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Referrer-Policy", "same-origin")

    @property
    def user(self) -> str:
        return str(self.current_user["name"])

    _forged: str | None = None
    _cookie_owner: str | None = None

    def who(self) -> str:
        """The hub user when the request proved one (or carried their login cookie), else
        the address it came from."""
        known = getattr(self, "_hub_auth_user_cache", None)
        if known:
            return f"hub user {known['name']}"
        if self._cookie_owner:
            return f"hub user {self._cookie_owner} (their login cookie, sent by another page)"
        return f"address {address(self.request)}"

    def refuse(self, status: int, action: str, reason: str) -> None:
        """Log the refused request for staff (table and log), then answer it with the reason."""
        who = self.who()
        self.app_state.refusals.record(who=who, action=action, reason=reason)
        log.warning("REFUSED %s by %s: %s", action, who, reason)
        raise web.HTTPError(status, reason)

    def action(self) -> str:
        return f"{self.request.method} {self.request.path[:200]}"

    def forgery(self) -> str | None:
        """Why this request may not have been sent by the person (another origin, no form token)."""
        reason = cross_origin_reason(self.request)
        if reason:
            return reason
        try:
            super().check_xsrf_cookie()
        except web.HTTPError as err:
            return (
                f"the form token (_xsrf) is missing or wrong ({err.log_message}): only a page of "
                "the check service can send this request; reload the page and try again"
            )
        return None

    def check_xsrf_cookie(self) -> None:
        """Tornado calls this first for every state-changing request (`xsrf_cookies` is on), then
        HubOAuth before it trusts the login cookie. The first call notes a forgery, which
        `prepare` refuses once it knows whose cookie was sent; any later call refuses at once,
        so the cookie never authenticates a forged request."""
        reason = self.forgery()
        if reason is None:
            return
        if self.request.method not in ("GET", "HEAD", "OPTIONS") and self._forged is None:
            self._forged = reason
            return
        raise web.HTTPError(403, reason)

    async def prepare(self) -> None:
        if self._forged is not None:
            self._cookie_owner = await self.cookie_owner()
            self.refuse(403, self.action(), self._forged)
        reason = repeated_student(self.request)
        if reason:
            _ = self.current_user  # so that the log names who sent it
            self.refuse(400, self.action(), reason)

    async def cookie_owner(self) -> str | None:
        """The hub user whose login cookie came with a forged request (for the log only)."""
        token = self.hub_auth._get_token_cookie(self)
        if not token:
            return None
        try:
            model = await self.hub_auth.user_for_token(token, sync=False)
        except Exception:  # the log says "address" then; the refusal stands either way
            return None
        return str(model["name"]) if model else None

    def own_check(self, check_id: str) -> Check:
        """The caller's own check; another person's is answered exactly like a missing one."""
        try:
            check = self.app_state.queue.get(int(check_id))
        except (KeyError, ValueError):
            check = None
        if check is None or check.student != self.user:
            if check is not None:
                self.app_state.refusals.record(
                    who=f"hub user {self.user}",
                    action=self.action(),
                    reason=f"check {check_id} belongs to {check.student}",
                )
                log.warning(
                    "REFUSED %s asked for check %s of %s", self.user, check_id, check.student
                )
            raise web.HTTPError(404, f"you have no check {check_id}")
        return check

    async def require_staff(self) -> None:
        if not await self.app_state.is_staff(self.user):
            self.refuse(403, self.action(), f"{self.user} is not course staff")


class Api(Base):
    def get_login_url(self) -> str:
        raise web.HTTPError(403, "no valid hub token (Authorization: token ...)")

    def set_default_headers(self) -> None:
        self.set_header("Content-Security-Policy", NO_SCRIPT_CSP)
        self.set_header("X-Content-Type-Options", "nosniff")

    def forgery(self) -> str | None:
        """The API takes no form token (no page posts to it); the origin is still checked."""
        return cross_origin_reason(self.request)

    async def prepare(self) -> None:
        await super().prepare()
        user = self.current_user
        if user is None and self.request.headers.get("Authorization") is None:
            self.refuse(
                403,
                self.action(),
                "the check service's API needs a hub token (Authorization: token ...); "
                "the hub's login cookie alone is never accepted here",
            )
        if user is not None and not getattr(self, "_token_authenticated", False):
            self.refuse(
                403,
                self.action(),
                "the check service's API needs a valid hub token (Authorization: token ...); "
                f"the hub's login cookie of {user['name']} alone is never accepted here",
            )
        if user is None or user.get("kind", "user") != "user":
            self.refuse(403, self.action(), "this hub token does not belong to a course member")

    def send_json(self, value: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(value))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        # A browser opening an API address reads a page; a program, JSON.
        browser = error_page.wants_html(self.request)
        errors.answer(self, status_code, kwargs.get("exc_info"), api=not browser)


class ApiChecks(Api):
    def get(self) -> None:
        mine = self.app_state.queue.history(student=self.user)
        self.send_json([self.app_state.describe(c) for c in mine])


class ApiAsk(Api):
    async def post(self, lab: str) -> None:
        claimed = self.get_argument("student", "")
        if claimed and claimed != self.user:
            self.refuse(
                403,
                self.action(),
                f"you are logged in to the hub as {self.user}; a check grades the notebook of "
                f"the hub's name for your login, so {self.user} cannot check {claimed}'s work",
            )
        try:
            check = await self.app_state.ask(self.user, lab)
        except NotebookError as err:
            raise web.HTTPError(err.status, str(err)) from err
        except OverLimit as over:
            self.send_json(refusal(over), 429)
            return
        self.send_json(self.app_state.describe(check), 202)


class ApiCheck(Api):
    def get(self, check_id: str) -> None:
        self.send_json(self.app_state.describe(self.own_check(check_id)))


class ApiQueue(Api):
    async def get(self) -> None:
        await self.require_staff()
        queue = self.app_state.queue
        self.send_json(
            {
                "running": [c.id for c in queue.running()],
                "queued": [{"id": c.id, "student": c.student, "lab": c.lab} for c in queue.order()],
                "summary": queue.summary(),
            }
        )


class ApiRefusals(Api):
    async def get(self) -> None:
        await self.require_staff()
        self.send_json(self.app_state.refusals.recent())


class ApiLimits(Api):
    async def post(self, student: str, lab: str) -> None:
        await self.require_staff()
        extra = int(self.get_query_argument("extra", "0"))
        self.app_state.queue.grant(student, lab, extra, self.user)
        log.info("%s gave %s %d more checks of %s", self.user, student, extra, lab)
        self.send_json(
            {
                "student": student,
                "lab": lab,
                "allowance": self.app_state.queue.allowance(student, lab),
            }
        )


def refusal(over: OverLimit) -> dict[str, Any]:
    at = datetime.fromtimestamp(over.next_allowed, UTC)
    return {
        "status": 429,
        "message": f"{over.reason}; your next check is allowed at {at:%Y-%m-%d %H:%M:%S} UTC",
        "next_allowed": at.isoformat(),
    }


class Page(Base):
    def render_page(self, body: str, status: int = 200, *, refresh: bool = False) -> None:
        self.set_status(status)
        self.finish(pages.page(body, user=self.user, prefix=self.prefix, refresh=refresh))

    @property
    def prefix(self) -> str:
        return os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/check/")

    def form_token(self) -> str:
        token = self.xsrf_token
        return token.decode() if isinstance(token, bytes) else str(token)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """An error as a page that says what happened and what to do (errors.py)."""
        user = getattr(self, "_current_user", None)  # set once tornado has asked who it is
        who = str(user["name"]) if isinstance(user, dict) else ""
        errors.answer(self, status_code, kwargs.get("exc_info"), api=False, user=who)


class HomePage(Page):
    @web.authenticated
    async def get(self, lab: str = "") -> None:
        if lab:  # labs/<lab> is the form's target: opened as an address, it is the home page
            self.redirect(self.prefix)
            return
        app = self.app_state
        mine = [app.describe(c) for c in reversed(app.queue.history(student=self.user))]
        labs = [
            (lab, app.queue.next_allowed(self.user, lab), app.queue.allowance(self.user, lab))
            for lab in app.labs()
        ]
        # Due dates, the caller's own extension and late status (introdl/staff/late.py).
        due = late.deadlines_html(await late.student_deadlines(app, self.user))
        self.render_page(pages.home(labs, mine, xsrf=self.form_token(), deadlines=due))

    @web.authenticated
    async def post(self, lab: str = "") -> None:
        try:
            check = await self.app_state.ask(self.user, lab)
        except NotebookError as err:
            self.render_page(pages.refused(lab, str(err)), err.status)
            return
        except OverLimit as over:
            self.render_page(pages.refused(lab, refusal(over)["message"]), 429)
            return
        self.redirect(f"{self.prefix}checks/{check.id}")


class CheckPage(Page):
    @web.authenticated
    def get(self, check_id: str) -> None:
        row = self.app_state.describe(self.own_check(check_id))
        self.render_page(pages.check(row), refresh=row["state"] != "done")


class StaffPage(Page):
    @web.authenticated
    async def get(self) -> None:
        await self.require_staff()
        queue = self.app_state.queue
        self.render_page(
            pages.staff(
                queue.order(),
                queue.running(),
                queue.summary(),
                xsrf=self.form_token(),
                refusals=self.app_state.refusals.recent(),
                prefix=self.prefix,
            )
        )

    @web.authenticated
    async def post(self) -> None:
        await self.require_staff()
        student = self.get_body_argument("student")
        lab = self.get_body_argument("lab")
        extra = int(self.get_body_argument("extra", "0"))
        self.app_state.queue.grant(student, lab, extra, self.user)
        log.info("%s gave %s %d more checks of %s", self.user, student, extra, lab)
        self.redirect(f"{self.prefix}staff")

"""The exchange service's shared state and its base request handler: who the caller is.

Every request carries the caller's hub token (`Authorization: token ...`); `Handler` asks the hub
whose token it is (`HubAuth`) and refuses, logging who and why for staff, anything that is not a
course member's token, comes from another origin (request_guard.py) or repeats `student`.
Staff are the members of the hub group `Exchange.staff_group`, read from the hub with the
service's own token. The routes are in exchange_service.py.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from jupyterhub.services.auth import HubAuth, HubAuthenticated
from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from introdl.hub import error_page
from introdl.hub.archive import ArchiveError, Limits, check
from introdl.hub.exchange_store import ExchangeStore, StoreError, Submission, checked_name
from introdl.hub.request_guard import NO_SCRIPT_CSP, address, cross_origin_reason, repeated_student

log = logging.getLogger("introdl.exchange")
GROUP_CACHE_SECONDS = 30.0


class Exchange:
    """The service's state shared by its handlers."""

    def __init__(self, store: ExchangeStore, *, staff_group: str, limits: Limits) -> None:
        self.store = store
        self.staff_group = staff_group
        self.limits = limits
        self.hub_auth = HubAuth()
        self._groups: dict[str, tuple[float, set[str]]] = {}

    async def groups_of(self, name: str) -> set[str]:
        """The user's hub groups, asked of the hub with the service's own token (cached 30 s)."""
        cached = self._groups.get(name)
        if cached and time.monotonic() - cached[0] < GROUP_CACHE_SECONDS:
            return cached[1]
        request = HTTPRequest(
            f"{self.hub_auth.api_url.rstrip('/')}/users/{name}",
            headers={"Authorization": f"token {self.hub_auth.api_token}"},
        )
        response = await AsyncHTTPClient().fetch(request, raise_error=False)
        if response.code != 200:
            log.error("the hub answered %s for user %s's groups", response.code, name)
            raise web.HTTPError(503, "the exchange could not ask the hub who is staff")
        groups = set(json.loads(response.body).get("groups") or [])
        self._groups[name] = (time.monotonic(), groups)
        return groups


class Handler(HubAuthenticated, web.RequestHandler):  # type: ignore[misc]
    """JSON in and out; the caller is the hub user of the token, or the request is refused."""

    exchange: Exchange

    def initialize(self, exchange: Exchange) -> None:
        self.exchange = exchange
        self.hub_auth = exchange.hub_auth

    @property
    def store(self) -> ExchangeStore:
        return self.exchange.store

    def set_default_headers(self) -> None:
        self.set_header("Content-Security-Policy", NO_SCRIPT_CSP)
        self.set_header("X-Content-Type-Options", "nosniff")

    def check_xsrf_cookie(self) -> None:
        """Token-authenticated API: no cookies are accepted, so there is no XSRF to check."""

    def get_login_url(self) -> str:
        raise web.HTTPError(403, "no valid hub token: run nbgrader from your JupyterHub server")

    async def prepare(self) -> None:
        action = f"{self.request.method} {self.request.path[:200]}"
        reason = cross_origin_reason(self.request)
        if reason:
            self.refuse(action, "-", "", reason, status=403)
        if self.request.headers.get("Authorization") is None:
            self.refuse(
                action,
                "-",
                "",
                "no hub token: run nbgrader from your JupyterHub server",
                status=403,
            )
        model = self.current_user
        if not model or model.get("kind", "user") != "user":
            self.refuse(
                action, "-", "", "this hub token does not belong to a course member", status=403
            )
        reason = repeated_student(self.request)
        if reason:
            self.refuse(action, "-", "", reason, status=403)

    @property
    def user(self) -> str:
        return str(self.current_user["name"])

    def who(self) -> str:
        """The hub user of the token when known, else the address the request came from."""
        known = getattr(self, "_hub_auth_user_cache", None)
        return str(known["name"]) if known else f"(no hub user) {address(self.request)}"

    async def require_staff(self, action: str, lab: str) -> None:
        if self.exchange.staff_group not in await self.exchange.groups_of(self.user):
            self.refuse(action, lab, "", f"{self.user} is not course staff", status=403)

    def refuse(self, action: str, lab: str, claimed: str, reason: str, *, status: int) -> None:
        """Log the attempt for staff, then answer it with the reason."""
        who = self.who()
        self.store.refuse(hub_user=who, action=action, lab=lab, claimed=claimed, reason=reason)
        log.warning("REFUSED %s of %s by hub user %s: %s", action, lab, who, reason)
        raise web.HTTPError(status, reason)

    def lab_arg(self, lab: str) -> str:
        try:
            return checked_name(lab, "lab")
        except StoreError as error:
            raise web.HTTPError(400, str(error)) from error

    async def archive_body(self, action: str, lab: str) -> list[str]:
        """The body's file names once `check` has read it whole, in a thread (off the loop)."""
        try:
            return await asyncio.to_thread(check, self.request.body, self.exchange.limits)
        except ArchiveError as error:
            self.refuse(action, lab, "", f"the archive was refused: {error}", status=400)
            raise  # refuse raised already; this line only tells the type checker

    def send_json(self, value: Any) -> None:
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(value))

    def send_archive(self, blob: bytes, **headers: str) -> None:
        self.set_header("Content-Type", "application/gzip")
        for key, value in headers.items():
            self.set_header(f"X-Introdl-{key.capitalize()}", value)
        self.finish(blob)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        answer_error(self, status_code, kwargs.get("exc_info"))

    def submission_at(self, student: str, lab: str) -> Submission:
        stamp = self.get_query_argument("timestamp", "")
        try:
            if stamp:
                return self.store.find(student, lab, stamp)
            subs = self.store.submissions(lab=lab, student=student)
        except StoreError as error:
            raise web.HTTPError(404, str(error)) from error
        if not subs:
            raise web.HTTPError(404, f"{student} has not submitted {lab}")
        return subs[-1]


HOME = "the Assignment List in JupyterLab"
NO_PAGES = (
    "The course exchange has no pages: it is what the Assignment List in JupyterLab talks to "
    "when you fetch or submit a lab."
)


def answer_error(
    handler: web.RequestHandler, status: int, exc_info: Any, message: str = ""
) -> None:
    """A failed request's answer in words (error_page.py): JSON to nbgrader's client and other
    programs, a page to a browser."""
    said = message or error_page.reason(status, exc_info)
    if error_page.wants_html(handler.request):
        handler.set_header("Content-Type", "text/html; charset=UTF-8")
        service = "Course exchange"
        handler.finish(
            error_page.page(status, said, service=service, home=HOME, home_url="/hub/home")
        )
        return
    handler.set_header("Content-Type", "application/json")
    handler.finish(json.dumps(error_page.as_json(status, said, home=HOME)))


class NotFound(web.RequestHandler):
    """Any address the exchange does not have (tornado's default says "404: Not Found")."""

    def set_default_headers(self) -> None:
        self.set_header("Content-Security-Policy", NO_SCRIPT_CSP)
        self.set_header("X-Content-Type-Options", "nosniff")

    def check_xsrf_cookie(self) -> None:
        """Nothing happens here, so a POST to a wrong address is told so (404), not refused."""

    def prepare(self) -> None:
        raise web.HTTPError(404)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        answer_error(self, status_code, kwargs.get("exc_info"), NO_PAGES)

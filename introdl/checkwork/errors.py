"""The check service's errors, in words: its pages answer with a page of the service (what
happened, what to do, escaped), its API with JSON (introdl/hub/error_page.py says what each
status means). Also the two handlers whose errors tornado and the hub would otherwise answer
with a bare "404: Not Found" or "400: Bad Request": an address the service does not have, and
the end of the hub login (OAuth callback) gone wrong.
"""

from __future__ import annotations

import base64
import hashlib
import os
from typing import Any

from jupyterhub.services.auth import HubOAuthCallbackHandler
from tornado import web

from introdl.checkwork import pages
from introdl.hub import error_page
from introdl.hub.request_guard import NO_SCRIPT_CSP, page_csp

HOME = "the check service's home page"
PAGE_CSP = page_csp(base64.b64encode(hashlib.sha256(pages.STYLE.encode()).digest()).decode())
LOGIN_AGAIN = (
    "Your login to the check service did not complete: the link was old, or was opened in "
    "another tab or browser than the one that started it."
)


def prefix() -> str:
    return os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/check/")


def is_api(handler: web.RequestHandler) -> bool:
    """Whether HANDLER answers a program (an API address, not opened by a browser)."""
    api = handler.request.path.startswith(prefix().rstrip("/") + "/api/")
    return api and not error_page.wants_html(handler.request)


def answer(
    handler: web.RequestHandler,
    status: int,
    exc_info: Any,
    *,
    api: bool,
    user: str = "",
    message: str | None = None,
) -> None:
    """Finish HANDLER's failed request: JSON for the API, else a page of the service in words.
    MESSAGE, when given, replaces the service's own reason (error_page.reason)."""
    said = message if message is not None else error_page.reason(status, exc_info)
    if api:
        handler.set_header("Content-Type", "application/json")
        handler.finish(error_page.as_json(status, said, home=HOME))
        return
    handler.set_header("Content-Type", "text/html; charset=UTF-8")
    handler.set_header("Content-Security-Policy", PAGE_CSP)
    body = error_page.body_html(status, said, home=HOME, home_url=prefix())
    handler.finish(pages.page(body, user=user, prefix=prefix()))


class NotFound(web.RequestHandler):
    """Any address the service does not have (tornado's default says "404: Not Found")."""

    def set_default_headers(self) -> None:
        self.set_header("Content-Security-Policy", NO_SCRIPT_CSP if is_api(self) else PAGE_CSP)
        self.set_header("X-Content-Type-Options", "nosniff")

    def check_xsrf_cookie(self) -> None:
        """Nothing happens here, so a POST to a wrong address is told so (404), not refused."""

    def prepare(self) -> None:
        raise web.HTTPError(404)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        answer(self, status_code, kwargs.get("exc_info"), api=is_api(self))


class OAuthCallback(HubOAuthCallbackHandler):  # type: ignore[misc]
    """The hub's OAuth callback, whose refusals (an old or replayed login link, cookies from
    another browser) say so and what to do. What the link itself carries (the `error_description`
    the hub's code would put in its message) is never shown: anyone can write such a link."""

    def set_default_headers(self) -> None:
        self.set_header("Content-Security-Policy", PAGE_CSP)
        self.set_header("X-Content-Type-Options", "nosniff")

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        message = LOGIN_AGAIN if status_code < 500 else None
        answer(self, status_code, kwargs.get("exc_info"), api=False, message=message)

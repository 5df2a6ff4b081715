"""What the course's services answer when a request fails: words a person can act on.

Tornado's own error page says only "400: Bad Request"; a browser that reaches the check service or
the exchange with a wrong address, a forgotten form token or a stale login link gets instead a page
saying what happened and what to do, and a program (nbgrader's exchange client, curl, the check
API) gets the same as JSON: `{"status", "message", "what_to_do"}`. The service's own reason (an
`HTTPError` it raised with words) is shown as text, escaped by whoever renders it; an unexpected
exception's text never is (it goes to the service's log), nor is anything tornado or the hub's
OAuth code put in a message (an OAuth error's description is whatever the link said).
"""

from __future__ import annotations

from html import escape
from typing import Any

from tornado import web
from tornado.httputil import HTTPServerRequest

# Per status: what happened, and what to do ({home} is where the person starts again).
WORDS: dict[int, tuple[str, str]] = {
    400: (
        "This request could not be understood",
        "Something in it was missing or malformed (a form field, a parameter). Go back to {home}, "
        "reload it and use its buttons; if this happens again, tell course staff.",
    ),
    403: (
        "This request was refused",
        "Reload {home} and try again from its buttons. If you opened an old link or another "
        "site's page sent you here, that is why; if you keep seeing this, tell course staff.",
    ),
    404: (
        "There is no such page here",
        "The address may be mistyped or out of date: start again from {home}.",
    ),
    405: (
        "This address does not take that kind of request",
        "Open {home} in your browser and use its buttons instead.",
    ),
    413: (
        "What was sent is too large",
        "Send something smaller; course staff can tell you the limit.",
    ),
    429: ("Too many requests", "Wait a little, then try again from {home}."),
    500: (
        "Something went wrong on our side",
        "It is in the service's log for course staff. Try again in a minute from {home}; if it "
        "keeps happening, tell course staff what you did and when.",
    ),
    502: (
        "The service could not reach the hub",
        "The hub may be restarting: wait a minute, then try again from {home}.",
    ),
    503: (
        "The service is busy or restarting",
        "Wait a minute, then try again from {home}; if it stays this way, tell course staff.",
    ),
}


def words(status: int) -> tuple[str, str]:
    """What happened and what to do for STATUS (its class's words for one not listed)."""
    if status in WORDS:
        return WORDS[status]
    return WORDS[500] if status >= 500 else WORDS[400]


def reason(status: int, exc_info: Any) -> str | None:
    """The service's own words for this error: the message of an `HTTPError` it raised with one
    (with tornado's for a missing argument); None for anything else, and for every 5xx but a
    deliberate 503 (their text may hold paths or the hub's answers)."""
    exc = exc_info[1] if exc_info else None
    if not isinstance(exc, web.HTTPError) or not exc.log_message:
        return None
    if status >= 500 and status != 503:
        return None
    message = str(exc.log_message % exc.args if exc.args else exc.log_message)
    return message[:2000]


def wants_html(request: HTTPServerRequest) -> bool:
    """Whether the caller is a browser opening a page (it asks for HTML), not a program."""
    return "text/html" in request.headers.get("Accept", "")


def as_json(status: int, message: str | None, *, home: str) -> dict[str, Any]:
    title, todo = words(status)
    return {"status": status, "message": message or title, "what_to_do": todo.format(home=home)}


def body_html(status: int, message: str | None, *, home: str, home_url: str) -> str:
    """The error as HTML for the inside of a page: what happened, the service's words, what to do
    (with a link to where to start again). Every value is escaped."""
    title, todo = words(status)
    link = f"<a href='{escape(home_url)}'>{escape(home)}</a>"
    said = f"<p class='refused' id='refused'>{escape(message)}</p>" if message else ""
    return (
        f"<h2 id='error'>{escape(title)} <small>({status})</small></h2>{said}"
        f"<p id='what-to-do'>{escape(todo).replace(escape('{home}'), link)}</p>"
    )


def page(status: int, message: str | None, *, service: str, home: str, home_url: str) -> str:
    """A whole page of its own (for a service that has no pages, like the exchange)."""
    title, _ = words(status)
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title></head>"
        f"<body><h1>{escape(service)}</h1>"
        f"{body_html(status, message, home=home, home_url=home_url)}</body></html>"
    )

"""The regrade pages' HTML: the student's own requests and forms, the staff queue, one request.

Everything a student wrote (a reason) and every name is escaped, in text and in attributes, on
every page (staff's included): with the check service's script-free CSP, nothing a student wrote
runs in anyone's page. Forms carry the hub's XSRF form token.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from introdl.checkwork.pages import when
from introdl.staff.regrade import Request
from introdl.staff.regrade_items import Item
from introdl.staff.store import AuditLine

SHORT_REASON = 300  # characters of a reason the queue shows (the request's page shows it all)


def token(xsrf: str) -> str:
    return f"<input type='hidden' name='_xsrf' value='{escape(xsrf)}'>"


def text(value: str, limit: int | None = None) -> str:
    """Student-written text, escaped, its line breaks kept."""
    cut = value if limit is None or len(value) <= limit else value[:limit] + " …"
    return escape(cut).replace("\n", "<br>")


def score(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def state(req: Request) -> str:
    return escape(req.state) + (" (escalated to the instructor)" if req.escalated else "")


def change(req: Request) -> str:
    if req.state == "open" or req.answer is None:
        return score(req.old_score)
    if req.new_score == req.old_score:
        return f"{score(req.old_score)} (kept)"
    return f"{score(req.old_score)} → {score(req.new_score)}"


def student_page(
    labs: Sequence[tuple[str, str, bool, Sequence[Item]]],
    mine: Sequence[Request],
    *,
    xsrf: str,
    max_reason: int,
    prefix: str,
) -> str:
    """LABS: (lab, words about its window, open now, items not asked about yet); MINE: requests."""
    body = (
        "<h2>Regrade requests</h2><p>After your feedback is released you may ask, once per "
        "hidden test or hand-graded cell, for a regrade, saying why. Staff answer each request "
        "here; you may accept the answer or ask the instructor to look at it.</p>"
    )
    body += "<table id='regrade-labs'><tr><th>lab</th><th>window</th><th></th></tr>"
    for lab, words, is_open, items in labs:
        form = ""
        if is_open and items:
            options = "".join(
                f"<option value='{escape(i.key)}'>{escape(i.key)} ({i.score:g} / "
                f"{i.max_score:g})</option>"
                for i in items
            )
            form = (
                f"<form method='post' action='{escape(prefix)}regrades/labs/{escape(lab)}' id='file-{escape(lab)}'>"
                f"{token(xsrf)}<select name='item'>{options}</select><br>"
                f"<textarea name='reason' rows='4' cols='60' maxlength='{max_reason}' "
                "required></textarea><br><button>Ask for a regrade</button></form>"
            )
        body += f"<tr><td>{escape(lab)}</td><td>{escape(words)}</td><td>{form}</td></tr>"
    body += "</table><h2>Your requests</h2><table id='my-regrades'>"
    body += (
        "<tr><th>#</th><th>lab</th><th>item</th><th>state</th><th>score</th><th>answer</th>"
        "<th></th></tr>"
    )
    for req in mine:
        actions = ""
        if req.state == "answered":
            actions = (
                f"<form method='post' action='{escape(prefix)}regrades/{req.id}/accept'>{token(xsrf)}"
                f"<button id='accept-{req.id}'>Accept</button></form>"
            )
            if not req.escalated:
                actions += (
                    f"<form method='post' action='{escape(prefix)}regrades/{req.id}/escalate'>{token(xsrf)}"
                    f"<button id='escalate-{req.id}'>Ask the instructor</button></form>"
                )
        body += (
            f"<tr id='regrade-{req.id}'><td><a href='{escape(prefix)}regrades/{req.id}'>{req.id}</a></td>"
            f"<td>{escape(req.lab)}</td><td>{escape(req.item)}</td><td class='state'>"
            f"{state(req)}</td><td class='change'>{change(req)}</td>"
            f"<td>{text(req.answer or '')}</td><td>{actions}</td></tr>"
        )
    return body + "</table>"


def request_page(
    req: Request, *, staff_view: bool, xsrf: str, trail: Sequence[AuditLine], prefix: str
) -> str:
    """One request: what was asked, why, its state and answer; staff get the answer forms."""
    body = (
        f"<h2>Regrade request {req.id}</h2><table id='request'>"
        f"<tr><th>student</th><td>{escape(req.student)}</td></tr>"
        f"<tr><th>lab</th><td>{escape(req.lab)}</td></tr>"
        f"<tr><th>item</th><td>{escape(req.item)} ({escape(req.kind)})</td></tr>"
        f"<tr><th>filed</th><td>{when(req.filed_at)}</td></tr>"
        f"<tr><th>reason</th><td id='reason'>{text(req.reason)}</td></tr>"
        f"<tr><th>state</th><td id='state'>{state(req)}</td></tr>"
        f"<tr><th>score</th><td id='score'>{change(req)}</td></tr>"
        f"<tr><th>answer</th><td id='answer'>{text(req.answer or '')}</td></tr>"
        f"<tr><th>answered by</th><td>{escape(req.answered_by or '')} "
        f"{when(req.answered_at)}</td></tr></table>"
    )
    if not staff_view:
        return body + f"<p><a href='{escape(prefix)}regrades'>your requests</a></p>"
    act = escape(f"{prefix}staff/regrades/{req.id}")
    if req.state == "open":
        body += (
            f"<h3>Answer</h3><form method='post' action='{act}/answer' id='answer-form'>"
            f"{token(xsrf)}comment<br><textarea name='comment' rows='3' cols='60' required>"
            "</textarea><br>new score (empty: keep it) <input name='score' type='number' "
            "step='any' min='0'> <button>Answer</button></form>"
            f"<form method='post' action='{act}/rerun' id='rerun-form'>{token(xsrf)}"
            "comment (optional) <input name='comment'> <button id='rerun'>Answer by re-running "
            "the autograder with the current hidden tests</button></form>"
        )
    if req.state != "closed":
        if not req.escalated:
            body += (
                f"<form method='post' action='{act}/escalate'>{token(xsrf)}"
                "<button>Escalate to the instructor</button></form>"
            )
        body += (
            f"<form method='post' action='{act}/close'>{token(xsrf)}comment <input "
            "name='comment'> <button>Close</button></form>"
        )
    body += "<h3>Audit trail</h3><table id='trail'><tr><th>when</th><th>who</th><th>what</th></tr>"
    for line in trail:
        body += (
            f"<tr><td>{when(line.at)}</td><td>{escape(line.who)}</td>"
            f"<td>{escape(line.action)}</td></tr>"
        )
    return body + f"</table><p><a href='{escape(prefix)}staff/regrades'>the queue</a></p>"


def queue_page(queue: Sequence[Request], *, prefix: str) -> str:
    """Every request: open first (oldest first), then answered, then closed."""
    body = (
        "<h2>Regrade requests</h2><p>Open requests first, oldest first. Reasons are the "
        "students' own words.</p><table id='regrade-queue'><tr><th>#</th><th>student</th>"
        "<th>lab</th><th>item</th><th>state</th><th>filed</th><th>score</th><th>reason</th></tr>"
    )
    for req in queue:
        body += (
            f"<tr><td><a href='{escape(prefix)}staff/regrades/{req.id}'>{req.id}</a></td><td>{escape(req.student)}</td>"
            f"<td>{escape(req.lab)}</td><td>{escape(req.item)}</td><td>{state(req)}</td>"
            f"<td>{when(req.filed_at)}</td><td>{change(req)}</td>"
            f"<td>{text(req.reason, SHORT_REASON)}</td></tr>"
        )
    return body + "</table>"

"""Staff grant and revoke extensions on the check service (page and API); students read their own.

    GET  staff/extensions                      the extensions and the grant form      (staff)
    POST staff/extensions                      grant (action=grant) or revoke          (staff)
    GET  api/extensions                        the caller's own extensions (JSON)
    POST api/extensions/<lab>/<student>?until=T&reason=R   grant                     (staff)
    DELETE api/extensions/<lab>/<student>      revoke                                  (staff)

Built on the check service's Page and Api (checkwork/handlers.py): the person is the hub user, the
form carries the hub's XSRF token, a non-staff caller is refused and the refusal logged. Each
change goes through extensions.grant / revoke (StaffStore.change: the audit line, the gradebook).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from html import escape
from typing import Any

from tornado import web

from introdl.checkwork import pages
from introdl.checkwork.handlers import Api, Page
from introdl.checkwork.pages import when
from introdl.grading.errors import BadInput
from introdl.staff import extensions as ext
from introdl.staff.late import utc
from introdl.staff.store import AuditLine


def public(e: ext.Extension) -> dict[str, Any]:
    row = dataclasses.asdict(e)
    row["until"] = e.until.isoformat()
    return row


class ExtensionsPage(Page):
    @web.authenticated
    async def get(self) -> None:
        await self.require_staff()
        self.show()

    def show(self, message: str = "", status: int = 200) -> None:
        store = self.app_state.staff
        trail = [a for a in store.audit_trail(limit=200) if a.action.startswith("extension.")]
        body = staff_page(
            ext.extensions(store), self.app_state.labs(), trail, xsrf=self.form_token()
        )
        if message:
            body = f"<p class='refused' id='refused'>{escape(message)}</p>" + body
        self.render_page(pages.staff_nav(self.prefix) + body, status)

    @web.authenticated
    async def post(self) -> None:
        await self.require_staff()
        args = {k: self.get_body_argument(k, "") for k in ("action", "lab", "student", "until")}
        try:
            if args["action"] == "revoke":
                await asyncio.to_thread(
                    ext.revoke,
                    self.app_state.staff,
                    self.app_state.course,
                    lab=args["lab"],
                    student=args["student"],
                    who=self.user,
                )
            else:
                await asyncio.to_thread(
                    ext.grant,
                    self.app_state.staff,
                    self.app_state.course,
                    lab=args["lab"],
                    student=args["student"],
                    until=args["until"],
                    reason=self.get_body_argument("reason", ""),
                    who=self.user,
                )
        except BadInput as err:
            self.show(str(err), 400)
            return
        self.redirect(f"{self.prefix}staff/extensions")


class ApiExtensions(Api):
    def get(self) -> None:
        """The caller's own extensions: never another student's."""
        mine = ext.extensions(self.app_state.staff, student=self.user)
        self.send_json([public(e) for e in mine])


class ApiExtension(Api):
    async def post(self, lab: str, student: str) -> None:
        await self.require_staff()
        await self.change(
            ext.grant,
            lab=lab,
            student=student,
            until=self.get_argument("until", ""),
            reason=self.get_argument("reason", ""),
        )

    async def delete(self, lab: str, student: str) -> None:
        await self.require_staff()
        await self.change(ext.revoke, lab=lab, student=student)

    async def change(self, action: Any, **kwargs: str) -> None:
        app = self.app_state
        try:
            done = await asyncio.to_thread(action, app.staff, app.course, who=self.user, **kwargs)
        except BadInput as err:
            raise web.HTTPError(400, str(err)) from err
        self.send_json(dataclasses.asdict(done))


def staff_page(
    current: Sequence[ext.Extension], labs: Sequence[str], trail: Sequence[AuditLine], *, xsrf: str
) -> str:
    token = f"<input type='hidden' name='_xsrf' value='{escape(xsrf)}'>"
    body = (
        "<h2>Extensions</h2><p>A student's own due date for a lab. Penalties of notebooks "
        "already graded are re-priced at once; times are UTC.</p><table id='extensions'>"
        "<tr><th>student</th><th>lab</th><th>until</th><th>reason</th><th>granted by</th>"
        "<th>when</th><th></th></tr>"
    )
    for e in current:
        body += (
            f"<tr><td>{escape(e.student)}</td><td>{escape(e.lab)}</td><td>{utc(e.until)}</td>"
            f"<td>{escape(e.reason)}</td><td>{escape(e.granted_by)}</td>"
            f"<td>{when(e.granted_at)}</td><td><form method='post' action='extensions'>{token}"
            "<input type='hidden' name='action' value='revoke'>"
            f"<input type='hidden' name='lab' value='{escape(e.lab)}'>"
            f"<input type='hidden' name='student' value='{escape(e.student)}'>"
            "<button>Revoke</button></form></td></tr>"
        )
    options = "".join(f"<option>{escape(lab)}</option>" for lab in labs)
    body += (
        "</table><h2>Grant an extension</h2>"
        f"<form method='post' action='extensions' id='grant-extension'>{token}"
        "<input type='hidden' name='action' value='grant'>"
        f"student <input name='student' required> lab <select name='lab'>{options}</select> "
        "until (UTC) <input name='until' type='datetime-local' required> "
        "reason <input name='reason' size='30'> <button>Grant</button></form>"
        "<h2>Changes</h2><table id='extension-trail'>"
        "<tr><th>when</th><th>who</th><th>what</th><th>student</th><th>lab</th><th>until</th></tr>"
    )
    for a in trail:
        body += (
            f"<tr><td>{when(a.at)}</td><td>{escape(a.who)}</td><td>{escape(a.action)}</td>"
            f"<td>{escape(a.student)}</td><td>{escape(a.lab)}</td>"
            f"<td>{escape(str(a.detail.get('until') or ''))}</td></tr>"
        )
    return body + "</table>"

"""The course exchange as a JupyterHub service: who a person is comes from the hub, nothing else.

Every request carries the caller's hub token (`Authorization: token ...`, as every JupyterHub
server and service API does). The service asks the hub whose token it is (`HubAuth`, the same
check jupyterhub-idle-culler and ngshare rely on) and files a hand-in under THAT name, stamped
with the service's own clock. A request that names anybody else (nbgrader's `--student`, a forged
`$JUPYTERHUB_USER`, an edited form field) or brings its own time stamp is refused with a message
that says why, and the attempt is logged for staff (`GET api/refusals`, the service's log).
The hub's login cookie is never accepted (HubAuth, not HubOAuth), so a page of another site cannot
act for a logged-in person; a request without a token, a state-changing one sent by a page of
another origin, and one that repeats `student` are refused and logged too (request_guard.py).
Staff are the members of the hub group given by `--staff-group`, read from the hub with the
service's own token.

    python -m introdl.hub.exchange_service --root DIR --course introdl --staff-group formgrade-introdl

API (under the service's prefix, e.g. /services/exchange/):

    GET    api/assignments                      released labs                     (anyone)
    GET    api/assignments/<lab>                the release, tar.gz               (anyone)
    POST   api/assignments/<lab>                release a lab (tar.gz body)       (staff)
    DELETE api/assignments/<lab>                withdraw a release                (staff)
    POST   api/submissions/<lab>                hand in (tar.gz body)             (the caller)
    GET    api/submissions                      the caller's own hand-ins
    GET    api/feedback/<lab>?timestamp=T       the caller's own feedback, tar.gz
    GET    api/collect/<lab>                    every hand-in of a lab            (staff)
    GET    api/collect/<lab>/<student>?timestamp=T   one hand-in, tar.gz          (staff)
    POST   api/feedback/<lab>/<student>?timestamp=T  feedback for a hand-in      (staff)
    GET    api/refusals                         refused attempts                  (staff)
    GET    api/limits                           the course's archive limits       (anyone)
    GET    api/handins/<student>                the student's latest hand-in time per lab
                                                (the check service's own token only)

An archive is checked whole (`archive.check`: names, depth, count, unpacked size and ratio) and
written off the event loop, so a large or hostile upload does not stall anyone else's request; a
hand-in must also fit the student's quota and hand-in rate. The limits are the course's
`c.ExchangeService.*` (nbgrader_config.py), given to the service as a JSON file (`--limits`,
default `<root>/limits.json`, written by `make hub`); the web server's body limit follows them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from tornado import web

from introdl.hub.archive import MIB, Limits
from introdl.hub.exchange_handler import Exchange, Handler, NotFound
from introdl.hub.exchange_store import (
    ExchangeStore,
    OverLimit,
    StoreError,
    Submission,
    checked_name,
)

log = logging.getLogger("introdl.exchange")
# Hub services that may read any student's hand-in times (api/handins); the hub's roles must also
# let them reach the exchange (roles.check_roles).
TIMES_READERS = ("check",)


def describe(sub: Submission) -> dict[str, Any]:
    row = asdict(sub)
    row["files"] = list(sub.files)
    return row


class Assignments(Handler):
    def get(self) -> None:
        self.send_json(self.store.releases())


class Assignment(Handler):
    def get(self, lab: str) -> None:
        try:
            self.send_archive(self.store.release_blob(self.lab_arg(lab)))
        except StoreError as error:
            raise web.HTTPError(404, str(error)) from error

    async def post(self, lab: str) -> None:
        await self.require_staff("release", lab)
        files = await self.archive_body("release", lab)
        at = self.store.release(self.lab_arg(lab), self.request.body, files, self.user)
        log.info("%s released %s (%d files)", self.user, lab, len(files))
        self.send_json({"assignment_id": lab, "released_at": at, "files": files})

    async def delete(self, lab: str) -> None:
        await self.require_staff("unrelease", lab)
        self.send_json({"assignment_id": lab, "removed": self.store.unrelease(self.lab_arg(lab))})


class Submit(Handler):
    async def post(self, lab: str) -> None:
        lab = self.lab_arg(lab)
        claimed = self.get_query_argument("student", "")
        if claimed and claimed != self.user:
            self.refuse(
                "submit",
                lab,
                claimed,
                f"you are logged in to the hub as {self.user}; a submission is filed under the "
                f"hub's name for your login, so {self.user} cannot submit as {claimed}",
                status=403,
            )
        if self.get_query_argument("timestamp", ""):
            self.refuse(
                "submit",
                lab,
                claimed,
                "a submission's time is the exchange's clock; a time stamp sent with it is refused",
                status=400,
            )
        limits = self.exchange.limits
        body = self.request.body
        try:
            self.store.admit(self.user, len(body), limits)  # before the costly reading
            files = await self.archive_body("submit", lab)
            staged = await asyncio.to_thread(self.store.stage, body)
            # On the loop, no await from the quota's last look to the insert: no race.
            sub = self.store.commit(self.user, lab, staged, files, limits)
        except OverLimit as error:
            self.refuse("submit", lab, "", str(error), status=error.status)
        except StoreError as error:
            raise web.HTTPError(404, str(error)) from error
        log.info("%s submitted %s at %s (%d bytes)", self.user, lab, sub.timestamp, sub.size)
        self.send_json(describe(sub))


class MySubmissions(Handler):
    def get(self) -> None:
        lab = self.get_query_argument("lab", None)
        self.send_json([describe(s) for s in self.store.submissions(lab=lab, student=self.user)])


class MyFeedback(Handler):
    def get(self, lab: str) -> None:
        sub = self.submission_at(self.user, self.lab_arg(lab))
        try:
            self.send_archive(self.store.feedback_blob(sub), timestamp=sub.timestamp)
        except StoreError as error:
            raise web.HTTPError(404, str(error)) from error


class Collect(Handler):
    async def get(self, lab: str) -> None:
        await self.require_staff("collect", lab)
        self.send_json([describe(s) for s in self.store.submissions(lab=self.lab_arg(lab))])


class CollectOne(Handler):
    async def get(self, lab: str, student: str) -> None:
        await self.require_staff("collect", lab)
        sub = self.submission_at(student, self.lab_arg(lab))
        self.send_archive(self.store.submission_blob(sub), timestamp=sub.timestamp)


class ReleaseFeedback(Handler):
    async def post(self, lab: str, student: str) -> None:
        await self.require_staff("release_feedback", lab)
        sub = self.submission_at(student, self.lab_arg(lab))
        files = await self.archive_body("release_feedback", lab)
        self.store.put_feedback(sub, self.request.body, files)
        log.info("%s released feedback for %s %s at %s", self.user, student, lab, sub.timestamp)
        self.send_json(describe(self.store.submission(sub.id)))


class Refusals(Handler):
    async def get(self) -> None:
        await self.require_staff("list_refusals", "-")
        self.send_json(self.store.refusals())


class HandinTimes(Handler):
    """The check service shows each student their own late status (introdl/staff/handins.py):
    it asks, with its own hub token, when a student last handed in each lab. No person's token is
    accepted here, a student's included (they see their own hand-ins at api/submissions); every
    other caller is refused and logged."""

    async def prepare(self) -> None:
        action = f"{self.request.method} {self.request.path[:200]}"
        model = self.current_user if self.request.headers.get("Authorization") else None
        if not model or model.get("kind") != "service" or model.get("name") not in TIMES_READERS:
            self.refuse(
                action,
                "-",
                "",
                "hand-in times are for the check service's own token only",
                status=403,
            )

    def get(self, student: str) -> None:
        try:
            name = checked_name(student, "student")
        except StoreError as error:
            raise web.HTTPError(400, str(error)) from error
        latest: dict[str, str] = {}
        for sub in self.store.submissions(student=name):
            latest[sub.lab] = max(latest.get(sub.lab, ""), sub.timestamp)
        self.send_json(latest)


class CourseLimits(Handler):
    def get(self) -> None:
        self.send_json(self.exchange.limits.to_config())


class Health(web.RequestHandler):
    def get(self) -> None:
        self.finish({"service": "introdl-exchange"})


def make_app(exchange: Exchange, prefix: str) -> web.Application:
    api = prefix.rstrip("/") + "/api"
    lab = r"([^/]+)"
    routes: list[Any] = [
        (rf"{api}/?", Health),
        (rf"{api}/assignments/?", Assignments, {"exchange": exchange}),
        (rf"{api}/assignments/{lab}/?", Assignment, {"exchange": exchange}),
        (rf"{api}/submissions/?", MySubmissions, {"exchange": exchange}),
        (rf"{api}/submissions/{lab}/?", Submit, {"exchange": exchange}),
        (rf"{api}/feedback/{lab}/?", MyFeedback, {"exchange": exchange}),
        (rf"{api}/feedback/{lab}/{lab}/?", ReleaseFeedback, {"exchange": exchange}),
        (rf"{api}/collect/{lab}/?", Collect, {"exchange": exchange}),
        (rf"{api}/collect/{lab}/{lab}/?", CollectOne, {"exchange": exchange}),
        (rf"{api}/refusals/?", Refusals, {"exchange": exchange}),
        (rf"{api}/limits/?", CourseLimits, {"exchange": exchange}),
        (rf"{api}/handins/{lab}/?", HandinTimes, {"exchange": exchange}),
    ]
    return web.Application(routes, default_handler_class=NotFound)  # other addresses: words


def server_options(limits: Limits) -> dict[str, int]:
    """The web server's own bounds (tornado's default is 100 MiB), set by the course's limit.

    They belong to the HTTP server, not the Application: as an Application setting they are
    silently ignored.
    """
    body = limits.max_archive_bytes + MIB  # room for the request's own framing
    return {"max_body_size": body, "max_buffer_size": body}


def load_limits(path: Path | None, root: Path, max_mb: int | None) -> Limits:
    """The course's limits: the JSON file given, else `<root>/limits.json`, else the defaults."""
    path = path or root / "limits.json"
    section: dict[str, Any] = json.loads(path.read_text()) if path.is_file() else {}
    if max_mb is not None:
        section["max_upload_mb"] = max_mb
    return Limits.from_config(section)


async def serve(args: argparse.Namespace) -> None:
    store = ExchangeStore(Path(args.root))
    limits = load_limits(args.limits and Path(args.limits), Path(args.root), args.max_mb)
    exchange = Exchange(store, staff_group=args.staff_group, limits=limits)
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/exchange/")
    # The hub tells a managed service where to listen (the `url` of its entry in the hub's config).
    url = urlparse(os.environ.get("JUPYTERHUB_SERVICE_URL", f"http://127.0.0.1:{args.port}"))
    port = url.port or args.port
    app = make_app(exchange, prefix)
    bounds = server_options(limits)
    app.listen(
        port,
        address=url.hostname or "127.0.0.1",
        max_body_size=bounds["max_body_size"],
        max_buffer_size=bounds["max_buffer_size"],
    )
    log.info("introdl exchange for course %s on port %s, state in %s", args.course, port, args.root)
    log.info("archive limits: %s", limits.to_config())
    await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", required=True, help="the exchange's state (created, mode 0700)")
    parser.add_argument("--course", default="introdl", help="the nbgrader course id")
    parser.add_argument("--staff-group", default="formgrade-introdl", help="hub group of staff")
    parser.add_argument(
        "--limits", help="the course's c.ExchangeService limits as JSON (default ROOT/limits.json)"
    )
    parser.add_argument("--max-mb", type=int, help="largest archive accepted (MiB), overrides")
    parser.add_argument("--port", type=int, default=10101, help="when not run by the hub")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="[exchange %(asctime)s %(levelname)s] %(message)s"
    )
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()

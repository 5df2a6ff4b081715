"""'Check my work' as a JupyterHub service: a student's hidden-test verdict before the deadline.

Who asks comes from the hub only: the browser pages log in through the hub (HubOAuth), the API
takes a hub token (`Authorization: token ...`). The service finds the notebook itself (the hub
user's `~/<lab>/<lab>.ipynb`: in their home on this host, notebook.py, or with `--notebooks
server` from their running server through the proxy, server_notebook.py), queues it
(fair_queue.py: SQLite, fair, rate-limited), grades it in the sandbox with the batch engine
(grader.py; `--backend`, `--image`) on `workers` processes, and shows the verdict cut to each
test's visibility. Checks never touch the gradebook. Staff (hub group `--staff-group`) see the
queue and every student's checks and can grant more.

    python -m introdl.checkwork.service --course DIR --state DIR --staff-group formgrade-introdl
    python -m introdl.checkwork.service --course DIR --state DIR --notebooks server \
        --public-url https://hub.example.edu [--ca-file PEM] --backend docker --image IMAGE

Pages (cookie login through the hub) and API (hub token), under the prefix (/services/check/):

    GET  ./                      the caller's labs and checks         POST labs/<lab>  ask
    GET  checks/<id>             one of the caller's checks (refreshes while waiting)
    GET  staff                   queue and checks per student/lab      POST staff/limits (staff)
    GET  api/checks              the caller's checks (JSON)            POST api/labs/<lab>/checks
    GET  api/checks/<id>         one of the caller's checks            GET  api/queue (staff)
    POST api/limits/<student>/<lab>?extra=N   more checks for a student (staff)
    GET  api/refusals            refused requests, newest first (staff; also on the staff page)
    GET  regrades                the caller's regrade requests     POST regrades/labs/<lab> file
    GET  staff/regrades          the regrade queue (staff); docs/staff.md lists the rest
    staff/extensions, api/extensions...   deadlines and extensions (introdl/staff/extension_pages.py)
    GET  staff/dashboard         the class dashboard, staff/dashboard/<table>.csv (staff)

What changes state needs proof that the person meant it (issue 21, case 4): the API takes a hub
token in the `Authorization` header only (the login cookie is never enough there), the pages' forms
carry the hub's XSRF form token (`xsrf_cookies`, checked by HubOAuth), and a POST sent by a page
of another site or port is refused (request_guard.py). Every refusal, with who and why, goes to
the refusal log (refusals.py) and the service's log. Pages carry a script-free CSP.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import secrets
import signal
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from tornado import web

from introdl.checkwork.app import CheckApp
from introdl.checkwork.errors import NotFound, OAuthCallback
from introdl.checkwork.fair_queue import CheckQueue
from introdl.checkwork.handlers import (
    ApiAsk,
    ApiCheck,
    ApiChecks,
    ApiLimits,
    ApiQueue,
    ApiRefusals,
    CheckPage,
    HomePage,
    StaffPage,
)
from introdl.checkwork.notebook import HomeNotebooks, NotebookSource
from introdl.checkwork.server_notebook import ServerNotebooks
from introdl.checkwork.settings import CheckService, course_settings, limits_of
from introdl.grading.grade import GradeOptions
from introdl.grading.kernel.launch import sweep_stale
from introdl.grading.record.late import course_policy
from introdl.staff.dashboard_handlers import draw_ahead
from introdl.staff.handins import ExchangeHandins
from introdl.staff.regrade import RegradeDesk
from introdl.staff.regrade_feedback import CourseReleases, ExchangeReleases
from introdl.staff.regrade_settings import regrade_window
from introdl.staff.routes import staff_routes
from introdl.staff.store import StaffStore

log = logging.getLogger("introdl.checkwork")


def make_app(app: CheckApp, prefix: str) -> web.Application:
    p = prefix.rstrip("/")
    kw = {"app": app}
    routes: list[Any] = [
        (rf"{p}/?", HomePage, kw),
        (rf"{p}/labs/([^/]+)/?", HomePage, kw),
        (rf"{p}/checks/([0-9]+)/?", CheckPage, kw),
        (rf"{p}/staff/?", StaffPage, kw),
        (rf"{p}/staff/limits/?", StaffPage, kw),
        (rf"{p}/oauth_callback", OAuthCallback),
        (rf"{p}/api/checks/?", ApiChecks, kw),
        (rf"{p}/api/checks/([^/]+)/?", ApiCheck, kw),
        (rf"{p}/api/labs/([^/]+)/checks/?", ApiAsk, kw),
        (rf"{p}/api/queue/?", ApiQueue, kw),
        (rf"{p}/api/limits/([^/]+)/([^/]+)/?", ApiLimits, kw),
        (rf"{p}/api/refusals/?", ApiRefusals, kw),
        *staff_routes(p, kw),
    ]
    # xsrf_cookies: tornado checks every page POST's form token (HubOAuth's check, tied to the login).
    # default_handler_class: any other address is answered in words too (errors.py).
    return web.Application(
        routes,
        cookie_secret=secrets.token_bytes(32),
        hub_auth=app.hub_auth,
        xsrf_cookies=True,
        default_handler_class=NotFound,
    )


async def serve(args: argparse.Namespace) -> None:
    course = Path(args.course)
    settings = course_settings(course)
    state = Path(args.state)
    state.mkdir(parents=True, exist_ok=True, mode=0o700)
    queue = CheckQueue(state / "checks.sqlite", limits_of(settings))
    requeued = queue.recover()
    swept = sweep_stale()  # a killed service's sandboxes and working copies
    if swept:
        log.info("removed %d stale sandbox(es) of a stopped grader", len(swept))
    app = CheckApp(
        queue,
        course,
        staff_group=args.staff_group,
        workers=int(settings.workers),
        warm=int(settings.warm),
        options=grade_options(args),
        staff=StaffStore.beside(state),
    )
    app.notebooks = notebook_source(args, app)
    app.regrades = regrade_desk(args, app)  # type: ignore[attr-defined]
    app.instructor_group = args.instructor_group or args.staff_group  # type: ignore[attr-defined]
    if args.exchange_url:  # students' hand-in times, for their late status (staff/handins.py)
        app.handins = ExchangeHandins(args.exchange_url, app.hub_auth.api_token)
    course_policy(course)  # a nonsense late policy stops the service at start, naming the file
    cluster = cluster_of(args, settings)
    if cluster:  # checks graded on the Dask cluster of batch grading (docs/cluster.md)
        from introdl.checkwork.cluster_workers import ClusterWorkers

        app.workers = ClusterWorkers(
            queue, course, cluster, int(settings.warm), options=app.workers.options
        )
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/check/")
    url = urlparse(os.environ.get("JUPYTERHUB_SERVICE_URL", f"http://127.0.0.1:{args.port}"))
    make_app(app, prefix).listen(url.port or args.port, address=url.hostname or "127.0.0.1")
    draw_ahead(app)  # the class dashboard, so that the first staff visit finds it drawn
    log.info(
        "check service for %s on port %s: %d workers, limits %s, %d checks re-queued after a "
        "restart; notebooks from %s, graded with %s%s",
        course,
        url.port,
        app.workers.workers,
        queue.limits,
        requeued,
        args.public_url if args.notebooks == "server" else "students' homes on this host",
        app.workers.options.backend_name(),
        f" on the Dask cluster at {cluster}" if cluster else "",
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):  # the hub stops its services with SIGTERM
        loop.add_signal_handler(sig, stop.set)
    serving = asyncio.create_task(app.workers.run())
    await stop.wait()
    log.info("stopping: grading workers end, unfinished checks stay queued")
    serving.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await serving


def regrade_desk(args: argparse.Namespace, app: CheckApp) -> RegradeDesk:
    """Regrade requests (introdl/staff/regrade.py): the course's window (checked at start), and
    feedback releases from the exchange's records (--exchange-root) or the course's folder."""
    course = Path(args.course)
    releases = ExchangeReleases(Path(args.exchange_root)) if args.exchange_root else None
    return RegradeDesk(
        app.staff,
        course,
        regrade_window(course),
        releases or CourseReleases(course),
        options=app.workers.options,
    )


def cluster_of(args: argparse.Namespace, settings: CheckService) -> str:
    """The Dask scheduler checks are graded on: --cluster, else c.CheckService.cluster, else
    none (the service's own workers)."""
    return str(args.cluster or settings.cluster)


def grade_options(args: argparse.Namespace) -> GradeOptions:
    """How checks are graded: the engine's options from --backend and --image."""
    return GradeOptions(backend=args.backend, image=args.image)


def notebook_source(args: argparse.Namespace, app: CheckApp) -> NotebookSource:
    """Where notebooks are read: the homes on this host, or the students' running servers
    (through the proxy at --public-url, with the service's own hub credentials for the hub)."""
    if args.notebooks == "home":
        return HomeNotebooks()
    return ServerNotebooks(
        hub_api=app.hub_auth.api_url,
        service_token=app.hub_auth.api_token,
        public_url=args.public_url,
        ca_file=args.ca_file,
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--course", required=True, help="the course directory (nbgrader_config.py)")
    parser.add_argument("--state", required=True, help="the service's SQLite (created, mode 0700)")
    parser.add_argument("--staff-group", default="formgrade-introdl", help="hub group of staff")
    parser.add_argument(
        "--instructor-group",
        default="",
        help="hub group of instructors, who answer escalated regrade requests (default: the "
        "staff group)",
    )
    parser.add_argument(
        "--exchange-root",
        default="",
        help="the course exchange's root (its exchange.sqlite, read only): when feedback was "
        "released, for the regrade window (default: the course's feedback/ folder)",
    )
    parser.add_argument("--port", type=int, default=10102, help="when not run by the hub")
    parser.add_argument(
        "--notebooks",
        choices=("home", "server"),
        default="home",
        help="where a student's ~/LAB/LAB.ipynb is read: their home on this host (home; "
        "LocalProcessSpawner) or their running server through the hub's proxy (server; "
        "DockerSpawner, KubeSpawner)",
    )
    parser.add_argument(
        "--public-url",
        help="the hub's proxy as this service reaches it, e.g. https://hub.example.edu "
        "(required with --notebooks server)",
    )
    parser.add_argument(
        "--ca-file", help="a PEM of CAs trusted beside the system's for --public-url (private CA)"
    )
    parser.add_argument(
        "--backend",
        choices=("bwrap", "docker"),
        default=None,
        help="the grading sandbox (default: docker where a Docker socket exists, else bwrap)",
    )
    parser.add_argument("--image", help="the course image the docker backend grades in")
    parser.add_argument(
        "--cluster",
        default="",
        help="grade checks on the Dask cluster whose scheduler is at this address "
        "(tcp://HOST:8786; default: c.CheckService.cluster, else this host's workers)",
    )
    parser.add_argument(
        "--exchange-url",
        default="",
        help="the course exchange's address as this service reaches it (e.g. "
        "http://127.0.0.1:10101/services/exchange/): students see when they handed in and "
        "whether it was late; empty: their late status shows no hand-in times",
    )
    args = parser.parse_args(argv)
    if args.notebooks == "server" and not args.public_url:
        parser.error(
            "--notebooks server needs --public-url (the hub's proxy, as this host sees it)"
        )
    if args.public_url and urlparse(args.public_url).scheme not in ("http", "https"):
        parser.error(f"--public-url {args.public_url!r}: give an http:// or https:// URL")
    if args.ca_file and not Path(args.ca_file).is_file():
        parser.error(f"--ca-file {args.ca_file}: no such file")
    if args.image and args.backend != "docker":
        parser.error("--image is the docker backend's: give --backend docker with it")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[check %(asctime)s %(levelname)s] %(message)s")
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()

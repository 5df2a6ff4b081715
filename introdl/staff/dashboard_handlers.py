"""The class dashboard's staff pages in the check service: the page and a CSV per table.

    GET staff/dashboard              every lab (staff only)
    GET staff/dashboard/<table>.csv  scores, tests, failures, checks or timings (staff only)

Both log in through the hub and answer staff only (`require_staff`: anyone else is refused and
the refusal logged). The page is drawn off the event loop (a first drawing takes a second or
two, and the queue's pages must not wait for it), and drawn once ahead as the service starts.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import weakref
from typing import Any

from tornado import web

from introdl.checkwork import pages
from introdl.checkwork.app import CheckApp
from introdl.checkwork.handlers import Page
from introdl.staff.dashboard import TABLES, Dashboard, tables, to_csv
from introdl.staff.dashboard_data import Sources
from introdl.staff.dashboard_html import render

log = logging.getLogger("introdl.checkwork")
PLOT_FOLDER = "dashboard-plots"
_DASHBOARDS: weakref.WeakKeyDictionary[CheckApp, Dashboard] = weakref.WeakKeyDictionary()


def dashboard_of(app: CheckApp) -> Dashboard:
    """The service's one Dashboard (its caches live as long as the service)."""
    dash = _DASHBOARDS.get(app)
    if dash is None:
        state = app.queue.path.parent
        sources = Sources(course=app.course, checks_db=app.queue.path)
        dash = _DASHBOARDS[app] = Dashboard(sources, plot_dir=state / PLOT_FOLDER)
    return dash


class DashboardPage(Page):
    @web.authenticated
    async def get(self) -> None:
        await self.require_staff()
        dash = dashboard_of(self.app_state)
        base = f"{self.prefix}staff/dashboard/"
        html = await asyncio.to_thread(render, dash, lambda table: f"{base}{table}.csv")
        self.render_page(pages.staff_nav(self.prefix) + html)


class DashboardCsv(Page):
    @web.authenticated
    async def get(self, table: str) -> None:
        await self.require_staff()
        if table not in TABLES:
            raise web.HTTPError(404, f"the dashboard has no table {table}: {', '.join(TABLES)}")
        dash = dashboard_of(self.app_state)
        header, rows = (await asyncio.to_thread(lambda: tables(dash.model())))[table]
        self.set_header("Content-Type", "text/csv; charset=utf-8")
        self.set_header("Content-Disposition", f'attachment; filename="dashboard-{table}.csv"')
        self.finish(to_csv(header, rows))


def dashboard_routes(prefix: str, kw: dict[str, Any]) -> list[tuple[str, type, dict[str, Any]]]:
    """The dashboard's routes (the service starts drawing it ahead itself: `draw_ahead`)."""
    return [
        (rf"{prefix}/staff/dashboard/?", DashboardPage, kw),
        (rf"{prefix}/staff/dashboard/([a-z]+)\.csv", DashboardCsv, kw),
    ]


def draw_ahead(app: CheckApp) -> threading.Thread:
    """Draw the dashboard once in the background as the service starts, so that the first staff
    visit finds the plots drawn (a first drawing takes seconds; plots kept on disk by an earlier
    run are read, not drawn)."""

    def draw() -> None:
        try:
            render(dashboard_of(app), str)
        except Exception:  # the page will say what is wrong when someone opens it
            log.exception("drawing the class dashboard ahead failed")

    thread = threading.Thread(target=draw, name="dashboard-draw-ahead", daemon=True)
    thread.start()
    return thread

"""The staff loop's pages and API, added to the check service's routes (checkwork/service.py).

Each feature module adds its own `(pattern, handler)` pairs here; handlers are built on the check
service's `Page` and `Api` (checkwork/handlers.py), so identity comes from the hub, forms carry the
hub's XSRF token, pages carry the script-free CSP and every refusal is logged.
"""

from __future__ import annotations

from typing import Any

from introdl.staff.dashboard_handlers import dashboard_routes
from introdl.staff.extension_pages import ApiExtension, ApiExtensions, ExtensionsPage


def staff_routes(prefix: str, kw: dict[str, Any]) -> list[Any]:
    """Routes under PREFIX (no trailing slash); KW is passed to every handler (`app`)."""
    from introdl.staff import regrade_handlers as rg

    n, verbs = "([0-9]+)", "(answer|rerun|close|escalate)"
    routes: list[Any] = [
        (rf"{prefix}/regrades/?", rg.RegradesPage, kw),
        (rf"{prefix}/regrades/labs/([^/]+)/?", rg.RegradesPage, kw),
        (rf"{prefix}/regrades/{n}/?", rg.RegradePage, kw),
        (rf"{prefix}/regrades/{n}/(accept|escalate)/?", rg.RegradePage, kw),
        (rf"{prefix}/staff/regrades/?", rg.StaffRegradesPage, kw),
        (rf"{prefix}/staff/regrades/{n}/?", rg.RegradePage, kw),
        (rf"{prefix}/staff/regrades/{n}/{verbs}/?", rg.RegradePage, kw),
        (rf"{prefix}/api/regrades/?", rg.ApiRegrades, kw),
        (rf"{prefix}/api/regrades/labs/([^/]+)/?", rg.ApiRegrades, kw),
        (rf"{prefix}/api/regrades/{n}/?", rg.ApiRegrade, kw),
        (rf"{prefix}/api/regrades/{n}/(accept|escalate)/?", rg.ApiRegrade, kw),
        (rf"{prefix}/api/staff/regrades/?", rg.ApiStaffRegrades, kw),
        (rf"{prefix}/api/staff/regrades/{n}/{verbs}/?", rg.ApiRegrade, kw),
        (rf"{prefix}/staff/extensions/?", ExtensionsPage, kw),
        (rf"{prefix}/api/extensions/?", ApiExtensions, kw),
        (rf"{prefix}/api/extensions/([^/]+)/([^/]+)/?", ApiExtension, kw),
    ]
    routes += dashboard_routes(prefix, kw)
    return routes

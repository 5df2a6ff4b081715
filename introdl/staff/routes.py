"""The staff loop's pages and API, added to the check service's routes (check/service.py).

Each feature module adds its own `(pattern, handler)` pairs here; handlers are built on the check
service's `Page` and `Api` (check/handlers.py), so identity comes from the hub, forms carry the
hub's XSRF token, pages carry the script-free CSP and every refusal is logged.
"""

from __future__ import annotations

from typing import Any

from introdl.staff.dashboard_handlers import dashboard_routes


def staff_routes(prefix: str, kw: dict[str, Any]) -> list[Any]:
    """Routes under PREFIX (no trailing slash); KW is passed to every handler (`app`)."""
    routes: list[Any] = []
    routes += dashboard_routes(prefix, kw)
    return routes

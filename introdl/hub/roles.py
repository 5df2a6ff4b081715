"""The hub roles the course exchange needs, shared by every hub config of the course.

Used by the local hub (`introdl/hub/jupyterhub_config.py`), the production hub
(`docker/hub/jupyterhub_config.py`) and the docker identity test, so that the three cannot drift.
"""

from __future__ import annotations

from typing import Any


def exchange_roles(
    course: str, service: str = "exchange", extra_services: tuple[str, ...] = ()
) -> list[dict[str, Any]]:
    """Server tokens may reach the exchange as their owner; nbgrader's groups are course members
    (of the exchange and of EXTRA_SERVICES, e.g. the check service); the exchange may read who a
    user is and their groups, nothing else."""
    access = f"access:services!service={service}"
    members = [access, *(f"access:services!service={s}" for s in extra_services)]
    return [
        {
            # JupyterHub's default server scopes plus the exchange, and nothing more
            # (`inherit` would hand a server every scope of its owner).
            "name": "server",
            "scopes": ["users:activity!user", "access:servers!server", access],
        },
        {
            # nbgrader's groups (formgrade-<course> grades, nbgrader-<course> takes the course).
            "name": "course-member",
            "groups": [f"formgrade-{course}", f"nbgrader-{course}"],
            "scopes": members,
        },
        {
            # The exchange asks the hub whose a token is and whether they are staff.
            "name": "exchange-service",
            "services": [service],
            "scopes": ["read:users:name", "read:users:groups"],
        },
    ]


def check_roles(service: str = "check", servers_of: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """The check service asks the hub whose a token is and whether they are staff.

    With SERVERS_OF (hub groups, e.g. nbgrader-<course> and formgrade-<course>) it also reads
    notebooks from the running servers of those groups' members (introdl/checkwork/server_notebook.py):
    it may see whether a member's server runs (`read:servers`) and make, use once and delete a
    token of that member (`tokens`); the token it asks for can reach only that member's server.
    """
    # The exchange's api/handins: students' hand-in times for their late status (staff/handins.py).
    scopes = ["read:users:name", "read:users:groups", "access:services!service=exchange"]
    for group in servers_of:
        scopes += [f"read:servers!group={group}", f"tokens!group={group}"]
    return [{"name": "check-service", "services": [service], "scopes": scopes}]

"""JupyterHub configuration of the local demo hub (`make hub`), written for loopback only.

`introdl.hub.local` writes the settings (ports, accounts, paths) to a JSON file and starts
`jupyterhub -f THIS_FILE` with INTRODL_HUB_SETTINGS pointing at it. The production deployment on a
GPU host is docker/hub/jupyterhub_config.py; docs/deploy.md says what differs.
"""

import json
import os
from pathlib import Path

from introdl.hub.roles import check_roles, exchange_roles

c = get_config()  # noqa: F821  (JupyterHub injects get_config)

S = json.loads(Path(os.environ["INTRODL_HUB_SETTINGS"]).read_text())
STATE = Path(S["state"])
PUBLIC = Path(S["public"])
COURSE = S["course_id"]
STAFF_GROUP = f"formgrade-{COURSE}"
STUDENT_GROUP = f"nbgrader-{COURSE}"

# --- where the hub listens and keeps its state (root only) -----------------------------------
c.JupyterHub.bind_url = f"http://127.0.0.1:{S['port']}"
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = S["hub_port"]
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{S['proxy_api_port']}"
c.ConfigurableHTTPProxy.command = [S["chp"]]
c.ConfigurableHTTPProxy.debug = False
c.JupyterHub.db_url = f"sqlite:///{STATE / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(STATE / "jupyterhub_cookie_secret")
c.JupyterHub.pid_file = str(STATE / "jupyterhub.pid")
c.JupyterHub.cleanup_servers = True
c.JupyterHub.cleanup_proxy = True
# Pages of our own where JupyterHub's would mislead: a course service that is down is not "your
# server" (templates/proxy_error.html).
c.JupyterHub.template_paths = [str(Path(__file__).resolve().parent / "templates")]

# --- who you are: a Unix account and its password (PAM), nothing a student can set ---------
c.JupyterHub.authenticator_class = "pam"
c.PAMAuthenticator.open_sessions = False  # no login sessions (no systemd-logind here)
c.Authenticator.allowed_users = set(S["students"]) | set(S["staff"])
c.Authenticator.admin_users = set()  # nobody can open another person's server
c.JupyterHub.load_groups = {
    STAFF_GROUP: {"users": S["staff"]},
    STUDENT_GROUP: {"users": S["students"]},
}

# --- a server per person, as that Unix user (homes are 0700) ----------------------------------
c.JupyterHub.spawner_class = "localprocess"
c.Spawner.cmd = [S["python"], "-m", "jupyterhub.singleuser"]
c.Spawner.default_url = "/lab"
c.Spawner.notebook_dir = "~"
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 90
c.LocalProcessSpawner.shell_cmd = []


def _pre_spawn(spawner):
    """Staff and students get different Jupyter config folders (extensions, exchange)."""
    staff = spawner.user.name in S["staff"]
    spawner.environment.update(
        {
            "JUPYTER_CONFIG_PATH": str(Path(S["etc"]) / ("staff" if staff else "student")),
            "PATH": f"{Path(S['python']).parent}:/usr/local/bin:/usr/bin:/bin",
            "INTRODL_EXCHANGE_URL": S["exchange_url"],
            "INTRODL_DATA_DIR": S["data_dir"],
            "TF_CPP_MIN_LOG_LEVEL": "3",
            **({"PYTHONPATH": S["pythonpath"]} if S.get("pythonpath") else {}),
        }
    )


c.Spawner.pre_spawn_hook = _pre_spawn

# --- the course's services --------------------------------------------------------------------
# "server": the check service reads notebooks from the students' running servers through the
# proxy (introdl/checkwork/server_notebook.py), as the production hub does; "home": from the homes.
CHECK_NOTEBOOKS = S.get("check_notebooks", "home")
check_reads = (
    ["--notebooks", "server", "--public-url", f"http://127.0.0.1:{S['port']}"]
    if CHECK_NOTEBOOKS == "server"
    else []
)
exchange_env = {"PYTHONPATH": S["pythonpath"]} if S.get("pythonpath") else {}
c.JupyterHub.services = [
    {
        "name": "exchange",
        "url": f"http://127.0.0.1:{S['exchange_port']}",
        "command": [
            S["python"],
            "-m",
            "introdl.hub.exchange_service",
            "--root",
            S["exchange_root"],
            "--course",
            COURSE,
            "--staff-group",
            STAFF_GROUP,
        ],
        "user": S["exchange_user"],
        "cwd": S["exchange_root"],
        "environment": exchange_env,
        "display": False,
    },
    # "Check my work" (issue 16): as root, which the sandbox needs (bwrap's uid drop) and which
    # reads each student's own fetched notebook in their 0700 home.
    {
        "name": "check",
        "url": f"http://127.0.0.1:{S['check_port']}",
        "command": [
            S["grader_python"],
            "-m",
            "introdl.checkwork.service",
            "--course",
            S["course_dir"],
            "--state",
            S["check_state"],
            "--staff-group",
            STAFF_GROUP,
            "--exchange-url",  # students' hand-in times (introdl/staff/handins.py)
            f"http://127.0.0.1:{S['exchange_port']}/services/exchange/",
            *check_reads,
        ],
        "cwd": S["check_state"],
        "environment": {
            # The engine of the checkout this file belongs to, not whatever `introdl` the
            # interpreter's site-packages points at (an editable install of another checkout).
            "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
            "INTRODL_DATA_DIR": S["data_dir"],
            "TF_CPP_MIN_LOG_LEVEL": "3",
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        },
        "oauth_no_confirm": True,
        "display": True,
    },
    # The local tooling's own door (tokens for staff commands, tests); its token is root-only.
    {"name": "introdl-admin", "api_token": (STATE / "admin-token").read_text().strip()},
]
c.JupyterHub.load_roles = [
    *exchange_roles(COURSE, extra_services=("check",)),
    *check_roles(servers_of=(STUDENT_GROUP, STAFF_GROUP) if CHECK_NOTEBOOKS == "server" else ()),
    {
        "name": "introdl-admin",
        "services": ["introdl-admin"],
        # A token it makes for a person can hold only what it holds itself: the exchange.
        "scopes": [
            "admin:users",
            "admin:servers",
            "tokens",
            "admin:groups",
            "list:users",
            "access:services!service=exchange",
            "access:services!service=check",
            "access:servers",
        ],
    },
]

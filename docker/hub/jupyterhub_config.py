# JupyterHub for the course on ONE GPU host: every student server is a container of the course
# image (DockerSpawner), with the host's GPUs, memory and CPU limits, and a named volume for its
# home. The hub, its proxy and its services (the exchange, the formgrader, the idle culler) run on
# the host. docs/deploy.md walks through a term from nothing to the first graded lab.
#
# Everything site-specific comes from the environment; a missing required setting stops the hub
# with a message naming it (there is no insecure default):
#
#   INTRODL_PUBLIC_HOST     the hub's DNS name, e.g. dl.example.edu (TLS certificate's name)
#   INTRODL_SSL_CERT        TLS certificate (full chain) and key for INTRODL_PUBLIC_HOST
#   INTRODL_SSL_KEY
#   INTRODL_AUTHENTICATOR   github | generic-oauth | lti13 (never dummy); its own settings come
#                           from its usual variables (OAUTH_CLIENT_ID, OAUTH_CLIENT_SECRET,
#                           OAUTH_CALLBACK_URL, ...) or a jupyterhub_config.d/ file
#   INTRODL_STAFF_FILE      one hub user name per line: instructors and TAs (formgrade-introdl)
#   INTRODL_STUDENTS_FILE   one hub user name per line: the class (nbgrader-introdl)
#   INTRODL_ADMINS          optional, comma-separated hub admins (default: none)
#   INTRODL_IMAGE           optional, the course image (default introdl/course:gpu)
#   INTRODL_MEM_LIMIT       optional, per student server (default 8G)
#   INTRODL_CPU_LIMIT       optional, CPUs per student server (default 2)
#   INTRODL_GPUS            optional, "all" (default) or "none"
#   INTRODL_IDLE_TIMEOUT    optional, seconds before an idle server is stopped (default 3600)
#
# Start it as root from the directory that keeps its state (jupyterhub.sqlite, cookie secret):
#   cd /srv/introdl/hub && jupyterhub -f /path/to/docker/hub/jupyterhub_config.py
import ipaddress
import os
import sys
from pathlib import Path

import docker
from introdl.hub.roles import exchange_roles  # the same roles as the local hub

c = get_config()  # noqa: F821 (JupyterHub provides get_config to its config file)

COURSE = "introdl"
STAFF_GROUP = f"formgrade-{COURSE}"  # nbgrader's names: formgrade-<course> grades,
STUDENT_GROUP = f"nbgrader-{COURSE}"  # nbgrader-<course> takes the course
EXCHANGE_ROOT = "/srv/introdl/exchange"
COURSE_ROOT = "/srv/introdl/course"  # the course directory: source/, release/, gradebook.db
NETWORK = "introdl-hub"  # the containers' bridge network (docker network create, docs/deploy.md)
NETWORK_SUBNET = ipaddress.ip_network(os.environ.get("INTRODL_NETWORK_SUBNET", "172.30.0.0/24"))
GATEWAY = str(next(NETWORK_SUBNET.hosts()))  # the host, as the containers see it


def required(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        sys.exit(f"jupyterhub_config.py: set {name} (see the top of {__file__} and docs/deploy.md)")
    return value


def roster(variable: str) -> list[str]:
    path = Path(required(variable))
    if not path.is_file():
        sys.exit(f"jupyterhub_config.py: {variable}={path} is not a file (one user name per line)")
    names = [line.split("#")[0].strip() for line in path.read_text().splitlines()]
    return [name for name in names if name]


# ---------------------------------------------------------------------------------------------
# Who: an external identity provider, never DummyAuthenticator.

AUTHENTICATORS = {
    # oauthenticator: GitHub accounts (names are GitHub logins)
    "github": "oauthenticator.github.GitHubOAuthenticator",
    # oauthenticator: the university's OpenID Connect / OAuth2 provider (Keycloak, Shibboleth...)
    "generic-oauth": "oauthenticator.generic.GenericOAuthenticator",
    # jupyterhub-ltiauthenticator: launched from the LMS (Canvas, Moodle) with LTI 1.3
    "lti13": "ltiauthenticator.lti13.auth.LTI13Authenticator",
}
authenticator = required("INTRODL_AUTHENTICATOR")
if authenticator not in AUTHENTICATORS:
    sys.exit(
        f"jupyterhub_config.py: INTRODL_AUTHENTICATOR={authenticator!r} is not one of "
        f"{', '.join(AUTHENTICATORS)} (DummyAuthenticator lets anyone in as anyone: never here)"
    )
c.JupyterHub.authenticator_class = AUTHENTICATORS[authenticator]
staff = roster("INTRODL_STAFF_FILE")
students = roster("INTRODL_STUDENTS_FILE")
admins = {name.strip() for name in os.environ.get("INTRODL_ADMINS", "").split(",") if name.strip()}
c.Authenticator.allowed_users = set(staff) | set(students)
c.Authenticator.admin_users = admins
c.Authenticator.manage_groups = False  # groups come from the rosters below, not the provider
c.JupyterHub.load_groups = {STAFF_GROUP: staff, STUDENT_GROUP: students}

# ---------------------------------------------------------------------------------------------
# Where: TLS on the public port; the hub API on the containers' gateway.

PUBLIC_HOST = required("INTRODL_PUBLIC_HOST")
c.JupyterHub.bind_url = "https://:443"
c.JupyterHub.ssl_cert = required("INTRODL_SSL_CERT")
c.JupyterHub.ssl_key = required("INTRODL_SSL_KEY")
c.JupyterHub.hub_ip = GATEWAY  # student containers reach the hub API here, nothing else does
c.JupyterHub.hub_port = 8081
c.JupyterHub.cleanup_servers = False  # a hub restart leaves running student servers alone

# ---------------------------------------------------------------------------------------------
# Student servers: containers of the course image.

c.JupyterHub.spawner_class = "dockerspawner.DockerSpawner"
c.DockerSpawner.image = os.environ.get("INTRODL_IMAGE", "introdl/course:gpu")
c.DockerSpawner.pull_policy = "never"  # built on this host (docs/deploy.md), never pulled
c.DockerSpawner.network_name = NETWORK
c.DockerSpawner.use_internal_ip = True  # the proxy on the host reaches containers on the bridge
c.DockerSpawner.remove = True  # a stopped server's container goes; its home volume stays
c.DockerSpawner.notebook_dir = "/home/jovyan"
c.DockerSpawner.volumes = {"introdl-home-{username}": "/home/jovyan"}
c.DockerSpawner.cmd = ["jupyterhub-singleuser"]
c.Spawner.default_url = "/lab"
c.Spawner.mem_limit = os.environ.get("INTRODL_MEM_LIMIT", "8G")
c.Spawner.cpu_limit = float(os.environ.get("INTRODL_CPU_LIMIT", "2"))
c.Spawner.start_timeout = 120  # the first start of a large image on a cold disk
c.Spawner.environment = {
    "INTRODL_BUDGET": "gpu",  # the labs' full training budgets
    # One GPU serves the class: each TensorFlow process takes memory as it needs it, not all.
    "TF_FORCE_GPU_ALLOW_GROWTH": "true",
    # nbgrader's exchange client (docker/student/nbgrader_config.py) talks to the exchange service
    # through the proxy at this address.
    "INTRODL_EXCHANGE_URL": f"https://{PUBLIC_HOST}/services/exchange/",
}
host_config: dict[str, object] = {
    "cap_drop": ["ALL"],
    "security_opt": ["no-new-privileges"],
    "pids_limit": 1024,
    # The public name resolves to the host inside the containers, so the exchange URL above (and
    # its TLS certificate) works from a student server.
    "extra_hosts": {PUBLIC_HOST: GATEWAY},
}
gpus = os.environ.get("INTRODL_GPUS", "all")
if gpus == "all":
    # What `docker run --gpus all` asks for (needs nvidia-container-toolkit on the host).
    host_config["device_requests"] = [docker.types.DeviceRequest(count=-1, capabilities=[["gpu"]])]
elif gpus != "none":
    sys.exit(f"jupyterhub_config.py: INTRODL_GPUS={gpus!r}: use 'all' or 'none'")
c.DockerSpawner.extra_host_config = host_config

# ---------------------------------------------------------------------------------------------
# Services and roles.

c.JupyterHub.services = [
    {
        # The hub-authenticated exchange (introdl.hub): fetch, submit, feedback. It files work
        # under the hub's name for the caller's token and checks staff by group membership.
        "name": "exchange",
        "url": "http://127.0.0.1:10101",
        "command": [
            sys.executable,
            "-m",
            "introdl.hub.exchange_service",
            "--root",
            EXCHANGE_ROOT,
            "--course",
            COURSE,
            "--staff-group",
            STAFF_GROUP,
        ],
        # sys.executable runs in the hub's environment, which has introdl installed
    },
    {
        # The course's shared grader server: formgrader over COURSE_ROOT, in its own tab, for
        # STAFF_GROUP only (nbgrader's "one class, multiple graders" layout). It runs as the
        # Unix account grader-introdl, which owns COURSE_ROOT (mode 0700).
        "name": COURSE,
        "url": "http://127.0.0.1:9999",
        "command": [
            str(Path(sys.prefix) / "bin" / "jupyterhub-singleuser"),
            f"--ServerApp.root_dir={COURSE_ROOT}",
        ],
        "user": f"grader-{COURSE}",
        "cwd": COURSE_ROOT,
        "environment": {"JUPYTERHUB_DEFAULT_URL": "/lab"},
        "oauth_client_allowed_scopes": [f"access:services!service={COURSE}"],
    },
    {
        # Stops servers idle for INTRODL_IDLE_TIMEOUT seconds (frees the GPU's memory).
        "name": "jupyterhub-idle-culler",
        "command": [
            sys.executable,
            "-m",
            "jupyterhub_idle_culler",
            f"--timeout={int(os.environ.get('INTRODL_IDLE_TIMEOUT', '3600'))}",
        ],
    },
]

c.JupyterHub.load_roles = [
    # The server role, nbgrader's groups as course members, and the exchange's own lookups.
    *exchange_roles(COURSE),
    {
        "name": STAFF_GROUP,
        "groups": [STAFF_GROUP],
        # Staff also reach the course's formgrader service.
        "scopes": [f"access:services!service={COURSE}"],
    },
    {
        "name": STUDENT_GROUP,
        "groups": [STUDENT_GROUP],
        "scopes": ["list:services", "read:services!service=exchange"],
    },
    {
        "name": "jupyterhub-idle-culler",
        "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
        "services": ["jupyterhub-idle-culler"],
    },
]

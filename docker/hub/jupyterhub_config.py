# JupyterHub for the course on ONE GPU host: every student server is a container of the course
# image (DockerSpawner), with the host's GPUs, memory and CPU limits, and a named volume for its
# home. The hub, its proxy and its services (the exchange, the formgrader, check-my-work, the idle
# culler) run on the host. docs/deploy.md walks through a term from nothing to the first graded lab.
#
# Everything site-specific comes from ONE environment file (KEY=VALUE lines; `#` starts a comment),
# INTRODL_ENV_FILE, default ./introdl.env in the directory the hub starts in; a variable already
# set in the environment wins over the file. docker/hub/introdl.env.example lists every setting.
# A missing required setting stops the hub with a message naming it (no insecure default):
#
#   INTRODL_PUBLIC_HOST     the hub's DNS name, e.g. dl.example.edu (TLS certificate's name)
#   INTRODL_SSL_CERT        TLS certificate (full chain) and key for INTRODL_PUBLIC_HOST
#   INTRODL_SSL_KEY
#   INTRODL_AUTHENTICATOR   github | generic-oauth | lti13 | pam (never dummy); its own settings
#                           come from its usual variables (OAUTH_CLIENT_ID, OAUTH_CLIENT_SECRET,
#                           OAUTH_CALLBACK_URL, ...) or a jupyterhub_config.d/ file
#   INTRODL_STAFF_FILE      one hub user name per line: instructors and TAs (formgrade-introdl)
#   INTRODL_STUDENTS_FILE   one hub user name per line: the class (nbgrader-introdl)
#                           (not with lti13: the LMS's course roles set the groups at each launch)
#   with INTRODL_AUTHENTICATOR=lti13 (docs/lms.md, "The launch"), what the LMS admin gives:
#   INTRODL_LTI_ISSUER          the platform's issuer (Canvas: https://canvas.instructure.com)
#   INTRODL_LTI_CLIENT_ID       the tool's client id in the LMS (Canvas: the developer key's id)
#   INTRODL_LTI_DEPLOYMENT_ID   the tool's deployment id(s), comma-separated
#   INTRODL_LTI_AUTHORIZE_URL   the platform's OIDC authorization endpoint
#   INTRODL_LTI_JWKS_URL        the platform's public keys (JWKS)
#   INTRODL_LTI_CONTEXT_ID      the LMS course(s) this hub serves (context id), comma-separated
#   INTRODL_LTI_USERNAME_CLAIM  optional, "sub" (default: the LMS's stable user id) or
#                               "custom_<name>" (a custom claim holding a stable id; never e-mail)
#   INTRODL_ADMINS          optional, comma-separated hub admins (default: none)
#   INTRODL_IMAGE           optional, the course image (default introdl/course:gpu)
#   INTRODL_MEM_LIMIT       optional, per student server (default 8G)
#   INTRODL_CPU_LIMIT       optional, CPUs per student server (default 2)
#   INTRODL_GPUS            optional, "all" (default) or "none"
#   INTRODL_IDLE_TIMEOUT    optional, seconds before an idle server is stopped (default 3600)
#   INTRODL_SRV             optional, the course's state on the host (default /srv/introdl):
#                           course/ (the course directory), exchange/, check/
#   INTRODL_HTTPS_PORT      optional, the public port (default 443)
#   INTRODL_NETWORK_SUBNET  optional, the containers' network (default 172.30.0.0/24; the hub
#                           API listens on its first address, the host's side of the bridge)
#   INTRODL_CA_FILE         optional, the certificate of a private CA that signed INTRODL_SSL_CERT
#                           (an institution's own CA): trusted by the student servers and the
#                           check service beside the public CAs
#   INTRODL_DATA_DIR        optional, the offline data sets on the host (`introdl data fetch all`),
#                           for check-my-work's grading (default: root's data cache)
#   DOCKER_HOST             optional, the Docker API (default unix:///var/run/docker.sock;
#                           podman: unix:///run/podman/podman.sock)
#
# Start it as root from the directory that keeps its state (jupyterhub.sqlite, cookie secret):
#   cd /srv/introdl/hub && jupyterhub -f /path/to/docker/hub/jupyterhub_config.py
import ipaddress
import json
import os
import shutil
import sys
from pathlib import Path

import docker
from introdl.hub.course_limits import course_limits
from introdl.hub.roles import check_roles, exchange_roles  # the same roles as the local hub

c = get_config()  # noqa: F821 (JupyterHub provides get_config to its config file)


def load_env_file() -> None:
    """KEY=VALUE lines of INTRODL_ENV_FILE (default ./introdl.env) into os.environ, unless set."""
    named = os.environ.get("INTRODL_ENV_FILE")
    path = Path(named or "introdl.env")
    if not path.is_file():
        if named:
            sys.exit(f"jupyterhub_config.py: INTRODL_ENV_FILE={path} is not a file")
        return
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip().isidentifier():
            sys.exit(f"jupyterhub_config.py: {path}:{number}: not KEY=VALUE: {line!r}")
        os.environ.setdefault(key.strip(), value.strip().strip('"').strip("'"))


load_env_file()

COURSE = "introdl"
STAFF_GROUP = f"formgrade-{COURSE}"  # nbgrader's names: formgrade-<course> grades,
STUDENT_GROUP = f"nbgrader-{COURSE}"  # nbgrader-<course> takes the course
SRV = Path(os.environ.get("INTRODL_SRV", "/srv/introdl"))
EXCHANGE_ROOT = SRV / "exchange"
COURSE_ROOT = SRV / "course"  # the course directory: source/, release/, gradebook.db
CHECK_ROOT = SRV / "check"  # check-my-work's queue and verdicts
NETWORK = "introdl-hub"  # the containers' bridge network (docker network create, docs/deploy.md)
NETWORK_SUBNET = ipaddress.ip_network(os.environ.get("INTRODL_NETWORK_SUBNET", "172.30.0.0/24"))
GATEWAY = str(next(NETWORK_SUBNET.hosts()))  # the host, as the containers see it
STATE = Path.cwd()  # the hub's own state: jupyterhub.sqlite, cookie secret, derived files


def required(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        sys.exit(f"jupyterhub_config.py: set {name} (see the top of {__file__} and docs/deploy.md)")
    return value


def existing_file(name: str) -> str:
    path = Path(required(name))
    if not path.is_file():
        sys.exit(f"jupyterhub_config.py: {name}={path} is not a file")
    return str(path)


def roster(variable: str) -> list[str]:
    path = Path(existing_file(variable))
    names = [line.split("#")[0].strip() for line in path.read_text().splitlines()]
    return [name for name in names if name]


if not (COURSE_ROOT / "nbgrader_config.py").is_file():
    sys.exit(
        f"jupyterhub_config.py: {COURSE_ROOT} is not a course directory (no nbgrader_config.py): "
        "copy the course there (docs/deploy.md, section 3) or set INTRODL_SRV"
    )

# ---------------------------------------------------------------------------------------------
# Who: an external identity provider, never DummyAuthenticator.

AUTHENTICATORS = {
    # oauthenticator: GitHub accounts (names are GitHub logins)
    "github": "oauthenticator.github.GitHubOAuthenticator",
    # oauthenticator: the university's OpenID Connect / OAuth2 provider (Keycloak, Shibboleth...)
    "generic-oauth": "oauthenticator.generic.GenericOAuthenticator",
    # jupyterhub-ltiauthenticator: launched from the LMS (Canvas, Moodle) with LTI 1.3, with the
    # course's checks, names, groups and gradebook ids (introdl/hub/lti.py)
    "lti13": "introdl.hub.lti.CourseLTI13Authenticator",
    # the host's own accounts through PAM (a department's login host, LDAP via sssd)
    "pam": "jupyterhub.auth.PAMAuthenticator",
}
authenticator = required("INTRODL_AUTHENTICATOR")
if authenticator not in AUTHENTICATORS:
    sys.exit(
        f"jupyterhub_config.py: INTRODL_AUTHENTICATOR={authenticator!r} is not one of "
        f"{', '.join(AUTHENTICATORS)} (DummyAuthenticator lets anyone in as anyone: never here)"
    )
c.JupyterHub.authenticator_class = AUTHENTICATORS[authenticator]


def listed(name: str) -> set[str]:
    return {item.strip() for item in os.environ.get(name, "").split(",") if item.strip()}


c.Authenticator.admin_users = listed("INTRODL_ADMINS")
if authenticator == "lti13":
    # No rosters: a launch from the course's LMS course lets its instructors, TAs and students in,
    # and their course roles set the groups at every launch (introdl/hub/lti.py).
    lti = c.CourseLTI13Authenticator
    lti.issuer = required("INTRODL_LTI_ISSUER")
    lti.client_id = {required("INTRODL_LTI_CLIENT_ID")}
    required("INTRODL_LTI_DEPLOYMENT_ID")
    lti.deployment_ids = listed("INTRODL_LTI_DEPLOYMENT_ID")
    lti.authorize_url = required("INTRODL_LTI_AUTHORIZE_URL")
    lti.jwks_endpoint = required("INTRODL_LTI_JWKS_URL")
    required("INTRODL_LTI_CONTEXT_ID")
    lti.context_ids = listed("INTRODL_LTI_CONTEXT_ID")
    lti.username_key = os.environ.get("INTRODL_LTI_USERNAME_CLAIM", "sub")
    lti.uri_scheme = "https"  # the hub serves TLS itself (below)
    lti.staff_group, lti.student_group = STAFF_GROUP, STUDENT_GROUP
    # A Learner's LMS id goes into the gradebook as lms_user_id, written as the course's owner.
    lti.gradebook_course, lti.gradebook_user = str(COURSE_ROOT), f"grader-{COURSE}"
    c.Authenticator.manage_groups = True
else:
    staff = roster("INTRODL_STAFF_FILE")
    students = roster("INTRODL_STUDENTS_FILE")
    c.Authenticator.allowed_users = set(staff) | set(students)
    c.Authenticator.manage_groups = False  # groups come from the rosters, not the provider
    c.JupyterHub.load_groups = {STAFF_GROUP: {"users": staff}, STUDENT_GROUP: {"users": students}}

# ---------------------------------------------------------------------------------------------
# Where: TLS on the public port; the hub API on the containers' gateway.

PUBLIC_HOST = required("INTRODL_PUBLIC_HOST")
PORT = int(os.environ.get("INTRODL_HTTPS_PORT", "443"))
PUBLIC_URL = f"https://{PUBLIC_HOST}" + ("" if PORT == 443 else f":{PORT}")
c.JupyterHub.bind_url = f"https://:{PORT}"
c.JupyterHub.ssl_cert = existing_file("INTRODL_SSL_CERT")
c.JupyterHub.ssl_key = existing_file("INTRODL_SSL_KEY")
c.JupyterHub.hub_ip = GATEWAY  # student containers reach the hub API here, nothing else does
c.JupyterHub.hub_port = 8081
c.JupyterHub.cleanup_servers = False  # a hub restart leaves running student servers alone
# A course service that is down is not "your server" (introdl/hub/templates/proxy_error.html).
c.JupyterHub.template_paths = [
    str(Path(__file__).resolve().parents[2] / "introdl" / "hub" / "templates")
]

# The CAs the student servers and the check service trust: the host's public ones, plus a private
# CA when INTRODL_CA_FILE names one (written next to the hub's state, readable by all: no secret).
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
if os.environ.get("INTRODL_CA_FILE"):
    private_ca = Path(existing_file("INTRODL_CA_FILE")).read_text()
    system_cas = Path(CA_BUNDLE).read_text() if Path(CA_BUNDLE).is_file() else ""
    bundle = STATE / "ca-bundle.pem"
    bundle.write_text(system_cas.rstrip("\n") + "\n" + private_ca)
    bundle.chmod(0o644)
    CA_BUNDLE = str(bundle)

# ---------------------------------------------------------------------------------------------
# Student servers: containers of the course image.

IMAGE = os.environ.get("INTRODL_IMAGE", "introdl/course:gpu")
c.JupyterHub.spawner_class = "dockerspawner.DockerSpawner"
c.DockerSpawner.image = IMAGE
c.DockerSpawner.pull_policy = "never"  # built on this host (docs/deploy.md), never pulled
c.DockerSpawner.network_name = NETWORK
c.DockerSpawner.use_internal_ip = True  # the proxy on the host reaches containers on the bridge
c.DockerSpawner.remove = True  # a stopped server's container goes; its home volume stays
c.DockerSpawner.notebook_dir = "/home/jovyan"
c.DockerSpawner.volumes = {
    "introdl-home-{username}": "/home/jovyan",
    CA_BUNDLE: {"bind": "/etc/introdl/ca-bundle.pem", "mode": "ro"},
}
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
    # through the proxy at this address, trusting the CAs above.
    "INTRODL_EXCHANGE_URL": f"{PUBLIC_URL}/services/exchange/",
    "REQUESTS_CA_BUNDLE": "/etc/introdl/ca-bundle.pem",
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

# The exchange cannot read the course: the course's archive limits (nbgrader_config.py) go to it
# as a file written here at every start.
EXCHANGE_LIMITS = STATE / "exchange-limits.json"
EXCHANGE_LIMITS.write_text(json.dumps(course_limits(COURSE_ROOT).to_config()) + "\n")
# Services get only the environment given here: the engine's address and the offline data.
passed_on = {k: os.environ[k] for k in ("DOCKER_HOST", "INTRODL_DATA_DIR") if k in os.environ}
REPO = Path(__file__).resolve().parents[2]
# Staff's Jupyter config, for the formgrader service and for staff shells on the host
# (`export JUPYTER_CONFIG_PATH=<hub state>/staff-jupyter`): the staff pages' Content-Security-Policy
# and nbgrader's exchange through the exchange service (a staff member's own hub token, from the
# hub's token page, in JUPYTERHUB_API_TOKEN). Regenerated at every start; no secret in it.
STAFF_ETC = STATE / "staff-jupyter"
shutil.rmtree(STAFF_ETC, ignore_errors=True)
shutil.copytree(REPO / "introdl" / "hub" / "etc" / "staff", STAFF_ETC)
(STAFF_ETC / "nbgrader_config.py").write_text(
    "# Generated by docker/hub/jupyterhub_config.py at the hub's start: do not edit.\n"
    "c = get_config()  # noqa: F821\n"
    f"c.CourseDirectory.course_id = {COURSE!r}\n"
    f"c.CourseDirectory.root = {str(COURSE_ROOT)!r}\n"
    "from introdl.hub.exchange_client import configure\n"
    f"configure(c, url={PUBLIC_URL + '/services/exchange/'!r})\n"
)
for path in (STAFF_ETC, *STAFF_ETC.rglob("*")):
    path.chmod(0o755 if path.is_dir() else 0o644)

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
            str(EXCHANGE_ROOT),
            "--course",
            COURSE,
            "--staff-group",
            STAFF_GROUP,
            "--limits",
            str(EXCHANGE_LIMITS),
        ],
        # sys.executable runs in the hub's environment, which has introdl installed
    },
    {
        # The course's shared grader server: formgrader over COURSE_ROOT, in its own tab, for
        # STAFF_GROUP only (nbgrader's "one class, multiple graders" layout). It runs as the
        # Unix account grader-introdl, which owns COURSE_ROOT (mode 0700). Its pages carry the
        # staff's Content-Security-Policy (introdl/hub/etc/staff): no foreign script or requests.
        "name": COURSE,
        "url": "http://127.0.0.1:9999",
        "command": [
            str(Path(sys.prefix) / "bin" / "jupyterhub-singleuser"),
            f"--ServerApp.root_dir={COURSE_ROOT}",
        ],
        "user": f"grader-{COURSE}",
        "cwd": str(COURSE_ROOT),
        "environment": {
            "JUPYTERHUB_DEFAULT_URL": "/lab",
            "JUPYTER_CONFIG_PATH": str(STAFF_ETC),
            "REQUESTS_CA_BUNDLE": CA_BUNDLE,
        },
        "oauth_client_allowed_scopes": [f"access:services!service={COURSE}"],
        "oauth_no_confirm": True,  # staff only (the role below): no "Authorize access" page
    },
    {
        # Check my work: grades a student's notebook, read from their own running server through
        # the proxy (docs/hub.md says why), in the course image with the docker backend.
        "name": "check",
        "url": "http://127.0.0.1:10102",
        "command": [
            sys.executable,
            "-m",
            "introdl.checkwork.service",
            "--course",
            str(COURSE_ROOT),
            "--state",
            str(CHECK_ROOT),
            "--staff-group",
            STAFF_GROUP,
            "--notebooks",
            "server",
            "--public-url",
            PUBLIC_URL,
            "--ca-file",
            CA_BUNDLE,
            "--backend",
            "docker",
            "--image",
            IMAGE,
            "--exchange-url",  # students' hand-in times (introdl/staff/handins.py)
            "http://127.0.0.1:10101/services/exchange/",
        ],
        "environment": {**passed_on, "TF_CPP_MIN_LOG_LEVEL": "3"},
        "oauth_no_confirm": True,
        "display": True,
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
    *exchange_roles(COURSE, extra_services=("check",)),
    # The check service: who a token is, and a short-lived token for one student's own server.
    # Students only: a service that could mint tokens of staff would hold the course's keys
    # (staff check a lab from a student account, or with `introdl grade-notebook`).
    *check_roles(servers_of=(STUDENT_GROUP,)),
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

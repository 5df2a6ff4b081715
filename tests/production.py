"""The production hub (docker/hub/jupyterhub_config.py) started for real, as docs/deploy.md says.

Everything a deployment does by hand is done here, in the same order, with the values a
deployment must choose anyway written into ONE environment file (the config's `introdl.env`):

- a TLS certificate for the public host: here a self-signed one made with openssl, trusted through
  `INTRODL_CA_FILE` (a real course uses its certificate authority's; the setting exists for
  institutions with a private CA);
- the authenticator: PAM with the host's accounts (made here: pr-ada, ..., pr-teacher; a real
  course names GitHub, its OAuth provider or its LMS instead);
- the public host and port, the course's state directory (`INTRODL_SRV`), the containers'
  subnet, the image, `INTRODL_GPUS=none` (no GPU here) and the Docker API (podman's socket).

The config itself is not edited or switched in any way for the test.

Two ways to start it:
- without a container engine (`make test`): the containers' subnet is on loopback
  (127.77.0.0/24), so the hub API binds without a bridge; the hub, its proxy (TLS) and all four
  services start; spawning a server needs `course_engine` (make test-docker);
- with podman (`make test-docker`): a real bridge network `introdl-hub`, the hub API on its
  gateway, student servers from the course image.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import requests

from introdl.hub.accounts import Account, ensure_account, load_or_make
from introdl.hub.prepare import COURSE_FILES, HubSettings, python_for_users
from tests.dockerhub import configurable_http_proxy, free_port

ROOT = Path(__file__).resolve().parents[1]
HUB_CONFIG = ROOT / "docker" / "hub" / "jupyterhub_config.py"
RUNUSER = "/usr/sbin/runuser"
# Their own accounts, not tests/hub.py's: the loopback hub keeps its passwords in its own state.
STUDENTS = ["pr-ada", "pr-ben", "pr-cy"]
STAFF = ["pr-teacher"]
GRADER = "grader-introdl"  # owns the course directory (docs/deploy.md, section 3)


@dataclass
class Production:
    """A started production hub: where it answers and who can log in."""

    url: str  # the public URL (https)
    srv: Path  # INTRODL_SRV: course/, exchange/, check/
    state: Path  # the hub's own directory (jupyterhub.sqlite, introdl.env)
    ca: Path  # the certificate to trust (self-signed)
    accounts: list[Account]
    log: Path
    docker_host: str = ""
    process: subprocess.Popen[bytes] | None = None
    env: dict[str, str] = field(default_factory=dict)  # the hub's environment (a root shell)
    python: str = ""  # the hub's Python (a venv every hub user can run)
    code: str = ""  # its PYTHONPATH: this checkout's engine, copied where all can read it
    podman_env: dict[str, str] = field(default_factory=dict)

    @property
    def course(self) -> Path:
        return self.srv / "course"

    def password(self, user: str) -> str:
        return next(a.password for a in self.accounts if a.name == user)

    def session(self, user: str) -> requests.Session:
        """A browser-like session logged in as USER through the hub's login form (PAM)."""
        session = requests.Session()
        session.verify = str(self.ca)
        session.trust_env = False  # REQUESTS_CA_BUNDLE would override `verify`
        page = session.get(f"{self.url}/hub/login", timeout=30)
        page.raise_for_status()
        xsrf = session.cookies.get("_xsrf", path="/hub/")
        answer = session.post(
            f"{self.url}/hub/login",
            data={"username": user, "password": self.password(user), "_xsrf": xsrf or ""},
            allow_redirects=False,
            timeout=60,
        )
        assert answer.status_code == 302, (answer.status_code, answer.text[:500])
        return session

    def token(self, user: str, scopes: list[str] | None = None) -> str:
        """A hub API token of USER, made on the hub's token page as a person would."""
        session = self.session(user)
        session.get(f"{self.url}/hub/token", timeout=30).raise_for_status()
        xsrf = session.cookies.get("_xsrf", path="/hub/")
        body: dict[str, object] = {"note": "production test", "expires_in": 3600}
        if scopes is not None:
            body["scopes"] = scopes
        made = session.post(
            f"{self.url}/hub/api/users/{user}/tokens",
            json=body,
            headers={"X-XSRFToken": xsrf or "", "Referer": f"{self.url}/hub/token"},
            timeout=30,
        )
        assert made.status_code == 201, (made.status_code, made.text[:500])
        return str(made.json()["token"])

    def tail(self, chars: int = 6000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


def make_certificate(directory: Path, host: str) -> tuple[Path, Path]:
    """A self-signed certificate for HOST (a name or an IP address) and its key."""
    cert, key = directory / "hub.crt", directory / "hub.key"
    kind = "IP" if host.replace(".", "").isdigit() else "DNS"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"),
            *("-keyout", str(key), "-out", str(cert), "-subj", f"/CN={host}"),
            *("-addext", f"subjectAltName={kind}:{host}"),
        ],
        check=True,
        capture_output=True,
    )
    key.chmod(0o600)
    cert.chmod(0o644)
    return cert, key


def copy_course(srv: Path) -> Path:
    """The repository's course in SRV/course, owned by grader-introdl, mode 0700."""
    ensure_account(GRADER, system=True)
    course = srv / "course"
    course.mkdir(parents=True)
    # docs/deploy.md: `useradd --system --home-dir /srv/introdl/course grader-introdl`; the
    # formgrader's Jupyter writes its runtime files under that home.
    subprocess.run(["usermod", "--home", str(course), GRADER], check=True, capture_output=True)
    for name in COURSE_FILES:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, course / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(src, course / name)
    subprocess.run(["chown", "-R", f"{GRADER}:{GRADER}", str(course)], check=True)
    course.chmod(0o700)
    return course


def prepare(
    base: Path,
    *,
    public_host: str,
    subnet: str,
    port: int,
    image: str = "localhost/introdl/course:cpu",
    docker_host: str = "unix:///nonexistent/docker.sock",
    extra: dict[str, str] | None = None,
    students: list[str] | None = None,
) -> Production:
    """Accounts, course, certificate, rosters and the environment file, as docs/deploy.md says."""
    srv, state = base / "srv", base / "hub"
    for directory in (srv, state):
        directory.mkdir(parents=True)
        directory.chmod(0o755)
    base.chmod(0o755)  # grader-introdl reaches its course through here
    students = students or STUDENTS
    accounts = load_or_make(state, students=students, staff=STAFF)
    copy_course(srv)
    cert, key = make_certificate(state, public_host)
    (srv / "staff.txt").write_text("\n".join(STAFF) + "\n")
    (srv / "students.txt").write_text("\n".join(students) + "\n")
    settings = {
        "INTRODL_PUBLIC_HOST": public_host,
        "INTRODL_HTTPS_PORT": str(port),
        "INTRODL_SSL_CERT": str(cert),
        "INTRODL_SSL_KEY": str(key),
        "INTRODL_CA_FILE": str(cert),
        "INTRODL_AUTHENTICATOR": "pam",
        "INTRODL_STAFF_FILE": str(srv / "staff.txt"),
        "INTRODL_STUDENTS_FILE": str(srv / "students.txt"),
        "INTRODL_SRV": str(srv),
        "INTRODL_NETWORK_SUBNET": subnet,
        "INTRODL_IMAGE": image,
        "INTRODL_GPUS": "none",
        "DOCKER_HOST": docker_host,
        **(extra or {}),
    }
    (state / "introdl.env").write_text("".join(f"{k}={v}\n" for k, v in settings.items()))
    (state / "introdl.env").chmod(0o600)
    url = f"https://{public_host}" + ("" if port == 443 else f":{port}")
    return Production(
        url=url,
        srv=srv,
        state=state,
        ca=cert,
        accounts=accounts,
        log=state / "jupyterhub.log",
        docker_host=docker_host,
    )


def start(hub: Production, *, budget: float = 120.0) -> Production:
    """`jupyterhub -f docker/hub/jupyterhub_config.py` in the hub's state directory, as root."""
    chp = configurable_http_proxy()
    # The hub's Python as a deployment has it (docs/deploy.md: /srv/introdl/venv): a venv of the
    # system's Python that grader-introdl can run, not this checkout's venv under /root's pyenv.
    python, code = python_for_users(HubSettings(repo=ROOT))
    env = {
        # The environment of a root shell on a Debian host (the rest is in introdl.env); the
        # proxy on PATH as `npm install -g` would put it, and this checkout's engine.
        "PATH": f"{chp.parent}:{python.parent}:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": "/root",
        "LANG": "C.UTF-8",
        **({"PYTHONPATH": code} if code else {}),
        **(
            {"INTRODL_DATA_DIR": os.environ["INTRODL_DATA_DIR"]}
            if "INTRODL_DATA_DIR" in os.environ
            else {}
        ),
    }
    with hub.log.open("ab") as out:
        hub.process = subprocess.Popen(
            [str(python), "-m", "jupyterhub", "-f", str(HUB_CONFIG)],
            cwd=hub.state,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=lambda: os.umask(0o077),  # docs/deploy.md: the hub's files are root's
        )
    hub.env, hub.python, hub.code = env, str(python), code
    deadline = time.monotonic() + budget
    while time.monotonic() < deadline:
        if hub.process.poll() is not None:
            stop(hub, group_only=True)  # its proxy, left behind by a hub that stopped
            raise AssertionError(
                f"the production hub exited ({hub.process.returncode}):\n{hub.tail()}"
            )
        with contextlib.suppress(requests.RequestException):
            if requests.get(f"{hub.url}/hub/api", verify=str(hub.ca), timeout=5).ok:
                return hub
        time.sleep(0.5)
    stop(hub)
    raise AssertionError(f"the production hub did not answer in {budget:.0f} s:\n{hub.tail()}")


def stop(hub: Production, *, group_only: bool = False) -> None:
    """Stop the hub (SIGTERM: it stops its proxy and services; servers keep running), then any
    process of this hub left behind by one that crashed (the proxy and the services run in
    sessions of their own: they are found by this hub's paths on their command lines)."""
    process = hub.process
    if process is not None and not group_only and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    base = str(hub.state.parent)
    for leftover in psutil.process_iter(["cmdline"]):
        with contextlib.suppress(psutil.Error):
            if any(base in part for part in leftover.info["cmdline"] or ()):
                leftover.kill()


# Not /tmp/introdl-hub.lock, which people hold around whole pytest runs (flock(1)): taking it
# again here would wait on ourselves.
LOCK = Path("/tmp/introdl-production-hub.lock")


@contextlib.contextmanager
def machine_lock(budget: float = 1800.0) -> Iterator[None]:
    """One production hub on this machine at a time: its proxy's API port (8001) and the hub's
    accounts are the machine's. Waits for another run's production hub."""
    with LOCK.open("a") as handle:
        deadline = time.monotonic() + budget
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise AssertionError(f"{LOCK} stayed locked for {budget:.0f} s") from None
                time.sleep(2)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def running(hub: Production) -> Iterator[Production]:
    with machine_lock():
        start(hub)
        try:
            yield hub
        finally:
            stop(hub)


def container(user: str) -> str:
    """DockerSpawner's container name for USER (its escaping: "-" is "-2d")."""
    from dockerspawner.dockerspawner import DockerSpawner

    return f"jupyter-{DockerSpawner._escape(user)}"


def remove_servers(podman_env: dict[str, str]) -> None:
    """Remove the test users' containers and home volumes (names start with the pr- prefix)."""
    from tests.podman import podman

    listed = podman(podman_env, "ps", "-a", "-q", "--filter", "name=jupyter-pr-")
    if listed.stdout.split():
        podman(podman_env, "rm", "-f", *listed.stdout.split())
    volumes = podman(podman_env, "volume", "ls", "-q", "--filter", "name=introdl-home-pr-")
    if volumes.stdout.split():
        podman(podman_env, "volume", "rm", "-f", *volumes.stdout.split())


def as_grader(hub: Production, token: str, *args: str) -> subprocess.CompletedProcess[str]:
    """A staff command on the host, as docs/deploy.md says: grader-introdl in the course, the
    staff member's own hub token, the hub's staff Jupyter config."""
    python = Path(hub.python)
    env = {
        "PATH": f"{python.parent}:/usr/bin:/bin",
        "HOME": str(hub.course),
        "JUPYTER_CONFIG_PATH": str(hub.state / "staff-jupyter"),
        "JUPYTERHUB_API_TOKEN": token,
        "REQUESTS_CA_BUNDLE": str(hub.state / "ca-bundle.pem"),
        **({"PYTHONPATH": hub.code} if hub.code else {}),
    }
    return subprocess.run(
        [RUNUSER, "-u", GRADER, "--", *args],
        cwd=hub.course,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


IMAGE = "localhost/introdl/course:cpu"  # scripts/course-image
SUBNET = "172.30.0.0/24"  # the config's default
GATEWAY = "172.30.0.1"  # the host on the containers' bridge: the public host of the tests


def bridge(env: dict[str, str]) -> None:
    """docs/deploy.md, section 3: the containers' network. podman (unlike Docker Engine) makes the
    bridge interface when the first container joins, so one short container brings it up."""
    from tests.podman import podman

    if podman(env, "network", "exists", "introdl-hub").returncode != 0:
        made = podman(env, "network", "create", "--subnet", SUBNET, "introdl-hub")
        assert made.returncode == 0, made.stderr
    up = podman(env, "run", "--rm", "--network", "introdl-hub", IMAGE, "true", timeout=120)
    assert up.returncode == 0, up.stderr


@contextlib.contextmanager
def on_podman(
    engine: tuple[str, dict[str, str]], *, students: list[str] | None = None, **settings: str
) -> Iterator[Production]:
    """The production hub on podman (the `course_engine` fixture's engine), on the bridge with
    the gateway as its public host; SETTINGS go to introdl.env. Student containers and volumes
    of an earlier run are removed first and these are removed after."""
    docker_host, env = engine
    bridge(env)
    base = Path(tempfile.mkdtemp(prefix="introdl-production-", dir="/tmp"))
    made = prepare(
        base,
        public_host=GATEWAY,
        subnet=SUBNET,
        port=free_port(),
        image=IMAGE,
        docker_host=docker_host,
        extra=settings,
        students=students,
    )
    made.podman_env = env
    remove_servers(env)
    try:
        with running(made) as started:
            yield started
    finally:
        remove_servers(env)


def release(hub: Production, lab: str) -> None:
    """docs/deploy.md, section 4: staff regenerate the release, then release it to the class."""
    teacher = hub.token(STAFF[0])
    for command in (
        ("introdl", "release", lab),
        ("nbgrader", "release_assignment", lab, "--force"),
    ):
        done = as_grader(hub, teacher, *command)
        assert done.returncode == 0, done.stdout + done.stderr

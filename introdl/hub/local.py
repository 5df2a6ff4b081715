"""`introdl hub` (make hub): a real JupyterHub on loopback for the demo course, as root.

1. accounts: a Unix user per student and per staff member (homes 0700, random passwords for PAM),
   and a system user that alone owns the exchange's state;
2. the course: the repository's course files copied into the first staff member's home
   (`~/course`, the formgrader's course directory), readable by staff only;
3. Jupyter config folders for students (assignment list and validate only; the exchange client)
   and for staff (formgrader too, allowed in a JupyterLab frame);
4. the hub (PAM authenticator, LocalProcessSpawner, configurable-http-proxy from npm) with the
   exchange service; the labs are released through it with the instructor's own hub token;
5. the URL and the accounts are printed; Ctrl-C (or SIGTERM) stops the hub, its proxy and every
   server.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import requests

from introdl.hub.accounts import Account, ensure_account, load_or_make

HERE = Path(__file__).resolve().parent
CHP_VERSION = "5.3.0"
EXCHANGE_USER = "introdl-exchange"
LABS = ("lab1_tensorflow", "lab1_music", "lab2_mnist", "lab2_debiasing", "lab3_rl")
RUNUSER = shutil.which("runuser", path="/usr/sbin:/sbin:/usr/bin:/bin") or "runuser"
COURSE_FILES = ("nbgrader_config.py", "source", "release", "grader_tests")


class HubError(RuntimeError):
    """The hub cannot be set up or started; the message says what to do."""


@dataclass
class HubSettings:
    repo: Path
    state: Path = Path("/var/lib/introdl-hub")
    public: Path = Path("/opt/introdl-hub")
    port: int = 8000
    students: list[str] = field(default_factory=lambda: ["ada", "ben", "cy"])
    staff: list[str] = field(default_factory=lambda: ["teacher"])
    course_id: str = "introdl"
    labs: tuple[str, ...] = LABS

    @property
    def hub_dir(self) -> Path:
        """The hub's database, secrets, accounts and log: root only."""
        return self.state / "hub"

    @property
    def exchange_dir(self) -> Path:
        """The exchange's state: its service user only."""
        return self.state / "exchange"

    @property
    def etc_dir(self) -> Path:
        """Jupyter config folders of this hub's student and staff servers: readable by all."""
        return self.state / "etc"

    @property
    def instructor(self) -> str:
        return self.staff[0]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def readable_by_others(path: Path) -> bool:
    """Can an unprivileged user reach `path` (x on every parent, r on the file)?"""
    result = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "test", "-r", str(path)],
        check=False,
    )
    return result.returncode == 0


def python_for_users(settings: HubSettings) -> tuple[Path, str]:
    """A Python with the project that every hub user can run, and a PYTHONPATH for it.

    The repository's own .venv when others can read it; otherwise a copy of the project installed
    into a virtual environment under the public folder (re-made when pyproject.toml changes).
    """
    own = settings.repo / ".venv" / "bin" / "python"
    if readable_by_others(settings.repo / "introdl" / "__init__.py") and readable_by_others(own):
        return own, ""
    venv = settings.public / "venv"
    stamp = venv / ".introdl-stamp"
    want = (settings.repo / "pyproject.toml").read_text()
    if not stamp.is_file() or stamp.read_text() != want:
        print(f"hub: {settings.repo} is not readable by other users; installing a copy into {venv}")
        # The system's Python: an interpreter under /root (pyenv) is not readable by others.
        base = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable
        if not (venv / "bin" / "python").exists():
            subprocess.run([base, "-m", "venv", str(venv)], check=True)
        pip = [str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check"]
        subprocess.run([*pip, str(settings.repo)], check=True, stderr=subprocess.DEVNULL)
        stamp.write_text(want)
    # The lab helpers of this checkout, not the copy installed with the venv.
    code = settings.public / "src"
    if code.exists():
        shutil.rmtree(code)
    shutil.copytree(
        settings.repo / "introdl", code / "introdl", ignore=shutil.ignore_patterns("__pycache__")
    )
    return venv / "bin" / "python", str(code)


def install_proxy(public: Path) -> Path:
    chp = public / "chp" / "node_modules" / ".bin" / "configurable-http-proxy"
    if not chp.exists():
        if not shutil.which("npm"):
            raise HubError("the hub's proxy comes from npm: apt-get install -y npm, then run again")
        print(f"hub: installing configurable-http-proxy {CHP_VERSION} from npm")
        subprocess.run(
            [
                "npm",
                "install",
                "--silent",
                "--prefix",
                str(public / "chp"),
                f"configurable-http-proxy@{CHP_VERSION}",
            ],
            check=True,
        )
    return chp


def write_jupyter_config(settings: HubSettings, exchange_url: str) -> None:
    """Student and staff config folders, readable by all (they hold no secret)."""
    for role in ("student", "staff"):
        etc = settings.etc_dir / role
        shutil.rmtree(etc, ignore_errors=True)
        # Students get the course image's own config (docker/student/): one source for both hubs.
        source = settings.repo / "docker" / "student" if role == "student" else HERE / "etc" / role
        shutil.copytree(source, etc, ignore=shutil.ignore_patterns("nbgrader_config.py"))
        (etc / "nbgrader_config.py").write_text(
            "# Generated by introdl.hub.local for the demo hub: the course and its exchange.\n"
            "c = get_config()  # noqa: F821\n"
            f"c.CourseDirectory.course_id = {settings.course_id!r}\n"
            + (
                f"c.CourseDirectory.root = {str(course_dir(settings))!r}\n"
                if role == "staff"
                else ""
            )
            + "from introdl.hub.exchange_client import configure\n"
            f"configure(c, url={exchange_url!r})\n"
        )
    # Readable by all; never follow a link (the venv's python points into /usr/bin).
    for path in (settings.public, settings.etc_dir, *settings.etc_dir.rglob("*")):
        if not path.is_symlink():
            path.chmod(0o755 if path.is_dir() else 0o644)


def course_dir(settings: HubSettings) -> Path:
    return Path(f"~{settings.instructor}").expanduser() / "course"


def copy_course(settings: HubSettings, owner: Account) -> Path:
    """The course files in the instructor's home; an existing course (gradebook...) is kept."""
    course = course_dir(settings)
    if not course.exists():
        course.mkdir()
        for name in COURSE_FILES:
            src = settings.repo / name
            if src.is_dir():
                shutil.copytree(src, course / name, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy(src, course / name)
    subprocess.run(["chown", "-R", f"{owner.name}:{owner.name}", str(course)], check=True)
    course.chmod(0o700)
    return course


def prepare(settings: HubSettings) -> tuple[list[Account], dict[str, object]]:
    if os.geteuid() != 0:
        raise HubError("make hub makes Unix accounts and runs servers as them: run it as root")
    settings.hub_dir.mkdir(parents=True, exist_ok=True)
    settings.state.chmod(0o711)  # two private folders, each its owner's alone
    settings.hub_dir.chmod(0o700)
    settings.public.mkdir(parents=True, exist_ok=True)
    accounts = load_or_make(settings.hub_dir, students=settings.students, staff=settings.staff)
    ensure_account(EXCHANGE_USER, system=True)
    exchange_root = settings.exchange_dir
    exchange_root.mkdir(exist_ok=True)
    shutil.chown(exchange_root, EXCHANGE_USER, EXCHANGE_USER)
    exchange_root.chmod(0o700)
    token_file = settings.hub_dir / "admin-token"
    if not token_file.is_file():
        token_file.write_text(secrets.token_hex(32))
    token_file.chmod(0o600)
    python, pythonpath = python_for_users(settings)
    data_dir = settings.public / "data"
    data_dir.mkdir(exist_ok=True)
    exchange_port = free_port()
    exchange_url = f"http://127.0.0.1:{exchange_port}/services/exchange/"
    write_jupyter_config(settings, exchange_url)
    copy_course(settings, next(a for a in accounts if a.name == settings.instructor))
    hub = {
        "state": str(settings.hub_dir),
        "exchange_root": str(exchange_root),
        "public": str(settings.public),
        "port": settings.port,
        "hub_port": free_port(),
        "proxy_api_port": free_port(),
        "exchange_port": exchange_port,
        "exchange_url": exchange_url,
        "exchange_user": EXCHANGE_USER,
        "chp": str(install_proxy(settings.public)),
        "python": str(python),
        "pythonpath": pythonpath,
        "data_dir": str(data_dir),
        "etc": str(settings.etc_dir),
        "students": settings.students,
        "staff": settings.staff,
        "course_id": settings.course_id,
    }
    (settings.hub_dir / "settings.json").write_text(json.dumps(hub, indent=1))
    return accounts, hub


class Hub:
    """A running hub: its process, and what a caller needs to drive it."""

    def __init__(
        self,
        settings: HubSettings,
        hub: dict[str, object],
        proc: subprocess.Popen[bytes],
        accounts: list[Account],
    ) -> None:
        self.settings = settings
        self.accounts = accounts
        self.config = hub
        self.proc = proc
        self.admin_token = (settings.hub_dir / "admin-token").read_text().strip()

    @property
    def api(self) -> str:
        return f"{self.settings.url}/hub/api"

    def admin(self, method: str, path: str, **kwargs: object) -> requests.Response:
        response = requests.request(
            method,
            f"{self.api}/{path.lstrip('/')}",
            headers={"Authorization": f"token {self.admin_token}"},
            timeout=30,
            **kwargs,  # type: ignore[arg-type]
        )
        response.raise_for_status()
        return response

    def token_for(self, user: str, note: str = "introdl tooling", *, server: bool = False) -> str:
        """A new hub token of `user` for the exchange (and their own server, if asked)."""
        scopes = ["access:services!service=exchange"]
        if server:
            scopes.append(f"access:servers!user={user}")
        body = {"note": note, "expires_in": 24 * 3600, "scopes": scopes}
        return str(self.admin("POST", f"users/{user}/tokens", json=body).json()["token"])

    def as_user(
        self, user: str, *args: str, cwd: Path, token: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run a command as the Unix user with their own hub token, as in their server's terminal."""
        env = {
            "HOME": str(Path(f"~{user}").expanduser()),
            "PATH": f"{Path(str(self.config['python'])).parent}:/usr/local/bin:/usr/bin:/bin",
            "JUPYTERHUB_API_TOKEN": token or self.token_for(user),
            "JUPYTERHUB_USER": user,
            "JUPYTER_CONFIG_PATH": str(
                self.settings.etc_dir / ("staff" if user in self.settings.staff else "student")
            ),
            "INTRODL_EXCHANGE_URL": str(self.config["exchange_url"]),
            "TF_CPP_MIN_LOG_LEVEL": "3",
        }
        if self.config.get("pythonpath"):
            env["PYTHONPATH"] = str(self.config["pythonpath"])
        return subprocess.run(
            [RUNUSER, "-u", user, "--", *args],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )

    def nbgrader(
        self, user: str, *args: str, cwd: Path, token: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        return self.as_user(
            user, str(self.config["python"]), "-m", "nbgrader", *args, cwd=cwd, token=token
        )

    def stop(self) -> None:
        """Stop the hub (which stops the servers and the proxy), then anything of its group left."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)


def wait_until_up(
    url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60.0
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise HubError(
                f"the hub exited with {proc.returncode}; its log: {log}\n{log.read_text()[-3000:]}"
            )
        try:
            if requests.get(f"{url}/hub/api", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise HubError(f"the hub did not answer at {url} within {timeout:.0f} s; its log: {log}")


@contextmanager
def running_hub(settings: HubSettings, *, log: Path | None = None) -> Iterator[Hub]:
    """Prepare, start, release the labs; stop everything on the way out."""
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", settings.port)) == 0:
            raise HubError(
                f"port {settings.port} on 127.0.0.1 is in use (another hub?): stop it or pass --port"
            )
    accounts, hub_config = prepare(settings)
    log = log or settings.hub_dir / "jupyterhub.log"
    env = {**os.environ, "INTRODL_HUB_SETTINGS": str(settings.hub_dir / "settings.json")}
    env.pop("JUPYTERHUB_API_TOKEN", None)
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "jupyterhub"),
                "-f",
                str(HERE / "jupyterhub_config.py"),
            ],
            cwd=settings.hub_dir,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    hub = Hub(settings, hub_config, proc, accounts)
    try:  # from here on, whatever happens, the hub and its proxy are stopped
        wait_until_up(settings.url, proc, log)
        release_labs(hub)
        yield hub
    finally:
        hub.stop()


def release_labs(hub: Hub) -> None:
    """The instructor puts every lab in the gradebook and releases it, with their own hub token."""
    course = course_dir(hub.settings)
    token = hub.token_for(hub.settings.instructor, "make hub: release")
    for lab in hub.settings.labs:
        for step in ("generate_assignment", "release_assignment"):
            done = hub.nbgrader(
                hub.settings.instructor, step, lab, "--force", cwd=course, token=token
            )
            if done.returncode != 0:
                raise HubError(f"nbgrader {step} {lab} failed:\n{done.stdout}{done.stderr}")


def summary(settings: HubSettings, accounts: list[Account]) -> str:
    lines = [
        f"introdl hub: JupyterHub is up at {settings.url}/  (Ctrl-C stops it)",
        "",
        "  accounts (Unix users; log in with these):",
    ]
    for a in accounts:
        lines.append(f"    {a.role:<8} {a.name:<10} password {a.password}")
    lines += [
        "",
        "  students: Nbgrader > Assignment List in JupyterLab: fetch, validate, submit, fetch feedback",
        f"  staff:    formgrader at {settings.url}/user/{settings.instructor}/formgrader ;"
        f" course in ~{settings.instructor}/course",
        "            collect in a terminal of your server:  cd ~/course && nbgrader collect LAB",
        f"            grade as root on this host:  introdl grade LAB --feedback"
        f" (INTRODL_COURSE_ROOT={course_dir(settings)})",
        f"  state (root only): {settings.state}   hub log: {settings.hub_dir / 'jupyterhub.log'}",
    ]
    return "\n".join(lines)


@dataclass(frozen=True)
class HubStopped:
    url: str

    def summary(self) -> str:
        return f"introdl hub: stopped {self.url} (hub, proxy and every user server)"


def serve(*, port: int = 8000, state: str = "/var/lib/introdl-hub") -> HubStopped:
    """A real JupyterHub on loopback for the demo course: students fetch, check and submit."""
    settings = HubSettings(repo=Path(__file__).resolve().parents[2], state=Path(state), port=port)
    stop = False

    def _stop(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    with running_hub(settings) as hub:
        print(summary(settings, hub.accounts), flush=True)
        while not stop and hub.proc.poll() is None:
            time.sleep(0.5)
    return HubStopped(settings.url)

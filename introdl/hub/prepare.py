"""Prepare this machine for the local demo hub (`make hub`): everything before the hub starts.

1. accounts: a Unix user per student and per staff member (homes 0700, random passwords for PAM),
   and a system user that alone owns the exchange's state;
2. the course: the repository's course files copied into the first staff member's home
   (`~/course`, the formgrader's course directory), readable by staff only;
3. Jupyter config folders for students (the course image's: assignment list and validate only)
   and for staff (formgrader too, allowed in a JupyterLab frame), each with the exchange client
   and the course's own file-size limit, ignore list and archive limits (nbgrader_config.py);
   the same archive limits go to the exchange service as `limits.json` in its state;
4. a Python every hub user can run, and the hub's proxy from npm.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from introdl.hub.accounts import Account, ensure_account, load_or_make
from introdl.hub.course_limits import course_limits, course_lines
from introdl.labs import LABS

HERE = Path(__file__).resolve().parent
CHP_VERSION = "5.3.0"
EXCHANGE_USER = "introdl-exchange"
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
    # Where the check service reads a student's notebook: "home" (their home on this host) or
    # "server" (their running server through the proxy, as under DockerSpawner/KubeSpawner).
    check_notebooks: str = "home"

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
    # The lab helpers of this checkout, not the copy installed with the venv. Copied beside and
    # swapped in, so that the servers of another hub on this machine (the tests run two) never
    # see the folder empty.
    code = settings.public / "src"
    fresh = Path(tempfile.mkdtemp(prefix="src-", dir=settings.public))
    shutil.copytree(
        settings.repo / "introdl", fresh / "introdl", ignore=shutil.ignore_patterns("__pycache__")
    )
    fresh.chmod(0o755)
    old = settings.public / f"src-old-{os.getpid()}"
    if code.exists():
        code.rename(old)
    fresh.rename(code)
    shutil.rmtree(old, ignore_errors=True)
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


def write_exchange_limits(repo: Path, exchange_root: Path) -> Path:
    """The course's archive limits for the exchange service, which cannot read the course."""
    path = exchange_root / "limits.json"
    path.write_text(json.dumps(course_limits(repo).to_config(), indent=1) + "\n")
    shutil.chown(path, EXCHANGE_USER, EXCHANGE_USER)
    path.chmod(0o600)
    return path


def write_jupyter_config(settings: HubSettings, exchange_url: str) -> None:
    """Student and staff config folders, readable by all (they hold no secret)."""
    shared = course_lines(settings.repo)
    for role in ("student", "staff"):
        etc = settings.etc_dir / role
        shutil.rmtree(etc, ignore_errors=True)
        # Students get the course image's own config (docker/student/): one source for both hubs.
        source = settings.repo / "docker" / "student" if role == "student" else HERE / "etc" / role
        shutil.copytree(
            source, etc, ignore=shutil.ignore_patterns("nbgrader_config.py", "course_limits.py")
        )
        (etc / "nbgrader_config.py").write_text(
            "# Generated by introdl.hub.local for the demo hub: the course and its exchange.\n"
            "c = get_config()  # noqa: F821\n"
            f"c.CourseDirectory.course_id = {settings.course_id!r}\n"
            + (
                f"c.CourseDirectory.root = {str(course_dir(settings))!r}\n"
                if role == "staff"
                else ""
            )
            + shared
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
    write_exchange_limits(settings.repo, exchange_root)
    token_file = settings.hub_dir / "admin-token"
    if not token_file.is_file():
        token_file.write_text(secrets.token_hex(32))
    token_file.chmod(0o600)
    python, pythonpath = python_for_users(settings)
    data_dir = settings.public / "data"
    data_dir.mkdir(exist_ok=True)
    check_state = settings.state / "check"  # the check service's SQLite: root only
    check_state.mkdir(mode=0o700, exist_ok=True)
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
        "check_port": free_port(),
        "check_state": str(check_state),
        "course_dir": str(course_dir(settings)),
        # The check service grades as root with the Python that runs the hub (the engine's own).
        "grader_python": sys.executable,
        "chp": str(install_proxy(settings.public)),
        "python": str(python),
        "pythonpath": pythonpath,
        "data_dir": str(data_dir),
        "etc": str(settings.etc_dir),
        "students": settings.students,
        "staff": settings.staff,
        "course_id": settings.course_id,
        "check_notebooks": settings.check_notebooks,
    }
    (settings.hub_dir / "settings.json").write_text(json.dumps(hub, indent=1))
    return accounts, hub

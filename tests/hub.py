"""A real JupyterHub on loopback for the student-side tests, and what they drive it with.

One hub per test session (`hub` fixture in conftest.py): real Unix accounts (names that `make hub`
does not use, so a demo hub on the same machine is left alone), PAM logins, LocalProcessSpawner,
configurable-http-proxy from npm, and the exchange service run by the hub as its own Unix user.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import pwd
import shutil
import tarfile
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import nbformat
import pytest
import requests

from introdl.hub.local import Hub
from introdl.hub.prepare import HubSettings, course_dir, free_port
from tests.corpus_course import LAB as CORPUS
from tests.corpus_course import build_course

STUDENTS = ["st-ada", "st-ben", "st-cy"]
# A class of thirty for the load test: real accounts too (a LocalAuthenticator knows no others).
LOAD_CLASS = [f"st-load{i:02d}" for i in range(30)]
STAFF = ["st-teacher"]
CHROMIUM = Path("/usr/lib/chromium/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[1] / "build" / "screenshots" / "hub"


def skip_reason() -> str | None:
    """Why the hub cannot run here, or None. Said out loud: these tests never skip silently."""
    if os.geteuid() != 0:
        return "the hub tests make Unix accounts and run servers as them: run as root"
    for tool in ("useradd", "chpasswd", "runuser", "setpriv", "npm"):
        if not shutil.which(tool, path="/usr/sbin:/sbin:/usr/bin:/bin"):
            return f"`{tool}` is missing (make setup installs it)"
    return None


def reset_homes() -> None:
    """Empty the test accounts' homes left by an earlier session (their servers are gone)."""
    for user in STUDENTS + LOAD_CLASS + STAFF:
        try:
            home = Path(pwd.getpwnam(user).pw_dir)
        except KeyError:
            continue  # not made yet: the hub fixture makes it
        if home.is_dir():
            for entry in home.iterdir():
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()


def settings(root: Path, state: Path) -> HubSettings:
    return HubSettings(
        repo=root,
        state=state,
        port=free_port(),
        students=STUDENTS + LOAD_CLASS,
        staff=STAFF,
        labs=("lab1_tensorflow", "lab2_mnist"),
    )


class ServiceApi:
    """A hub service's HTTP API as one person calls it (their hub token), through the proxy."""

    service = ""
    follow_redirects = True

    def __init__(self, hub: Hub, token: str | None) -> None:
        self.base = f"{hub.settings.url}/services/{self.service}/api"
        self.headers = {"Authorization": f"token {token}"} if token else {}

    def call(self, method: str, path: str, **kwargs: object) -> requests.Response:
        return requests.request(
            method,
            f"{self.base}/{path.lstrip('/')}",
            headers=self.headers,
            timeout=60,
            allow_redirects=self.follow_redirects,
            **kwargs,  # type: ignore[arg-type]
        )


class Exchange(ServiceApi):
    """The course exchange's API."""

    service = "exchange"


class CheckApi(ServiceApi):
    """The check service's API (redirects are answers to check, not to follow)."""

    service = "check"
    follow_redirects = False

    def verdict(self, check_id: int, timeout: float = 600.0) -> dict[str, object]:
        """Poll one's own check until it has a verdict (bounded)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                row = self.call("GET", f"checks/{check_id}")
            except requests.ConnectionError:
                row = None
            if row is None or row.status_code in (502, 503):  # the service is restarting
                time.sleep(1.0)
                continue
            row.raise_for_status()
            if row.json()["state"] == "done":
                return dict(row.json())
            time.sleep(1.0)
        raise AssertionError(f"check {check_id} had no verdict after {timeout:.0f} s")


def tarball(files: dict[str, bytes]) -> bytes:
    """A tar.gz holding `files` (name -> content), as the exchange client packs a folder."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


@contextlib.contextmanager
def chromium(shots: Path) -> Iterator[Any]:
    """Debian's Chromium driven by Playwright (skips without either); screenshots go to SHOTS."""
    need_chromium()
    sync_api = pytest.importorskip("playwright.sync_api")
    shots.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"]
        )
        yield browser
        browser.close()


def need_chromium() -> None:
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install -y chromium (make setup does)")


def log_in(browser, hub: Hub, user: str, *, next_url: str = ""):  # type: ignore[no-untyped-def]
    """A new browser context logged in to the hub as USER (their PAM password); its page."""
    password = next(a.password for a in hub.accounts if a.name == user)
    context = browser.new_context(viewport={"width": 1300, "height": 850})
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(f"{hub.settings.url}/hub/login{next_url}")
    page.fill("#username_input", user)
    page.fill("#password_input", password)
    page.click("#login_submit")
    if not next_url:
        page.wait_for_url(f"**/user/{user}/lab**", timeout=120_000)
    return page


def fetched_notebook(hub: Hub, user: str, lab: str) -> tuple[Path, dict[str, Any]]:
    """USER's own copy of LAB's notebook (fetched with nbgrader as that Unix user if not yet), as JSON."""
    home = Path(pwd.getpwnam(user).pw_dir)
    path = home / lab / f"{lab}.ipynb"
    if not path.exists():
        done = hub.nbgrader(user, "fetch_assignment", lab, cwd=home)
        assert done.returncode == 0, done.stdout + done.stderr
    return path, json.loads(path.read_text())


def save_as_student(path: Path, nb: dict[str, Any], user: str) -> None:
    """Write NB to PATH as the student would have (owned by them)."""
    path.write_text(json.dumps(nb))
    entry = pwd.getpwnam(user)
    os.chown(path, entry.pw_uid, entry.pw_gid)


def install_corpus(hub: Hub) -> nbformat.NotebookNode:
    """The corpus lab (tests/corpus_course.py, a couple of seconds a grading) released in the
    hub's course, with tight limits for hostile notebooks; its release notebook. The course is
    the instructor's, shared by every hub of the test session: installed once, kept."""
    course = course_dir(hub.settings)
    with tempfile.TemporaryDirectory() as tmp:
        release = build_course(Path(tmp))
        for part in ("release", "grader_tests"):
            shutil.copytree(Path(tmp) / part / CORPUS, course / part / CORPUS, dirs_exist_ok=True)
    (course / "grader_tests" / CORPUS / "limits.toml").write_text(
        "cell_timeout = 5\nnotebook_timeout = 30\n"
    )
    owner = course.stat()
    for path in [course / "release" / CORPUS, course / "grader_tests" / CORPUS]:
        for p in [path, *path.rglob("*")]:
            os.chown(p, owner.st_uid, owner.st_gid)
    return release


def start_servers(hub: Hub, users: list[str], timeout: float = 180.0) -> None:
    """Start the USERS' servers through the hub's API, at once, and wait until each is ready."""

    def start(user: str) -> None:
        hub.admin("POST", f"users/{user}/server")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            server = (hub.admin("GET", f"users/{user}").json().get("servers") or {}).get("")
            if server and server.get("ready"):
                return
            time.sleep(0.5)
        raise AssertionError(f"the server of {user} was not ready after {timeout:.0f} s")

    with ThreadPoolExecutor(max_workers=len(users)) as pool:
        list(pool.map(start, users))

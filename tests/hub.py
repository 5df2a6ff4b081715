"""A real JupyterHub on loopback for the student-side tests, and what they drive it with.

One hub per test session (`hub` fixture in conftest.py): real Unix accounts (names that `make hub`
does not use, so a demo hub on the same machine is left alone), PAM logins, LocalProcessSpawner,
configurable-http-proxy from npm, and the exchange service run by the hub as its own Unix user.
"""

from __future__ import annotations

import io
import os
import pwd
import shutil
import tarfile
import time
from pathlib import Path

import pytest
import requests

from introdl.hub.local import Hub
from introdl.hub.prepare import HubSettings, free_port

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


class Exchange:
    """The exchange's HTTP API as one person calls it, through the hub's proxy."""

    def __init__(self, hub: Hub, token: str | None) -> None:
        self.base = f"{hub.settings.url}/services/exchange/api"
        self.headers = {"Authorization": f"token {token}"} if token else {}

    def call(self, method: str, path: str, **kwargs: object) -> requests.Response:
        return requests.request(
            method,
            f"{self.base}/{path.lstrip('/')}",
            headers=self.headers,
            timeout=60,
            **kwargs,  # type: ignore[arg-type]
        )


class CheckApi:
    """The check service's HTTP API as one person calls it (their hub token), through the proxy."""

    def __init__(self, hub: Hub, token: str | None) -> None:
        self.base = f"{hub.settings.url}/services/check/api"
        self.headers = {"Authorization": f"token {token}"} if token else {}

    def call(self, method: str, path: str, **kwargs: object) -> requests.Response:
        return requests.request(
            method,
            f"{self.base}/{path.lstrip('/')}",
            headers=self.headers,
            timeout=60,
            allow_redirects=False,
            **kwargs,  # type: ignore[arg-type]
        )

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


def need_chromium() -> None:
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install -y chromium (make setup does)")

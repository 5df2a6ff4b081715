"""`introdl hub` (make hub): a real JupyterHub on loopback for the demo course, as root.

`prepare.py` sets the machine up; this module starts the hub (PAM authenticator,
LocalProcessSpawner, configurable-http-proxy, the exchange service), releases the labs through the
exchange with the instructor's own hub token, prints the URL and the accounts, and on Ctrl-C (or
SIGTERM) stops the hub, its proxy and every server.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

from introdl.hub.accounts import Account
from introdl.hub.prepare import (
    HERE,
    RUNUSER,
    HubError,
    HubSettings,
    course_dir,
    prepare,
)

__all__ = ["Hub", "HubError", "HubSettings", "running_hub", "serve"]


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
        scopes = ["access:services!service=exchange", "access:services!service=check"]
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
        f"            check my work before the deadline: {settings.url}/services/check/",
        f"  staff:    checks of the class at {settings.url}/services/check/staff",
        f"            formgrader at {settings.url}/user/{settings.instructor}/formgrader ;"
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

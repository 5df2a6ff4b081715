"""What a student can reach on the hub's machine, checked as that student's own Unix user.

Every read is tried by st-ada (a real account, no privileges) with `runuser`, the way a shell in
her own JupyterLab server would try it.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import psutil
import pytest
import requests

from introdl.hub.local import Hub
from introdl.hub.prepare import RUNUSER


def as_ada(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [RUNUSER, "-u", "st-ada", "--", *args], capture_output=True, text=True, check=False
    )


def cannot_read(path: Path) -> bool:
    """True when st-ada can neither list nor read `path` (and so nothing under it)."""
    if path.is_dir():
        return as_ada("ls", str(path)).returncode != 0
    return as_ada("cat", str(path)).returncode != 0


def server_of(hub: Hub, user: str) -> psutil.Process:
    """The user's own server (started through the hub unless it runs already); its process."""
    if not hub.admin("GET", f"users/{user}").json()["servers"]:
        hub.admin("POST", f"users/{user}/server")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready = hub.admin("GET", f"users/{user}").json()["servers"].get("", {}).get("ready")
        if ready:
            break
        time.sleep(0.5)
    else:
        pytest.fail(f"{user}'s server did not start in 120 s")
    for proc in psutil.process_iter(["username", "cmdline"]):
        if proc.info["username"] == user and "jupyterhub.singleuser" in " ".join(
            proc.info["cmdline"] or []
        ):
            return proc
    pytest.fail(f"no server process of {user}")


def test_homes_and_the_course_are_private(hub: Hub) -> None:
    """Are homes 0700, and is the instructor's course out of a student's reach?"""
    course = Path("~st-teacher").expanduser() / "course"
    for user in ("st-ada", "st-ben", "st-cy", "st-teacher"):
        assert Path(f"~{user}").expanduser().stat().st_mode & 0o777 == 0o700, user
    assert cannot_read(Path("~st-ben").expanduser())
    for secret in (
        course,
        course / "source" / "lab1_tensorflow" / "lab1_tensorflow.ipynb",
        course / "grader_tests",
        course / "grader_tests" / "lab1_tensorflow" / "test_lab1_tensorflow.py",
        course / "gradebook.db",
    ):
        assert cannot_read(secret), f"st-ada can read {secret}"
    # The same commands do work for the files' owners: the check can fail.
    assert as_ada("ls", str(Path("~st-ada").expanduser())).returncode == 0


def test_submissions_and_hub_secrets_are_out_of_reach(hub: Hub) -> None:
    """Can a student read the exchange's store, the hub's database, cookie secret or tokens?"""
    state = hub.settings.state
    for secret in (
        hub.settings.exchange_dir,
        hub.settings.exchange_dir / "exchange.sqlite",
        hub.settings.exchange_dir / "submissions",
        hub.settings.hub_dir,
        hub.settings.hub_dir / "jupyterhub.sqlite",
        hub.settings.hub_dir / "jupyterhub_cookie_secret",
        hub.settings.hub_dir / "admin-token",
        hub.settings.hub_dir / "accounts.json",
    ):
        assert cannot_read(secret), f"st-ada can read {secret}"
    # Their server's config folder is public on purpose (no secret in it).
    assert not cannot_read(state / "etc" / "student" / "nbgrader_config.py")


def test_another_students_hub_token_cannot_be_read_from_their_server(hub: Hub) -> None:
    """Can st-ada take st-ben's token from his running server (environment, command line)?"""
    ben = server_of(hub, "st-ben")
    environ = Path(f"/proc/{ben.pid}/environ")
    assert b"JUPYTERHUB_API_TOKEN=" in environ.read_bytes()  # root sees it: the token is there
    assert as_ada("cat", str(environ)).returncode != 0
    cmdline = as_ada("cat", f"/proc/{ben.pid}/cmdline").stdout
    token = next(
        line.split(b"=", 1)[1]
        for line in environ.read_bytes().split(b"\0")
        if line.startswith(b"JUPYTERHUB_API_TOKEN=")
    )
    assert token.decode() not in cmdline
    assert as_ada("ls", f"/proc/{ben.pid}/fd").returncode != 0
    hub.admin("DELETE", "users/st-ben/server")


def test_a_students_server_has_no_instructor_extensions(hub: Hub) -> None:
    """Does st-ada's own server serve the formgrader or the course list? (It must not.)"""
    token = hub.token_for("st-ada", "test: extensions", server=True)
    server_of(hub, "st-ada")
    base = f"{hub.settings.url}/user/st-ada"
    headers = {"Authorization": f"token {token}"}
    assert requests.get(f"{base}/api/status", headers=headers, timeout=30).status_code == 200
    for path in ("formgrader", "formgrader/api/assignments", "formgraders"):
        answer = requests.get(f"{base}/{path}", headers=headers, timeout=30)
        assert answer.status_code == 404, (path, answer.status_code)
    assert requests.get(f"{base}/assignments", headers=headers, timeout=30).status_code != 404
    # JupyterLab's own page config: the instructor panels are switched off for students.
    page = requests.get(f"{base}/lab", headers=headers, timeout=30).text
    config = json.loads(
        page.split('id="jupyter-config-data" type="application/json">')[1].split("</script>")[0]
    )
    disabled = config["disabledExtensions"]
    for extension in (
        "@jupyter/nbgrader:formgrader",
        "@jupyter/nbgrader:create-assignment",
        "@jupyter/nbgrader:course-list",
    ):
        assert extension in disabled, (extension, disabled)
    assert "@jupyter/nbgrader:assignment-list" not in disabled
    hub.admin("DELETE", "users/st-ada/server")

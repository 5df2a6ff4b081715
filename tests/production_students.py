"""What a student does on the production hub, through its APIs (for many students at once).

Each call uses the student's own hub token (made on the hub's token page, tests/production.py)
and acts where a student acts: their own server (started through the hub), nbgrader inside their
own container (`podman exec`, as jovyan, with the container's own server token), and the check
service through the proxy.
"""

from __future__ import annotations

import json
import time
from typing import Any

import requests

from tests.podman import podman
from tests.production import Production, container

LAB = "lab1_tensorflow"
ANSWER = (
    "def func(a, b):\n"
    '    """Returns e, where c = a + b, d = b - 1 and e = c * d."""\n'
    "    c = tf.add(a, b)\n"
    "    d = tf.subtract(b, 1)\n"
    "    e = tf.multiply(c, d)\n"
    "    return e\n"
)
# Run inside the student's container: fill in `func` of the fetched notebook and save it.
FILL = f"""
import json, pathlib
path = pathlib.Path('/home/jovyan/{LAB}/{LAB}.ipynb')
nb = json.loads(path.read_text())
for cell in nb['cells']:
    if 'def func(a, b):' in ''.join(cell['source']):
        cell['source'] = {ANSWER!r}
path.write_text(json.dumps(nb))
print('filled')
"""


def call(hub: Production, token: str, method: str, path: str, **kwargs: Any) -> requests.Response:
    """One request to the hub or a service through the proxy, with TOKEN."""
    return requests.request(
        method,
        f"{hub.url}{path}",
        headers={"Authorization": f"token {token}"},
        verify=str(hub.ca),
        timeout=60,
        allow_redirects=False,
        **kwargs,
    )


def start_server(hub: Production, user: str, token: str, *, budget: float = 240.0) -> float:
    """Start USER's server with their own token; seconds until the hub says it is ready."""
    started = time.monotonic()
    answer = call(hub, token, "POST", f"/hub/api/users/{user}/server")
    assert answer.status_code in (201, 202, 400), answer.text[:300]  # 400: already running
    while time.monotonic() < started + budget:
        model = call(hub, token, "GET", f"/hub/api/users/{user}").json()
        server = model.get("servers", {}).get("")
        if server and server.get("ready"):
            return time.monotonic() - started
        if server is None and model.get("pending") is None and time.monotonic() > started + 5:
            raise AssertionError(f"{user}'s server failed to start:\n{hub.tail()}")
        time.sleep(1)
    raise AssertionError(f"{user}'s server was not ready in {budget:.0f} s:\n{hub.tail()}")


def server_running(hub: Production, user: str, token: str) -> bool:
    model = call(hub, token, "GET", f"/hub/api/users/{user}").json()
    return bool(model.get("servers", {}).get(""))


def in_container(hub: Production, user: str, *command: str, timeout: float = 300) -> str:
    """COMMAND in USER's running container, as jovyan; its output (fails the test on an error)."""
    done = podman(hub.podman_env, "exec", container(user), *command, timeout=timeout)
    assert done.returncode == 0, f"{command} in {user}'s container: {done.stdout}{done.stderr}"
    return done.stdout + done.stderr


def fetch_and_fill(hub: Production, user: str) -> None:
    """nbgrader fetch in the student's container (through the exchange over TLS), one TODO done."""
    in_container(hub, user, "nbgrader", "fetch_assignment", LAB)
    assert "filled" in in_container(hub, user, "python", "-c", FILL)


def submit(hub: Production, user: str) -> str:
    return in_container(hub, user, "nbgrader", "submit", LAB)


def ask_check(hub: Production, token: str) -> requests.Response:
    return call(hub, token, "POST", f"/services/check/api/labs/{LAB}/checks")


def verdict(hub: Production, token: str, check_id: int, *, budget: float = 900.0) -> dict[str, Any]:
    """Poll one's own check until it is done (the service may be restarting: 502/503)."""
    deadline = time.monotonic() + budget
    while time.monotonic() < deadline:
        try:
            answer = call(hub, token, "GET", f"/services/check/api/checks/{check_id}")
        except requests.RequestException:
            answer = None
        if answer is not None and answer.status_code == 200:
            row = dict(answer.json())
            if row["state"] == "done":
                return row
        time.sleep(2)
    raise AssertionError(f"check {check_id} had no verdict in {budget:.0f} s:\n{hub.tail()}")


def score(row: dict[str, Any]) -> float | None:
    """The verdict's score (None when the check gave no score: an error, a timeout)."""
    verdict = row.get("verdict") or {}
    value = verdict.get("score")
    return None if value is None else float(value)


def summary(row: dict[str, Any]) -> str:
    return json.dumps(row)[:2000]

"""A real JupyterHub 6.1.1 starts a student server from the course image through DockerSpawner.

The hub, podman's Docker API, the image and the proxy are set up as tests/dockerhub.py says
(everything on loopback; the container on the host network, TEST ONLY). Also TEST ONLY:
DummyAuthenticator (the hub is never reachable from outside; docker/hub/jupyterhub_config.py
refuses it).
"""

from __future__ import annotations

import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.course_image import IMAGE
from tests.dockerhub import (
    containers,
    free_port,
    hub_config,
    remove_containers,
    request,
    server_ready,
    spawner_config,
    stop,
)
from tests.dockerhub import wait_for as wait

pytestmark = pytest.mark.docker

USER = "student1"
NAME = f"introdl-smoke-{USER}"
BUDGET = 180  # seconds for the whole scenario: hub up, server spawned, status answered


def wait_for(what: str, check: Any, deadline: float, logs: list[Path]) -> Any:
    return wait(what, check, deadline, logs, BUDGET)


HUB_CONFIG = """
# TEST ONLY: anyone may log in as anyone. The hub listens on loopback, for this test alone.
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allowed_users = {{{user!r}}}
c.JupyterHub.services = [{{"name": "smoke-test", "api_token": {token!r}}}]
c.JupyterHub.load_roles = [
    {{
        "name": "smoke-test",
        "services": ["smoke-test"],
        "scopes": ["admin:users", "admin:servers", "tokens"],
    }}
]
"""


def test_a_student_server_starts_from_the_course_image_and_answers_its_token(
    course_engine: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    """Does DockerSpawner start the course image, and does the server answer its owner's token?"""
    docker_host, podman_env = course_engine
    port, hub_port, proxy_api_port, server_port = (free_port() for _ in range(4))
    token = secrets.token_hex(16)
    (tmp_path / "jupyterhub_config.py").write_text(
        hub_config(port=port, hub_port=hub_port, proxy_api_port=proxy_api_port)
        + HUB_CONFIG.format(user=USER, token=token)
        + spawner_config(
            docker_host=docker_host, image=IMAGE, server_port=server_port, name_template=NAME
        )
    )
    log = tmp_path / "jupyterhub.log"
    deadline = time.monotonic() + BUDGET
    with log.open("w") as out:
        hub = subprocess.Popen(
            [sys.executable, "-m", "jupyterhub", "-f", "jupyterhub_config.py"],
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    api = f"http://127.0.0.1:{port}/hub/api"
    started = time.monotonic()
    try:
        wait_for("the hub did not answer", lambda: request(api, token)[0] == 200, deadline, [log])
        hub_up = time.monotonic() - started
        assert request(f"{api}/users/{USER}", token, "POST")[0] in (201, 409)
        spawn_started = time.monotonic()
        status, body = request(f"{api}/users/{USER}/server", token, "POST")
        assert status in (201, 202), f"{body}\n{log.read_text()[-4000:]}"

        wait_for(
            "the student server was not ready",
            lambda: server_ready(api, USER, token, log),
            deadline,
            [log],
        )
        spawn_took = time.monotonic() - spawn_started
        status, body = request(
            f"{api}/users/{USER}/tokens",
            token,
            "POST",
            {"note": "smoke test", "expires_in": 600, "scopes": [f"access:servers!user={USER}"]},
        )
        assert status == 201, body
        user_token = body["token"]
        status, answer = request(f"http://127.0.0.1:{port}/user/{USER}/api/status", user_token)
        assert status == 200, answer
        assert {"started", "kernels", "connections"} <= set(answer)
        # Someone else's token does not open the student's server.
        status, _ = request(f"http://127.0.0.1:{port}/user/{USER}/api/status", token)
        assert status == 403
        # The image's student config is in force: no formgrader in a student's server.
        status, _ = request(f"http://127.0.0.1:{port}/user/{USER}/formgrader", user_token)
        assert status == 404
        # ... while the student's own extensions answer (any status but "not found").
        status, _ = request(f"http://127.0.0.1:{port}/user/{USER}/assignments", user_token)
        assert status != 404  # 400 here: nbgrader's handler wants an XSRF token
        print(f"hub up in {hub_up:.1f} s; server ready {spawn_took:.1f} s after the spawn request")
        assert request(f"{api}/users/{USER}/server", token, "DELETE")[0] in (202, 204)
        wait_for(
            "the student's container was not removed",
            lambda: not containers(podman_env, NAME),
            deadline,
            [log],
        )
    finally:
        stop(hub)
        remove_containers(podman_env, NAME)

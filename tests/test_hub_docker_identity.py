"""A student's container hands in work under the hub's name for its token, and under no other.

Every container of the course image runs as jovyan (uid 1000), so nbgrader's own filesystem
exchange cannot tell one student from another: `JUPYTERHUB_USER=OTHER nbgrader submit` or
`--student OTHER` inside a container files the work under OTHER (FACTS.md). Here a real
JupyterHub 6.1.1 starts a student's server from the course image with DockerSpawner on podman's
Docker API (tests/dockerhub.py: loopback, the container on the host network), runs the course's
exchange service as a managed hub service with the roles of the local hub's config
(introdl/hub/jupyterhub_config.py), and nbgrader is run INSIDE the student's container as jovyan,
with the environment the hub gave that server (its token, `INTRODL_EXCHANGE_URL`).

TEST ONLY: DummyAuthenticator, on a hub that listens on loopback for this test alone. That is
acceptable for what is tested: the exchange takes identity from whatever the hub says a token
belongs to, so how the hub learned who logged in (PAM, OAuth, LTI or dummy) does not enter.
"""

from __future__ import annotations

import os
import secrets
import shutil
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

ROOT = Path(__file__).resolve().parents[1]
LAB = "lab1_tensorflow"
ADA, BEN, PROF = "ada", "ben", "prof"  # two students and one member of staff
NAME = "introdl-identity-{username}"
BUDGET = 240  # seconds for the whole scenario: hub up, release, spawn, four nbgrader runs, stop

IDENTITY_CONFIG = """
import sys

# TEST ONLY: anyone may log in as anyone. The hub listens on loopback, for this test alone.
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allowed_users = {{{ada!r}, {ben!r}, {prof!r}}}
c.JupyterHub.load_groups = {{
    "formgrade-introdl": {{"users": [{prof!r}]}},
    "nbgrader-introdl": {{"users": [{ada!r}, {ben!r}]}},
}}
c.JupyterHub.services = [
    {{
        "name": "exchange",
        "url": "http://127.0.0.1:{exchange_port}",
        "command": [
            sys.executable,
            "-m",
            "introdl.hub.exchange_service",
            "--root",
            {exchange_root!r},
            "--course",
            "introdl",
            "--staff-group",
            "formgrade-introdl",
        ],
        "display": False,
    }},
    {{"name": "identity-test", "api_token": {token!r}}},
]
# The roles of the local and the production hub (introdl/hub/roles.py).
from introdl.hub.roles import exchange_roles

c.JupyterHub.load_roles = [
    *exchange_roles("introdl"),
    {{
        "name": "identity-test",
        "services": ["identity-test"],
        "scopes": ["admin:users", "admin:servers", "tokens", "access:services!service=exchange"],
    }},
]
# The student's container reaches the exchange through the proxy (host network, TEST ONLY).
c.Spawner.environment = {{"INTRODL_EXCHANGE_URL": {exchange_url!r}}}
"""


def release_from_the_host(course: Path, staff_token: str, exchange_url: str) -> None:
    """Staff release the lab with nbgrader and their own hub token, from a copy of the course."""
    course.mkdir()
    shutil.copytree(ROOT / "release" / LAB, course / "release" / LAB)
    config = (ROOT / "nbgrader_config.py").read_text()
    (course / "nbgrader_config.py").write_text(
        config + "\nfrom introdl.hub.exchange_client import configure\n\nconfigure(c)\n"
    )
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("JUPYTER")},
        "JUPYTERHUB_API_TOKEN": staff_token,
        "INTRODL_EXCHANGE_URL": exchange_url,
        "JUPYTER_CONFIG_DIR": str(course / ".jupyter"),  # nothing of the host's own config
    }
    done = subprocess.run(
        [sys.executable, "-m", "nbgrader", "release_assignment", LAB],
        cwd=course,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def in_container(
    podman_env: dict[str, str], container: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a command in the student's container as jovyan, in the home, with the server's env."""
    extra = [f"--env={key}={value}" for key, value in (env or {}).items()]
    return subprocess.run(
        ["podman", "exec", "--user=jovyan", "--workdir=/home/jovyan", *extra, container, *args],
        env={**os.environ, **podman_env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_students_container_submits_as_that_student_and_cannot_forge_another(
    course_engine: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    """Does work handed in from ada's container land under ada, and can ada's container forge ben?"""
    docker_host, podman_env = course_engine
    port, hub_port, proxy_api_port, server_port, exchange_port = (free_port() for _ in range(5))
    token = secrets.token_hex(16)
    exchange_url = f"http://127.0.0.1:{port}/services/exchange/"
    (tmp_path / "jupyterhub_config.py").write_text(
        hub_config(port=port, hub_port=hub_port, proxy_api_port=proxy_api_port)
        + IDENTITY_CONFIG.format(
            ada=ADA,
            ben=BEN,
            prof=PROF,
            exchange_port=exchange_port,
            exchange_root=str(tmp_path / "exchange"),
            token=token,
            exchange_url=exchange_url,
        )
        + spawner_config(
            docker_host=docker_host, image=IMAGE, server_port=server_port, name_template=NAME
        )
    )
    container = NAME.format(username=ADA)
    log = tmp_path / "jupyterhub.log"
    deadline = time.monotonic() + BUDGET
    started = time.monotonic()

    def wait_for(what: str, check: Any) -> Any:
        return wait(what, check, deadline, [log], BUDGET)

    with log.open("w") as out:
        hub = subprocess.Popen(
            [sys.executable, "-m", "jupyterhub", "-f", "jupyterhub_config.py"],
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    api = f"http://127.0.0.1:{port}/hub/api"
    try:
        wait_for("the hub did not answer", lambda: request(api, token)[0] == 200)
        wait_for(
            "the exchange service did not answer through the proxy",
            lambda: request(f"{exchange_url}api/", token)[0] == 200,
        )
        status, body = request(
            f"{api}/users/{PROF}/tokens",
            token,
            "POST",
            {
                "note": "release and collect",
                "expires_in": 600,
                "scopes": ["access:services!service=exchange"],
            },
        )
        assert status == 201, body
        staff_token = body["token"]

        def hand_ins() -> list[dict[str, Any]]:
            status, rows = request(f"{exchange_url}api/collect/{LAB}", staff_token)
            assert status == 200, rows
            return list(rows)

        release_from_the_host(tmp_path / "course", staff_token, exchange_url)
        released = time.monotonic()

        status, body = request(f"{api}/users/{ADA}/server", token, "POST")
        assert status in (201, 202), f"{body}\n{log.read_text()[-4000:]}"

        wait_for("ada's server was not ready", lambda: server_ready(api, ADA, token, log))
        spawned = time.monotonic()

        # The container's user is uid 1000, whoever the student: only the hub token tells them apart.
        assert in_container(podman_env, container, "id", "-u").stdout.strip() == "1000"
        probe = in_container(podman_env, container, "python", "-c", "import introdl.hub")
        assert probe.returncode == 0, (
            f"{IMAGE} has no introdl.hub (built before the exchange client existed): "
            f"rebuild it with scripts/course-image --force-image\n{probe.stderr}"
        )

        fetch = in_container(podman_env, container, "nbgrader", "fetch_assignment", LAB)
        assert fetch.returncode == 0, fetch.stdout + fetch.stderr
        assert (
            in_container(podman_env, container, "test", "-f", f"{LAB}/{LAB}.ipynb").returncode == 0
        )
        submit = in_container(podman_env, container, "nbgrader", "submit", LAB)
        said = submit.stdout + submit.stderr
        assert submit.returncode == 0, said
        assert f"by the hub's name for your login: {ADA}" in said
        rows = hand_ins()
        assert [row["student"] for row in rows] == [ADA], rows
        assert f"{LAB}.ipynb" in rows[0]["files"]

        # The two forgeries nbgrader's own exchange accepts inside a container (FACTS.md).
        forgeries = {
            "JUPYTERHUB_USER": in_container(
                podman_env, container, "nbgrader", "submit", LAB, env={"JUPYTERHUB_USER": BEN}
            ),
            "--student": in_container(
                podman_env, container, "nbgrader", "submit", LAB, "--student", BEN
            ),
        }
        for how, done in forgeries.items():
            said = done.stdout + done.stderr
            assert done.returncode != 0, f"{how}: {said}"
            assert f"{ADA} cannot submit as {BEN}" in said, f"{how}: {said}"
        assert hand_ins() == rows, "a forged hand-in was filed"
        status, refusals = request(f"{exchange_url}api/refusals", staff_token)
        assert status == 200, refusals
        forged = [r for r in refusals if r["hub_user"] == ADA and r["claimed"] == BEN]
        assert len(forged) == 2, refusals
        checked = time.monotonic()

        assert request(f"{api}/users/{ADA}/server", token, "DELETE")[0] in (202, 204)
        wait_for("ada's container was not removed", lambda: not containers(podman_env, container))
        print(
            f"hub and exchange up, lab released: {released - started:.1f} s; "
            f"server ready: {spawned - released:.1f} s; fetch, submit, two forgeries: "
            f"{checked - spawned:.1f} s; in all {time.monotonic() - started:.1f} s"
        )
    finally:
        stop(hub)
        remove_containers(podman_env, container)

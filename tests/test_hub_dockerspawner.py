"""A real JupyterHub 6.1.1 starts a student server from the course image through DockerSpawner.

The engine is podman's Docker-compatible API (``podman system service`` on a unix socket, set up
as in tests/podman.py, without the test image's bind mounts); the image is the one
scripts/course-image builds (localhost/introdl/course:cpu); the proxy is configurable-http-proxy
5.3.0 from npm (installed under build/chp on first use). Everything listens on loopback.

TEST-ONLY choices, each said where it is made: DummyAuthenticator (the hub is never reachable
from outside; docker/hub/jupyterhub_config.py refuses it), and the container on the HOST network,
so that it reaches the hub API on 127.0.0.1 and the proxy reaches it on 127.0.0.1 (production
uses a bridge network and the hub on its gateway, docker/hub/jupyterhub_config.py).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.course_image import IMAGE, podman_service, unbuildable_reason

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[1]
CHP = ROOT / "build" / "chp" / "node_modules" / ".bin" / "configurable-http-proxy"
USER = "student1"
BUDGET = 180  # seconds for the whole scenario: hub up, server spawned, status answered


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def configurable_http_proxy() -> Path:
    if not CHP.exists():
        if shutil.which("npm") is None:
            pytest.skip("npm is not installed (apt-get install -y npm): no configurable-http-proxy")
        subprocess.run(
            ["npm", "install", "--prefix", str(CHP.parents[2]), "configurable-http-proxy@5.3.0"],
            check=True,
            capture_output=True,
            timeout=300,
        )
    return CHP


def request(url: str, token: str, method: str = "GET", body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Authorization", f"token {token}")
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            text = response.read().decode()
            return response.status, json.loads(text) if text else None
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()[:2000]


def wait_for(what: str, check: Any, deadline: float, logs: list[Path]) -> Any:
    while time.monotonic() < deadline:
        try:
            result = check()
        except (OSError, urllib.error.URLError):
            result = None
        if result:
            return result
        time.sleep(0.5)
    tails = "\n".join(f"--- {log.name}\n{log.read_text()[-3000:]}" for log in logs if log.exists())
    pytest.fail(f"{what} within the test's {BUDGET} s budget\n{tails}")


def containers(podman_env: dict[str, str]) -> list[str]:
    """The smoke test's containers that still exist (running or not)."""
    listed = subprocess.run(
        ["podman", "ps", "-a", "-q", "--filter", f"name=introdl-smoke-{USER}"],
        env={**os.environ, **podman_env},
        capture_output=True,
        text=True,
        check=True,
    )
    return listed.stdout.split()


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    """podman's Docker API on a socket, with the course image built; (DOCKER_HOST, podman env)."""
    reason = unbuildable_reason()
    if reason is not None:
        pytest.skip(f"cannot build the course image: {reason}")
    with podman_service(tmp_path_factory.mktemp("podman-hub")) as (address, env):
        yield address, env


HUB_CONFIG = """
from dockerspawner import DockerSpawner

c = get_config()
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = {port}
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {hub_port}
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{proxy_api_port}"
c.ConfigurableHTTPProxy.command = [{chp!r}]
c.JupyterHub.cleanup_servers = True
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


class HostNetworkSpawner(DockerSpawner):
    # TEST ONLY: the container shares the host's network, so it listens on 127.0.0.1:port.
    async def get_ip_and_port(self):
        return "127.0.0.1", self.port


c.JupyterHub.spawner_class = HostNetworkSpawner
c.DockerSpawner.client_kwargs = {{"base_url": {docker_host!r}}}
c.DockerSpawner.image = {image!r}
c.DockerSpawner.pull_policy = "never"
c.DockerSpawner.network_name = "host"
c.DockerSpawner.use_internal_ip = True  # no port bindings (docker-py refuses them on "host")
c.DockerSpawner.port = {server_port}
c.DockerSpawner.remove = True
c.DockerSpawner.name_template = "introdl-smoke-{{username}}"
c.Spawner.ip = "127.0.0.1"
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 60
"""


def test_a_student_server_starts_from_the_course_image_and_answers_its_token(
    engine: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    """Does DockerSpawner start the course image, and does the server answer its owner's token?"""
    docker_host, podman_env = engine
    port, hub_port, proxy_api_port, server_port = (free_port() for _ in range(4))
    token = secrets.token_hex(16)
    (tmp_path / "jupyterhub_config.py").write_text(
        HUB_CONFIG.format(
            port=port,
            hub_port=hub_port,
            proxy_api_port=proxy_api_port,
            server_port=server_port,
            chp=str(configurable_http_proxy()),
            user=USER,
            token=token,
            docker_host=docker_host,
            image=IMAGE,
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

        def ready() -> bool:
            status, model = request(f"{api}/users/{USER}", token)
            assert status == 200, model
            server = model["servers"].get("")
            if server is None and model.get("pending") is None:
                pytest.fail(f"the spawn failed:\n{log.read_text()[-4000:]}")
            return bool(server and server["ready"])

        wait_for("the student server was not ready", ready, deadline, [log])
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
            lambda: not containers(podman_env),
            deadline,
            [log],
        )
    finally:
        stop(hub)
        leftover = containers(podman_env)
        if leftover:
            subprocess.run(
                ["podman", "rm", "-f", *leftover],
                env={**os.environ, **podman_env},
                capture_output=True,
            )

"""A real JupyterHub 6.1.1 with DockerSpawner on podman's Docker API, for the docker-marked hub tests.

The engine is podman's Docker-compatible API (``podman system service`` on a unix socket, set up
as in tests/podman.py, without the test image's bind mounts); the image is the one
scripts/course-image builds (localhost/introdl/course:cpu); the proxy is configurable-http-proxy
5.3.0 from npm (installed under build/chp on first use). Everything listens on loopback.

TEST-ONLY choice, said where it is made (`spawner_config`): the container shares the HOST network,
so that it reaches the hub API (and the proxy) on 127.0.0.1 and the proxy reaches it on 127.0.0.1
(production uses a bridge network and the hub on its gateway, docker/hub/jupyterhub_config.py).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHP = ROOT / "build" / "chp" / "node_modules" / ".bin" / "configurable-http-proxy"


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
    """(status, JSON answer or the error's text) of one call with a hub token."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Authorization", f"token {token}")
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            text = response.read().decode()
            return response.status, json.loads(text) if text else None
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()[:2000]


def wait_for(
    what: str, check: Callable[[], Any], deadline: float, logs: list[Path], budget: float
) -> Any:
    """`check()`'s first true answer before `deadline`; otherwise fail with `what` and the logs."""
    while time.monotonic() < deadline:
        try:
            result = check()
        except (OSError, urllib.error.URLError):
            result = None
        if result:
            return result
        time.sleep(0.5)
    tails = "\n".join(f"--- {log.name}\n{log.read_text()[-3000:]}" for log in logs if log.exists())
    pytest.fail(f"{what} within the test's {budget:.0f} s budget\n{tails}")


def server_ready(api: str, user: str, token: str, log: Path) -> bool:
    """Is the user's default server ready? Fails the test at once when its spawn failed."""
    status, model = request(f"{api}/users/{user}", token)
    assert status == 200, model
    server = model["servers"].get("")
    if server is None and model.get("pending") is None:
        pytest.fail(f"the spawn failed:\n{log.read_text()[-4000:]}")
    return bool(server and server["ready"])


def containers(podman_env: dict[str, str], name: str) -> list[str]:
    """The containers whose name contains `name` that still exist (running or not)."""
    listed = subprocess.run(
        ["podman", "ps", "-a", "-q", "--filter", f"name={name}"],
        env={**os.environ, **podman_env},
        capture_output=True,
        text=True,
        check=True,
    )
    return listed.stdout.split()


def remove_containers(podman_env: dict[str, str], name: str) -> None:
    leftover = containers(podman_env, name)
    if leftover:
        subprocess.run(
            ["podman", "rm", "-f", *leftover],
            env={**os.environ, **podman_env},
            capture_output=True,
        )


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def spawner_config(*, docker_host: str, image: str, server_port: int, name_template: str) -> str:
    """The hub config's DockerSpawner part: the course image on podman, on the host network."""
    return f"""
from dockerspawner import DockerSpawner


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
c.DockerSpawner.name_template = {name_template!r}
c.Spawner.ip = "127.0.0.1"
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 60
"""


def hub_config(*, port: int, hub_port: int, proxy_api_port: int) -> str:
    """The hub config's first part: hub, proxy and API on loopback (`c` is defined here)."""
    return f"""
c = get_config()
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = {port}
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {hub_port}
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{proxy_api_port}"
c.ConfigurableHTTPProxy.command = [{str(configurable_http_proxy())!r}]
c.JupyterHub.cleanup_servers = True
"""

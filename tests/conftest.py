"""Shared fixtures for the project's own tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from introdl.grading.course import labs_with_source

ROOT = Path(__file__).resolve().parents[1]
LABS = labs_with_source(ROOT)


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def hub():  # type: ignore[no-untyped-def]
    """A real JupyterHub on loopback with the course released (root only; see tests/hub.py)."""
    from tests import hub as hubs

    reason = hubs.skip_reason()
    if reason:
        pytest.skip(reason)
    from introdl.hub.local import running_hub

    hubs.reset_homes()
    # Not under pytest's tmp folder (0700): the exchange's user and the students must reach theirs.
    state = Path(tempfile.mkdtemp(prefix="introdl-hub-test-", dir="/tmp"))
    try:
        with running_hub(hubs.settings(ROOT, state)) as running:
            yield running
    finally:
        shutil.rmtree(state, ignore_errors=True)


@pytest.fixture(scope="session")
def course_engine(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """podman's Docker API on a socket, with the course image built: (DOCKER_HOST, podman env).

    For the docker-marked hub tests (tests/dockerhub.py); skips, saying why, without podman.
    """
    from tests.course_image import podman_service, unbuildable_reason

    reason = unbuildable_reason()
    if reason is not None:
        pytest.skip(f"cannot build the course image: {reason}")
    with podman_service(tmp_path_factory.mktemp("podman-hub")) as (address, env):
        yield address, env


@pytest.fixture(scope="session")
def podman_socket(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A running ``podman system service`` with the test image (tests/podman.py), for the
    docker backend's tests; its DOCKER_HOST address. Skips, saying why, without podman."""
    from tests.podman import image_exists, image_name, unusable_reason, write_config

    reason = unusable_reason()
    if reason is not None:
        pytest.skip(reason)
    home = tmp_path_factory.mktemp("podman")
    env = write_config(home / "conf")
    if not image_exists(env):
        pytest.skip(
            f"the test image {image_name()} is not built: run scripts/podman-test-image once "
            "(a few minutes)"
        )
    socket = home / "podman.sock"
    log = (home / "service.log").open("w")
    service = subprocess.Popen(
        ["podman", "system", "service", "--time=0", f"unix://{socket}"],
        env={**os.environ, **env},
        cwd=home,  # conmon may drop files (an ``oom`` marker) in its working directory
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    address = f"unix://{socket}"
    try:
        client = wait_for_engine(address, service, home / "service.log")
        yield address
        # every kernel removes its container; anything left is a leak (and must not stay running)
        leaked = client.containers.list(all=True, filters={"label": "introdl.sandbox"})
        for container in leaked:
            container.remove(force=True)
        client.close()
        assert leaked == [], f"containers left behind: {[c.name for c in leaked]}"
    finally:
        service.terminate()
        try:
            service.wait(timeout=15)
        except subprocess.TimeoutExpired:
            service.kill()
            service.wait()
        log.close()


def wait_for_engine(address: str, service: subprocess.Popen[bytes], log: Path) -> Any:
    import docker

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if service.poll() is not None:
            pytest.fail(f"podman system service exited: {log.read_text()[-2000:]}")
        try:
            client = docker.DockerClient(base_url=address, timeout=10)
            client.ping()
            return client
        except Exception:
            time.sleep(0.2)
    pytest.fail(f"podman system service did not answer on {address}: {log.read_text()[-2000:]}")


@pytest.fixture
def engine(podman_socket: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A Docker SDK client of the session's engine; DOCKER_HOST points the grader at it too."""
    import docker

    monkeypatch.setenv("DOCKER_HOST", podman_socket)
    client = docker.DockerClient(base_url=podman_socket, timeout=10)
    yield client
    client.close()

"""Shared fixtures for the project's own tests."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

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

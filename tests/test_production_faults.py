"""Faults in production (make test-docker): what a student or the host does wrong, and what stays.

The production hub as tests/production.py starts it, on podman, with small student servers (1G):
- a memory hog in a student's own server is stopped by the container's limit; the others and the
  hub go on answering;
- a student's container killed while their check runs: the check still lands (the notebook was
  read when it was asked for), and a student whose server is not running is told to start it;
- the hub restarted mid-session: running servers, their work, and a check in the queue all stay;
- the idle culler stops an idle server, and the work is in the home volume at the next start.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests import production
from tests import production_students as students
from tests.hub import skip_reason
from tests.podman import podman

pytestmark = pytest.mark.docker

IDLE_TIMEOUT = 30  # seconds, for the culler's test (the culler looks every 15 s)


@pytest.fixture(scope="module")
def hub(course_engine: tuple[str, dict[str, str]]) -> Iterator[production.Production]:
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    with production.on_podman(
        course_engine, INTRODL_MEM_LIMIT="1G", INTRODL_CPU_LIMIT="1"
    ) as started:
        production.release(started, students.LAB)
        yield started


def alive(hub: production.Production, user: str, token: str) -> int:
    """The status of USER's own server's API through the proxy."""
    return students.call(hub, token, "GET", f"/user/{user}/api/status").status_code


def test_a_memory_hog_is_stopped_by_its_containers_limit(hub: production.Production) -> None:
    ada, ben = hub.token("pr-ada"), hub.token("pr-ben")
    students.start_server(hub, "pr-ada", ada)
    students.start_server(hub, "pr-ben", ben)
    hog = podman(
        hub.podman_env,
        "exec",
        production.container("pr-ada"),
        "python",
        "-c",
        "x = bytearray(3 * 1024**3)\nx[::4096] = b'1' * len(x[::4096])\nprint('survived')",
        timeout=300,
    )
    assert "survived" not in hog.stdout, (hog.returncode, hog.stdout)
    assert hog.returncode == 137, hog.stderr  # SIGKILL from the kernel's OOM killer
    assert alive(hub, "pr-ben", ben) == 200
    assert students.call(hub, ben, "GET", "/hub/api/user").status_code == 200
    # Her server is still hers: the hog alone was killed.
    assert alive(hub, "pr-ada", ada) == 200


def test_a_container_killed_mid_check_still_gets_its_verdict(hub: production.Production) -> None:
    ben = hub.token("pr-ben")
    students.start_server(hub, "pr-ben", ben)
    students.fetch_and_fill(hub, "pr-ben")
    asked = students.ask_check(hub, ben)
    assert asked.status_code == 202, asked.text
    killed = podman(hub.podman_env, "kill", production.container("pr-ben"))
    assert killed.returncode == 0, killed.stderr
    row = students.verdict(hub, ben, asked.json()["id"])
    assert students.score(row) == 1, students.summary(row)

    cy = hub.token("pr-cy")  # never started a server
    refused = students.ask_check(hub, cy)
    assert refused.status_code == 404, refused.text
    assert "your server is not running" in refused.text
    assert "start your server" in refused.text


def test_a_hub_restart_keeps_servers_work_and_queued_checks(hub: production.Production) -> None:
    ada = hub.token("pr-ada")
    students.start_server(hub, "pr-ada", ada)
    students.fetch_and_fill(hub, "pr-ada")
    students.in_container(hub, "pr-ada", "sh", "-c", "echo mine > /home/jovyan/notes.txt")
    asked = students.ask_check(hub, ada)
    assert asked.status_code == 202, asked.text

    production.stop(hub)
    production.start(hub)

    row = students.verdict(hub, ada, asked.json()["id"])
    assert students.score(row) == 1, students.summary(row)
    assert alive(hub, "pr-ada", ada) == 200  # the server ran on through the restart
    assert "mine" in students.in_container(hub, "pr-ada", "cat", "/home/jovyan/notes.txt")


def test_the_idle_culler_stops_an_idle_server_and_the_work_stays(
    hub: production.Production,
) -> None:
    env_file = hub.state / "introdl.env"
    env_file.write_text(env_file.read_text() + f"INTRODL_IDLE_TIMEOUT={IDLE_TIMEOUT}\n")
    production.stop(hub)
    production.start(hub)
    cy = hub.token("pr-cy")
    students.start_server(hub, "pr-cy", cy)
    students.in_container(hub, "pr-cy", "sh", "-c", "echo draft > /home/jovyan/draft.txt")
    started = time.monotonic()
    while students.server_running(hub, "pr-cy", cy):
        assert time.monotonic() - started < 6 * IDLE_TIMEOUT, "the culler did not stop the server"
        time.sleep(3)
    culled_after = time.monotonic() - started
    gone = podman(hub.podman_env, "ps", "-q", "--filter", f"name={production.container('pr-cy')}")
    assert not gone.stdout.strip(), "the culled server's container is still running"
    students.start_server(hub, "pr-cy", cy)
    assert "draft" in students.in_container(hub, "pr-cy", "cat", "/home/jovyan/draft.txt")
    print(f"culled {culled_after:.0f} s after the server was idle (timeout {IDLE_TIMEOUT} s)")

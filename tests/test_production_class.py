"""A class of 10 through the production hub at once (make test-docker).

Ten students, each with their own hub token, start their servers from the course image, fetch
lab1_tensorflow in their containers, ask for a check and submit, all at the same moment (one
thread each). Odd-numbered students fill in `func`, even-numbered ones leave it: every verdict and
every collected submission must carry its own student's score, once. The per-check latency
(request to verdict through the proxy) is printed for BENCHMARKS.md ("Check my work").
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests import production
from tests import production_students as students
from tests.hub import skip_reason

pytestmark = pytest.mark.docker

CLASS = [f"pr-s{i:02d}" for i in range(1, 11)]
LAB = students.LAB


def right(user: str) -> bool:
    return int(user[-2:]) % 2 == 1  # odd-numbered students fill in func


@pytest.fixture(scope="module")
def hub(course_engine: tuple[str, dict[str, str]]) -> Iterator[production.Production]:
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    with production.on_podman(
        course_engine, students=CLASS, INTRODL_MEM_LIMIT="1G", INTRODL_CPU_LIMIT="1"
    ) as started:
        yield started


def at_once(work: Callable[[str], Any]) -> dict[str, Any]:
    with ThreadPoolExecutor(len(CLASS)) as pool:
        return dict(zip(CLASS, pool.map(work, CLASS), strict=True))


def test_ten_students_check_and_submit_at_once(hub: production.Production) -> None:
    teacher = hub.token("pr-teacher")
    production.release(hub, LAB)
    tokens = {user: hub.token(user) for user in CLASS}

    spawned = at_once(lambda user: students.start_server(hub, user, tokens[user]))

    def prepare(user: str) -> None:
        students.in_container(hub, user, "nbgrader", "fetch_assignment", LAB)
        if right(user):
            assert "filled" in students.in_container(hub, user, "python", "-c", students.FILL)

    at_once(prepare)

    def check(user: str) -> tuple[float, dict[str, Any]]:
        asked = time.monotonic()
        answer = students.ask_check(hub, tokens[user])
        assert answer.status_code == 202, (user, answer.text)
        row = students.verdict(hub, tokens[user], answer.json()["id"])
        return time.monotonic() - asked, row

    checked = at_once(check)
    for user, (_, row) in checked.items():
        assert students.score(row) == (1 if right(user) else 0), (user, students.summary(row))
        mine = students.call(hub, tokens[user], "GET", "/services/check/api/checks").json()
        assert [c["id"] for c in mine] == [row["id"]], (user, mine)  # one check, their own

    at_once(lambda user: students.submit(hub, user))
    collected = production.as_grader(hub, teacher, "nbgrader", "collect", LAB, "--update")
    assert collected.returncode == 0, collected.stdout + collected.stderr
    submitted = sorted(p.name for p in (hub.course / "submitted").iterdir())
    assert submitted == CLASS
    for user in CLASS:
        text = (hub.course / "submitted" / user / LAB / f"{LAB}.ipynb").read_text()
        assert ("e = tf.multiply(c, d)" in text) == right(user), user
    listed = students.call(hub, teacher, "GET", f"/services/exchange/api/collect/{LAB}").json()
    assert sorted(row["student"] for row in listed) == CLASS  # once each, under their name

    waits = sorted(wait for wait, _ in checked.values())
    starts = sorted(spawned.values())
    print(
        f"\n10 servers from the image at once: median {statistics.median(starts):.1f} s, "
        f"worst {starts[-1]:.1f} s\n"
        f"10 checks at once, request to verdict: median {statistics.median(waits):.1f} s, "
        f"worst {waits[-1]:.1f} s"
    )

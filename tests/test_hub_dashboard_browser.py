"""The class dashboard in a real browser through the real hub (issue 24, item 3): staff see the
plots and tables, a hostile failure message stays text, a student is refused the page and the
CSV and both refusals are in the staff's log.

Playwright drives Debian's Chromium; screenshots go to build/screenshots/staff/dashboard-*.png.
The class is a few generated results in the hub's course (`autograded/dash-*/dash_lab/`) and
finished checks in the service's queue, removed again at the end (the hub is shared).
"""

from __future__ import annotations

import json
import sqlite3
import time

import pytest

from introdl.hub.local import Hub
from introdl.hub.prepare import course_dir
from tests.dashboard_class import Submission, results_of
from tests.hub import SCREENSHOTS, CheckApi, chromium, log_in

LAB = "dash_lab"
SHOTS = SCREENSHOTS.parent / "staff"
HOSTILE = "<img src=x onerror=alert(1)><script>alert(2)</script> got 0.25"
TESTS = ["test_loss_1", "test_loss_2", "test_shape_1", "test_shape_2"]


def generated(i: int) -> Submission:
    fail = ("failed", HOSTILE if i % 2 else f"expected 0.{i}, got 0.{i + 1}")
    outcomes = {t: ("passed", "") if (i + k) % 3 else fail for k, t in enumerate(TESTS)}
    phases = {"sandbox_start": 0.5 + 0.1 * i, "notebook": 4.0 + i, "hidden_tests": 2.0 + 0.5 * i}
    return Submission(f"dash-s{i}", LAB, outcomes, phases)


@pytest.fixture
def dash_class(hub: Hub):  # type: ignore[no-untyped-def]
    course = course_dir(hub.settings)
    queue = hub.settings.state / "check" / "checks.sqlite"
    subs = [generated(i) for i in range(8)]
    for sub in subs:
        results_of(sub, TESTS, cells=5).write(
            course / "autograded" / sub.student / LAB / "results.json"
        )
    verdict = results_of(subs[1], TESTS, cells=5).to_json()
    now = time.time()
    with sqlite3.connect(queue) as db:
        db.executemany(
            "INSERT INTO checks (student, lab, state, requested_at, started_at, finished_at,"
            " results) VALUES (?, ?, 'done', ?, ?, ?, ?)",
            [
                ("dash-s1", LAB, now - 60 * k, now - 60 * k, now - 60 * k + 9, json.dumps(verdict))
                for k in range(4)
            ],
        )
    yield subs
    with sqlite3.connect(queue) as db:
        db.execute("DELETE FROM checks WHERE lab = ?", (LAB,))
    for sub in subs:
        for path in sorted((course / "autograded" / sub.student).rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()
        (course / "autograded" / sub.student).rmdir()


@pytest.fixture
def browser():  # type: ignore[no-untyped-def]
    with chromium(SHOTS) as launched:
        yield launched


def test_staff_see_the_dashboard_and_a_student_is_refused(browser, hub: Hub, dash_class) -> None:  # type: ignore[no-untyped-def]
    """Plots and tables for staff, the hostile message as text, no dialog; a student: 403 for
    the page and the CSV, both logged."""
    base = f"{hub.settings.url}/services/check/staff/dashboard"
    ben = log_in(browser, hub, "st-ben")
    page = ben.goto(base)
    assert page is not None
    assert page.status == 403
    assert "dash-s1" not in ben.content()
    ben.screenshot(path=str(SHOTS / "dashboard-03-student-refused.png"), full_page=True)
    csv_answer = ben.request.get(f"{base}/failures.csv")
    assert csv_answer.status == 403
    assert "dash_lab" not in csv_answer.text()
    refusals = CheckApi(hub, hub.token_for(hub.settings.instructor)).call("GET", "refusals").json()
    mine = [
        r for r in refusals if "st-ben" in str(r["who"]) and "staff/dashboard" in str(r["action"])
    ]
    assert {str(r["action"]).endswith(".csv") for r in mine} == {True, False}, mine
    assert all("not course staff" in str(r["reason"]) for r in mine)

    teacher = log_in(browser, hub, hub.settings.instructor)
    dialogs: list[str] = []
    teacher.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    started = time.monotonic()
    answer = teacher.goto(base)
    seconds = time.monotonic() - started
    assert answer is not None
    assert answer.status == 200
    tests = teacher.locator(f"#tests-{LAB}").inner_text()
    assert "test_loss_1" in tests
    assert "<img src=x onerror=alert(#)><script>alert(#)</script> got #" in tests  # as text
    assert teacher.locator(f"#tests-{LAB} img, #tests-{LAB} script").count() == 0
    stuck = teacher.locator(f"#stuck-{LAB}").inner_text()
    assert "dash-s1\t4" in stuck
    for plot in ("plot-timings", f"plot-tests-{LAB}", "plot-stuck"):
        width = teacher.locator(f"#{plot}").evaluate("img => img.naturalWidth")
        assert width > 100, plot
    teacher.screenshot(path=str(SHOTS / "dashboard-01-top.png"), full_page=False)
    teacher.locator(f"#lab-{LAB}").scroll_into_view_if_needed()
    teacher.screenshot(path=str(SHOTS / "dashboard-02-lab.png"), full_page=False)
    csv_answer = teacher.request.get(f"{base}/failures.csv")
    assert csv_answer.status == 200
    assert csv_answer.headers["content-type"].startswith("text/csv")
    assert "attachment" in csv_answer.headers["content-disposition"]
    assert f"{LAB},test_" in csv_answer.text()
    assert dialogs == []
    started = time.monotonic()
    teacher.reload()
    again = time.monotonic() - started
    timing = f"first visit (hub login to the service, new data drawn) {seconds:.2f} s; again {again:.2f} s"
    print(f"dashboard page through the hub: {timing}")
    (SHOTS / "dashboard-load-seconds.txt").write_text(timing + "\n")

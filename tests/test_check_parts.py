"""The check service's parts without a hub: the fair queue, limits, restarts, visibility, the
student's notebook read safely, and the course's settings (issue 16)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import nbformat
import pytest

from introdl.checkwork.fair_queue import DAY, Check, CheckQueue, Limits, OverLimit
from introdl.checkwork.grader import status_lines, student_view
from introdl.checkwork.live import Live, live_view
from introdl.checkwork.notebook import NotebookError, due_date, read_student_notebook, released_labs
from introdl.checkwork.settings import ConfigError, course_settings, limits_of
from introdl.checkwork.workers import Workers
from introdl.grading.sandbox import processes_of_uid
from introdl.grading.sandbox.limits import SANDBOX_UID_BASE
from introdl.grading.sandbox.working_copy import PREFIX as WC_PREFIX
from tests.corpus_course import LAB, answer, build_course
from tests.sandboxed import needs_bwrap

ROOT = Path(__file__).resolve().parents[1]
NB = b'{"cells": []}'


def queue(tmp_path: Path, **limits: float) -> CheckQueue:
    return CheckQueue(tmp_path / "checks.sqlite", Limits(**limits))  # type: ignore[arg-type]


def test_one_students_burst_does_not_starve_the_others(tmp_path: Path) -> None:
    """Is the queue served round-robin across students, whatever the order of the requests?"""
    q = queue(tmp_path, checks_per_day=10, cooldown_seconds=0)
    t = 1000.0
    for lab in ("a", "b", "c", "d"):  # ada asks four times first
        q.request("ada", lab, NB, now=t)
        t += 1
    q.request("ben", "a", NB, now=t)
    q.request("cy", "a", NB, now=t + 1)
    served = []
    while (check := q.take(now=t + 10 + len(served))) is not None:
        served.append(check.student)
        q.finish(check.id, {"score": 1.0}, now=t + 10.5 + len(served))
    assert served == ["ada", "ben", "cy", "ada", "ada", "ada"]


def test_a_student_new_to_the_queue_goes_before_one_served_already(tmp_path: Path) -> None:
    q = queue(tmp_path, checks_per_day=10, cooldown_seconds=0)
    first = q.request("ada", "a", NB, now=1.0)
    q.finish(q.take(now=2.0).id, {}, now=3.0)  # type: ignore[union-attr]
    q.request("ada", "b", NB, now=4.0)
    ben = q.request("ben", "a", NB, now=5.0)
    assert [c.student for c in q.order()] == ["ben", "ada"]
    assert q.position(ben.id) == 1
    assert q.position(first.id) is None


def test_over_the_limit_is_refused_with_when_the_next_is_allowed(tmp_path: Path) -> None:
    """Are the daily limit and the cool-down enforced, saying when to come back?"""
    q = queue(tmp_path, checks_per_day=2, cooldown_seconds=60)
    q.request("ada", "lab", NB, now=0.0)
    with pytest.raises(OverLimit) as cool:
        q.request("ada", "lab", NB, now=30.0)
    assert cool.value.next_allowed == 60.0
    assert "apart" in cool.value.reason
    q.request("ada", "lab", NB, now=61.0)
    with pytest.raises(OverLimit) as daily:
        q.request("ada", "lab", NB, now=500.0)
    assert daily.value.next_allowed == DAY
    assert "2 checks" in daily.value.reason
    q.request("ben", "lab", NB, now=500.0)  # others are not affected
    q.request("ada", "other", NB, now=500.0)  # nor are other labs
    q.request("ada", "lab", NB, now=DAY + 1)  # the window slides


def test_staff_grant_raises_one_students_limit(tmp_path: Path) -> None:
    q = queue(tmp_path, checks_per_day=1, cooldown_seconds=0)
    q.request("ada", "lab", NB, now=0.0)
    with pytest.raises(OverLimit):
        q.request("ada", "lab", NB, now=1.0)
    q.grant("ada", "lab", 2, by="teacher")
    q.request("ada", "lab", NB, now=2.0)
    assert q.allowance("ada", "lab") == 3
    assert q.allowance("ben", "lab") == 1


def test_a_restart_loses_no_request_and_no_verdict(tmp_path: Path) -> None:
    """Does a check that was being graded when the service stopped go back to the queue?"""
    q = queue(tmp_path, cooldown_seconds=0)
    done = q.request("ada", "a", NB)
    running = q.request("ben", "a", NB)
    waiting = q.request("cy", "a", NB)
    q.finish(q.take().id, {"score": 2.0})  # type: ignore[union-attr]
    assert q.take().id == running.id  # type: ignore[union-attr]
    q.close()  # the service dies here

    again = queue(tmp_path, cooldown_seconds=0)
    assert again.recover() == 1
    assert again.get(done.id).results == {"score": 2.0}
    assert [c.id for c in again.order()] == [running.id, waiting.id]
    assert again.notebook(running.id) == NB


def visible_results() -> dict[str, object]:
    def test(name: str, visibility: str, status: str) -> dict[str, object]:
        score = 1.0 if status == "passed" else 0.0
        output = f"message of {name}"
        return {"name": name, "grade_id": "g", "score": score, "max_score": 1.0,
                "status": status, "output": output, "visibility": visibility}  # fmt: skip

    return {
        "lab": "lab",
        "score": 3.0,
        "max_score": 5.0,
        "tests": [
            test("test_shown", "visible", "passed"),
            test("test_later_ok", "after_due_date", "passed"),
            test("test_later_bad", "after_due_date", "failed"),
            test("test_secret", "hidden", "passed"),
            test("test_shown_bad", "visible", "failed"),
        ],
        "events": [{"kind": "cell_timeout", "message": "no answer", "cell": 3}],
        "cells": [
            {"index": 3, "status": "timeout", "message": ""},
            {"index": 5, "status": "error", "message": "NameError: name 'x' is not defined"},
        ],
        "errors": [],
    }


def test_before_the_due_date_only_visible_tests_are_named() -> None:
    """Does a verdict before the due date count after_due_date tests and leave hidden ones out?"""
    due = datetime(2030, 1, 1, tzinfo=UTC)
    view = student_view(visible_results(), due=due, now=due - timedelta(days=1))
    assert [t["name"] for t in view["tests"]] == ["test_shown", "test_shown_bad"]
    assert view["more_tests"] == {"passed": 1, "failed": 1}
    assert "test_secret" not in repr(view)
    assert "test_later" not in repr(view)
    assert (view["score"], view["max_score"]) == (2.0, 4.0)  # hidden tests are not counted
    assert view["status"] == [
        "your notebook ran out of time in the 1st code cell",
        "the 2nd code cell raised NameError: name 'x' is not defined",
    ]


def test_after_the_due_date_after_due_date_tests_are_named_hidden_never() -> None:
    due = datetime(2020, 1, 1, tzinfo=UTC)
    view = student_view(visible_results(), due=due, now=due + timedelta(seconds=1))
    names = [t["name"] for t in view["tests"]]
    assert names == ["test_shown", "test_later_ok", "test_later_bad", "test_shown_bad"]
    assert view["more_tests"] is None
    assert "test_secret" not in repr(view)


def test_an_engine_error_is_a_plain_sentence() -> None:
    assert status_lines({"errors": ["the notebook is not valid JSON"]}) == [
        "the notebook is not valid JSON"
    ]


def test_status_is_short_and_has_no_terminal_colours() -> None:
    cells = [
        {"index": i, "status": "error", "message": f"NotImplementedError: \x1b[1m{i}\x1b[0m"}
        for i in range(20)
    ]
    lines = status_lines({"cells": cells})
    assert lines[0] == "the 1st code cell raised NotImplementedError: 0"
    assert lines[-1] == "... and 15 more"
    assert len(lines) == 6


# --- the student's notebook ------------------------------------------------------------------
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="chown to another uid needs root")
NOBODY = "nobody"  # a real account with its own uid (65534), standing in for a student


@pytest.fixture
def home(tmp_path: Path) -> Path:
    (tmp_path / "lab").mkdir()
    (tmp_path / "lab" / "lab.ipynb").write_bytes(NB)
    os.chown(tmp_path / "lab" / "lab.ipynb", 65534, 65534)
    return tmp_path


@needs_root
def test_the_students_own_notebook_is_read(home: Path) -> None:
    assert read_student_notebook(NOBODY, "lab", home=home) == NB


def test_no_notebook_says_fetch_it_first(tmp_path: Path) -> None:
    with pytest.raises(NotebookError, match="fetch lab first"):
        read_student_notebook(NOBODY, "lab", home=tmp_path)


@needs_root
def test_a_symlinked_notebook_is_refused(
    home: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Can a student make the root service read a file they cannot read (another's notebook)?"""
    secret = tmp_path_factory.mktemp("other") / "secret.ipynb"
    secret.write_text("another student's work")
    os.chown(secret, 65534, 65534)
    (home / "lab" / "lab.ipynb").unlink()
    (home / "lab" / "lab.ipynb").symlink_to(secret)
    with pytest.raises(NotebookError, match="link"):
        read_student_notebook(NOBODY, "lab", home=home)
    (home / "lab" / "lab.ipynb").unlink()
    (home / "lab").rmdir()
    (home / "lab").symlink_to(secret.parent)
    with pytest.raises(NotebookError, match="link"):
        read_student_notebook(NOBODY, "lab", home=home)


@needs_root
def test_a_notebook_owned_by_someone_else_is_refused(home: Path) -> None:
    os.chown(home / "lab" / "lab.ipynb", 0, 0)
    with pytest.raises(NotebookError, match="not owned by nobody"):
        read_student_notebook(NOBODY, "lab", home=home)


@needs_root
def test_a_huge_notebook_is_refused_saying_what_to_do(home: Path) -> None:
    with pytest.raises(NotebookError, match="Clear Outputs"):
        read_student_notebook(NOBODY, "lab", home=home, max_bytes=4)


# --- the course's settings -------------------------------------------------------------------
def test_the_course_sets_the_limits_in_nbgrader_config() -> None:
    settings = course_settings(ROOT)
    assert limits_of(settings) == Limits(checks_per_day=5, cooldown_seconds=60.0)
    assert settings.workers == 1
    assert "lab1_tensorflow" in released_labs(ROOT)


def test_bad_limits_name_the_file(tmp_path: Path) -> None:
    (tmp_path / "nbgrader_config.py").write_text("c = get_config()\nc.CheckService.workers = 0\n")
    with pytest.raises(ConfigError, match=r"nbgrader_config.py: c.CheckService.workers"):
        course_settings(tmp_path)


def test_nbgrader_ignores_the_check_section(tmp_path: Path) -> None:
    """Does nbgrader still read the course's config without a word about CheckService?"""
    # A copy: the config puts the gradebook beside itself, and the repository's stays untouched.
    (tmp_path / "nbgrader_config.py").write_text((ROOT / "nbgrader_config.py").read_text())
    done = subprocess.run(
        [sys.executable, "-m", "nbgrader", "db", "assignment", "list"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"},
    )
    assert done.returncode == 0, done.stderr
    assert "CheckService" not in done.stdout + done.stderr


def test_the_due_date_is_read_from_nbgrader_s_gradebook(tmp_path: Path) -> None:
    """Is a lab's due date the one staff set with nbgrader, read without writing the gradebook?"""
    (tmp_path / "nbgrader_config.py").write_text((ROOT / "nbgrader_config.py").read_text())
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    for lab, due in (("lab1_tensorflow", ["--duedate=2030-01-02 03:04:05 UTC"]), ("other", [])):
        subprocess.run(
            [sys.executable, "-m", "nbgrader", "db", "assignment", "add", lab, *due],
            cwd=tmp_path,
            env=env,
            check=True,
            capture_output=True,
        )
    gradebook = tmp_path / "gradebook.db"
    before = gradebook.read_bytes()
    assert due_date(tmp_path, "lab1_tensorflow") == datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert due_date(tmp_path, "other") is None
    assert due_date(tmp_path, "missing") is None
    assert due_date(tmp_path / "no-course", "lab1_tensorflow") is None
    assert gradebook.read_bytes() == before


@needs_bwrap
def test_warm_workers_grade_each_check_and_leave_nothing_when_stopped(tmp_path: Path) -> None:
    """The service's grading workers with a warm kernel each: are two checks in a row graded
    (each its own verdict), and does stopping the workers (what SIGTERM to the service does) end
    the warm kernel that was waiting: no sandbox process, no working copy mounted?"""
    course = tmp_path / "course"
    release = build_course(course)
    q = queue(tmp_path, cooldown_seconds=0)
    workers = Workers(q, course, 1, warm=1)
    verdicts: list[Check] = []
    events: list[tuple[int, str, bool]] = []  # (check, event, whether its verdict was stored yet)
    update = workers.live.update

    def spy(check_id: int, event: dict[str, object]) -> None:
        events.append((check_id, str(event["event"]), q.get(check_id).state == "done"))
        update(check_id, event)

    workers.live.update = spy  # type: ignore[method-assign]

    async def two_checks() -> None:
        serving = asyncio.create_task(workers.run())
        for student, body in (("ada", "return a + b"), ("ben", "return a - b")):
            got = asyncio.Event()
            workers.on_done = lambda check, got=got: (verdicts.append(check), got.set())  # type: ignore[misc]
            q.request(student, LAB, nbformat.writes(answer(release, body)).encode())
            workers.wake.set()
            await asyncio.wait_for(got.wait(), timeout=240)
        await asyncio.sleep(3)  # the next warm kernel is starting or waiting now
        serving.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await serving

    def copies() -> set[str]:  # working copies of slots 100-199 (the workers') mounted now
        mounts = [m.split()[1] for m in Path("/proc/mounts").read_text().splitlines()]
        return {m for m in mounts if re.search(rf"/{WC_PREFIX}1\d\d-", m)}

    before = copies()
    asyncio.run(two_checks())
    scores = {c.student: (c.results or {}).get("score") for c in verdicts}
    assert scores == {"ada": 2.0, "ben": 0.0}, [c.results for c in verdicts]
    # the live view heard each grading as it went, before its verdict: cells, the plan, each test
    for check in verdicts:
        heard = [kind for check_id, kind, done in events if check_id == check.id and not done]
        assert heard[0] == "notebook", heard
        assert {"cell", "tests"} <= set(heard), heard
        assert heard.count("test") == len((check.results or {})["tests"]), heard
        first = (check.results or {})["first_result_seconds"]
        assert 0 < first < (check.wait or 0), (first, check.wait)
    sandbox_uids = range(SANDBOX_UID_BASE + 100, SANDBOX_UID_BASE + 200)
    left = [pid for uid in sandbox_uids for pid in processes_of_uid(uid)]
    assert not left, f"processes of sandbox uids left after stop: {left}"
    assert not copies() - before, "working copies left mounted after stop"


def test_student_text_on_the_check_pages_is_inert() -> None:
    """Do exception text from a student's code (on their verdict) and forged request paths or
    `student` values (on the staff's refusal table) reach the pages as text, never as markup?"""
    from introdl.checkwork import pages

    evil = "<img src=x onerror=alert(1)><script>alert(2)</script>"
    verdict = {
        "score": 0.0,
        "max_score": 1.0,
        "status": [f"cell 3 raised ValueError: {evil}"],
        "tests": [{"name": "t", "status": "failed", "score": 0.0, "max_score": 1.0,
                   "message": f"func(2, 3) raised {evil}"}],
    }  # fmt: skip
    row = {"id": 1, "lab": "lab1_tensorflow", "requested_at": 0.0, "state": "done",
           "verdict": verdict, "wait_seconds": 1.0}  # fmt: skip
    refusal = {"at": 0.0, "who": f"hub user {evil}", "action": f"POST /labs/{evil}",
               "reason": f"the `student` parameter was given 2 times ({evil!r})"}  # fmt: skip
    live = Live(code_cells=3, cells_done=2, planned=[
        {"name": f"t{evil}", "grade_id": "g", "max_score": 1.0, "visibility": "visible", "trains": False},
        {"name": "later", "grade_id": "g", "max_score": 1.0, "visibility": "visible", "trains": True},
    ])  # fmt: skip
    live.update({"event": "cell", "code_cell": 2, "grade_id": evil, "status": "error"}, 1.0)
    live.update({"event": "test", "result": {"name": f"t{evil}", "status": "failed",
                 "score": 0.0, "max_score": 1.0, "output": evil}}, 2.0)  # fmt: skip
    running = {**row, "state": "running", "eta_seconds": 3.0,
               "progress": live_view(live, due=None, now=datetime.now(UTC))}  # fmt: skip
    htmls = (
        pages.check(row),
        pages.check(running),
        pages.staff([], [], [], xsrf="t", refusals=[refusal]),
    )
    assert "Still to come: 1 test, 1 of them training your model" in htmls[1]
    for html in htmls:
        assert "<img" not in html
        assert "<script" not in html
        assert "&lt;img src=x onerror=alert(1)&gt;" in html

"""'Check my work' through the real hub (issue 16): identity from the token, limits, staff, a class
at once, a restart mid-queue, a hostile notebook; the gradebook is never touched.

Every request goes through the hub's proxy with a real hub token to the check service, which the
hub runs as root and which grades in bwrap. lab1_tensorflow is checked for real; the class-sized
tests use the corpus lab (tests/corpus_course.py, a couple of seconds a grading), installed into
the hub's course here, so that `make test` stays within its time.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import signal
import sqlite3
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest

from introdl.hub.local import Hub
from introdl.hub.prepare import course_dir
from tests.corpus_course import answer, with_cell
from tests.hub import LOAD_CLASS, CheckApi, install_corpus

LAB = "lab1_tensorflow"
CORPUS = "corpus"
# Lines of a hidden suite that would give away its source if they reached a student.
SOURCE_MARKERS = ("def test_", "assert_close(", "student.call(", "SECRET-MARKER", "reference.")


def home(user: str) -> Path:
    return Path(f"~{user}").expanduser()


def put_notebook(user: str, lab: str, content: bytes) -> None:
    """Leave a notebook where nbgrader fetch would, owned by the student (as root, for speed)."""
    entry = pwd.getpwnam(user)
    folder = home(user) / lab
    folder.mkdir(exist_ok=True)
    (folder / f"{lab}.ipynb").write_bytes(content)
    for path in (folder, folder / f"{lab}.ipynb"):
        os.chown(path, entry.pw_uid, entry.pw_gid)


def fetched(hub: Hub, user: str, token: str) -> None:
    if not (home(user) / LAB / f"{LAB}.ipynb").is_file():
        done = hub.nbgrader(user, "fetch_assignment", LAB, cwd=home(user), token=token)
        assert done.returncode == 0, done.stdout + done.stderr


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def corpus(hub: Hub) -> nbformat.NotebookNode:
    """The corpus lab released in the hub's course, with tight limits for the hostile notebook."""
    return install_corpus(hub)


@pytest.fixture(scope="module")
def tokens(hub: Hub) -> dict[str, str]:
    people = ["st-ada", "st-ben", "st-cy", hub.settings.instructor, *LOAD_CLASS]
    return {name: hub.token_for(name, "test: check") for name in people}


def check_db(hub: Hub) -> sqlite3.Connection:
    """The service's own SQLite, read-only (root), to see the order it served checks in."""
    path = hub.settings.state / "check" / "checks.sqlite"
    return sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)


def test_a_student_gets_a_verdict_of_their_own_work_and_not_the_tests(
    hub: Hub, tokens: dict[str, str]
) -> None:
    """Does a check grade the student's fetched notebook, show names and messages only, leave the
    gradebook alone, and refuse a second check within the cool-down, saying when?"""
    fetched(hub, "st-ben", tokens["st-ben"])
    gradebook = course_dir(hub.settings) / "gradebook.db"
    before = digest(gradebook)
    ben = CheckApi(hub, tokens["st-ben"])

    asked = ben.call("POST", f"labs/{LAB}/checks")
    assert asked.status_code == 202, asked.text
    assert asked.json()["state"] in ("queued", "running")
    assert "eta_seconds" in asked.json()
    row = ben.verdict(asked.json()["id"])
    verdict = row["verdict"]
    assert isinstance(verdict, dict)
    # The release as fetched: nothing filled in, so every shown test fails, with its message.
    assert verdict["score"] == 0
    assert verdict["tests"]
    assert all(t["status"] != "passed" for t in verdict["tests"])
    assert all(t["message"] for t in verdict["tests"])
    names = [t["name"] for t in verdict["tests"]]
    assert "test_minimize_loss_follows_gradient_descent" not in names  # after_due_date: counted
    assert verdict["more_tests"] == {"passed": 0, "failed": 1}
    text = repr(row)
    assert not [m for m in SOURCE_MARKERS if m in text]
    assert digest(gradebook) == before  # checks never touch the gradebook

    again = ben.call("POST", f"labs/{LAB}/checks")
    assert again.status_code == 429
    assert "next check is allowed at" in again.json()["message"]
    assert again.json()["next_allowed"] > time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())


def test_nobody_checks_or_reads_anothers_work(hub: Hub, tokens: dict[str, str], corpus) -> None:  # type: ignore[no-untyped-def]
    """Forgeries: no token, a named student, another's check id, staff calls, paths, links."""
    put_notebook("st-ada", CORPUS, nbformat.writes(answer(corpus)).encode())
    ada, cy = CheckApi(hub, tokens["st-ada"]), CheckApi(hub, tokens["st-cy"])
    mine = ada.call("POST", f"labs/{CORPUS}/checks")
    assert mine.status_code == 202, mine.text
    check_id = mine.json()["id"]

    assert CheckApi(hub, None).call("GET", "checks").status_code in (302, 403)
    assert CheckApi(hub, "not-a-token").call("GET", "checks").status_code in (302, 403)
    forged = cy.call("POST", f"labs/{CORPUS}/checks", params={"student": "st-ada"})
    assert forged.status_code == 403
    assert "st-cy cannot check st-ada's work" in forged.json()["message"]
    other = cy.call("GET", f"checks/{check_id}")
    assert other.status_code == 404
    assert "st-ada" not in other.text
    assert check_id not in [c["id"] for c in cy.call("GET", "checks").json()]
    assert cy.call("GET", "queue").status_code == 403
    assert cy.call("POST", f"limits/st-cy/{CORPUS}", params={"extra": 99}).status_code == 403
    assert cy.call("POST", "labs/..%2Fsource/checks").status_code == 404
    assert cy.call("POST", "labs/lab3_rl/checks").status_code == 404  # not released here
    nothing = cy.call("POST", "labs/lab2_mnist/checks")
    assert nothing.status_code == 404
    assert "fetch lab2_mnist first" in nothing.json()["message"]
    # A link to another student's notebook (unreadable to cy, readable to the root service).
    folder = home("st-cy") / CORPUS
    folder.mkdir(exist_ok=True)
    (folder / f"{CORPUS}.ipynb").symlink_to(home("st-ada") / CORPUS / f"{CORPUS}.ipynb")
    linked = cy.call("POST", f"labs/{CORPUS}/checks")
    assert linked.status_code == 404
    assert "link" in linked.json()["message"]
    assert ada.verdict(check_id)["verdict"]["score"] == 2  # type: ignore[index]


def test_staff_see_who_is_stuck_where_and_raise_a_limit(hub: Hub, tokens: dict[str, str]) -> None:
    staff = CheckApi(hub, tokens[hub.settings.instructor])
    queue = staff.call("GET", "queue")
    assert queue.status_code == 200, queue.text
    assert {"running", "queued", "summary"} <= set(queue.json())
    raised = staff.call("POST", f"limits/st-ben/{LAB}", params={"extra": 3})
    assert raised.status_code == 200, raised.text
    assert raised.json()["allowance"] == 8  # 5 a day from nbgrader_config.py, plus 3


def test_twenty_students_ask_at_once(hub: Hub, tokens: dict[str, str], corpus) -> None:  # type: ignore[no-untyped-def]
    """Does each of 20 simultaneous checks come back, the student's own, served in fair order?"""
    students = LOAD_CLASS[:20]
    for i, name in enumerate(students):  # even: right, odd: wrong; so a verdict shows whose it is
        body = "return a + b" if i % 2 == 0 else "return a - b"
        put_notebook(name, CORPUS, nbformat.writes(answer(corpus, body)).encode())

    def ask(name: str) -> tuple[str, int]:
        answer_ = CheckApi(hub, tokens[name]).call("POST", f"labs/{CORPUS}/checks")
        assert answer_.status_code == 202, answer_.text
        return name, int(answer_.json()["id"])

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=len(students)) as pool:
        asked = dict(pool.map(ask, students))
    with ThreadPoolExecutor(max_workers=len(students)) as pool:
        rows = dict(
            zip(
                students,
                pool.map(lambda n: CheckApi(hub, tokens[n]).verdict(asked[n]), students),
                strict=True,
            )
        )
    wall = time.monotonic() - started
    for i, name in enumerate(students):
        assert rows[name]["verdict"]["score"] == (2 if i % 2 == 0 else 0), name  # type: ignore[index]
    ids = sorted(asked.values())
    with check_db(hub) as db:
        served = [r[0] for r in db.execute(
            f"SELECT id FROM checks WHERE id IN ({','.join('?' * len(ids))}) ORDER BY started_at",
            ids,
        )]  # fmt: skip
    assert served == ids  # one check each: round-robin serves them in the order asked
    waits = sorted(float(r["wait_seconds"]) for r in rows.values())  # type: ignore[arg-type]
    print(
        f"\n20 students at once ({CORPUS}): all {len(rows)} verdicts in {wall:.1f} s; "
        f"wait median {statistics.median(waits):.1f} s, worst {waits[-1]:.1f} s"
    )


def service_pid(hub: Hub) -> int:
    """The pid of THIS hub's check service (its --state names this hub's folder)."""
    state = str(hub.settings.state / "check")
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                argv = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"introdl.checkwork.service" in argv and state.encode() in argv:
                return int(proc.name)
    raise AssertionError("the check service is not running")


def test_a_restart_mid_queue_resumes_and_loses_nothing(
    hub: Hub, tokens: dict[str, str], corpus
) -> None:  # type: ignore[no-untyped-def]
    """Killed while grading with checks waiting, is the service restarted by the hub, and does
    every check get its verdict (the one in flight graded again)?"""
    students = LOAD_CLASS[20:26]
    for name in students:
        put_notebook(name, CORPUS, nbformat.writes(answer(corpus)).encode())
    asked = {}
    for name in students:
        answer_ = CheckApi(hub, tokens[name]).call("POST", f"labs/{CORPUS}/checks")
        assert answer_.status_code == 202, answer_.text
        asked[name] = int(answer_.json()["id"])
    deadline = time.monotonic() + 120
    with check_db(hub) as db:
        while time.monotonic() < deadline:
            states = dict(db.execute(
                f"SELECT id, state FROM checks WHERE id IN ({','.join('?' * len(asked))})",
                list(asked.values()),
            ).fetchall())  # fmt: skip
            if "running" in states.values() and "queued" in states.values():
                break
            time.sleep(0.2)
    assert "running" in states.values(), states
    pid = service_pid(hub)
    assert os.getpgid(pid) == pid  # the hub starts each service in its own session
    os.killpg(os.getpgid(pid), signal.SIGKILL)  # the service, its workers and their sandboxes
    for name in students:
        row = CheckApi(hub, tokens[name]).verdict(asked[name], timeout=300)
        assert row["verdict"]["score"] == 2, row  # type: ignore[index]
    assert service_pid(hub) != pid
    with check_db(hub) as db:
        attempts = [r[0] for r in db.execute(
            f"SELECT attempts FROM checks WHERE id IN ({','.join('?' * len(asked))})",
            list(asked.values()),
        )]  # fmt: skip
    assert max(attempts) == 2  # the one in flight at the restart was graded again


def test_a_looping_notebook_gets_a_clear_status(hub: Hub, tokens: dict[str, str], corpus) -> None:  # type: ignore[no-untyped-def]
    """Does a notebook that never finishes a cell come back with which cell, not a hung check?"""
    looping = with_cell(corpus, "while True:\n    pass")
    put_notebook("st-load29", CORPUS, nbformat.writes(looping).encode())
    me = CheckApi(hub, tokens["st-load29"])
    asked = me.call("POST", f"labs/{CORPUS}/checks")
    assert asked.status_code == 202, asked.text
    verdict = me.verdict(asked.json()["id"], timeout=180)["verdict"]
    code_cells = sum(1 for c in looping.cells if c.cell_type == "code")
    assert f"your notebook ran out of time in the {code_cells}th code cell" in verdict["status"]  # type: ignore[index]

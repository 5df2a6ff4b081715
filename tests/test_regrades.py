"""Regrade requests without a hub: the window, one request per item, the state machine, the
escalation, answers landing in nbgrader's real gradebook, a real rerun in the sandbox, the audit
trail, a restart, and hostile reasons escaped on the staff's pages.

One tiny course per module (the corpus lab: one hidden test, `add`, 2 points) with a hand-graded
markdown cell added (`explain`, 1 point); a student's graded results are landed with the real
`land_grades`, and the rerun grades for real in bwrap (a couple of seconds).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook

from introdl.grading.batch import land
from introdl.grading.course import nbgrader
from introdl.grading.errors import BadInput
from introdl.grading.grade import GradeOptions, grade_submission
from introdl.grading.record.results import Results, Sandbox, TestResult, results_path
from introdl.grading.submission import submission_at
from introdl.hub.exchange_store import ExchangeStore
from introdl.staff import regrade_pages
from introdl.staff.regrade import RegradeDesk, RegradeError
from introdl.staff.regrade_feedback import CourseReleases, ExchangeReleases
from introdl.staff.regrade_items import items_of
from introdl.staff.regrade_settings import HOUR, Window, regrade_window
from introdl.staff.store import StaffStore
from tests.corpus_course import FIXTURE, LAB, ROOT, answer, source_notebook
from tests.sandboxed import needs_bwrap

WINDOW = Window(opens_after=2 * HOUR, closes_after=48 * HOUR, max_reason_chars=500)
HOSTILE = "<script>alert(1)</script><img src=x onerror=alert(2)>'\"&"


@pytest.fixture(scope="module")
def course(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The corpus course with a hand-graded cell, released, two students graded (0 on `add`)."""
    course = tmp_path_factory.mktemp("regrades")
    (course / "source" / LAB).mkdir(parents=True)
    shutil.copy(ROOT / "nbgrader_config.py", course / "nbgrader_config.py")
    shutil.copytree(FIXTURE / "grader_tests", course / "grader_tests")
    nb = source_notebook()
    meta = {
        "grade_id": "explain",
        "schema_version": 3,
        "solution": True,
        "grade": True,
        "locked": False,
        "task": False,
        "points": 1,
    }
    nb.cells.append(nbformat.v4.new_markdown_cell("YOUR ANSWER HERE", metadata={"nbgrader": meta}))
    nbformat.write(nb, course / "source" / LAB / f"{LAB}.ipynb")
    nbgrader("generate_assignment", LAB, "--force", "--log-level=WARN", cwd=course)
    release = nbformat.read(course / "release" / LAB / f"{LAB}.ipynb", as_version=4)
    for student in ("ada", "ben"):
        folder = course / "submitted" / student / LAB
        folder.mkdir(parents=True)
        (folder / "timestamp.txt").write_text("2026-11-23 09:00:00.000000 UTC")
        nbformat.write(answer(release), folder / f"{LAB}.ipynb")
        test = TestResult("test_add_on_random_arrays", "add", 0.0, 2.0, "failed", "add is wrong")
        results = Results(LAB, student, 1, {"add": 2.0}, Sandbox("bwrap", True), tests=(test,))
        land(course, submission_at(folder, LAB, student), graded(results, folder))
    return course


def graded(results: Results, folder: Path):  # type: ignore[no-untyped-def]
    from introdl.grading.grade import Graded

    return Graded(results, (folder / f"{LAB}.ipynb").read_text())


def released(course: Path, student: str, at: float) -> None:
    """Feedback for STUDENT released at AT (the course's feedback folder, as generate_feedback)."""
    html = course / "feedback" / student / LAB / f"{LAB}.html"
    html.parent.mkdir(parents=True, exist_ok=True)
    html.write_text("<p>feedback</p>")
    os.utime(html, (at, at))


@pytest.fixture
def desk(course: Path, tmp_path: Path) -> RegradeDesk:
    return RegradeDesk(StaffStore.beside(tmp_path), course, WINDOW, CourseReleases(course))


def test_the_window_opens_and_closes_at_its_edges(course: Path, desk: RegradeDesk) -> None:
    """Is a request refused before feedback, before the window opens and at its end, and
    accepted at the very second it opens?"""
    shutil.rmtree(course / "feedback", ignore_errors=True)
    with pytest.raises(RegradeError, match="not been released"):
        desk.file("ada", LAB, "explain", "please")
    t0 = time.time() - 10 * HOUR
    released(course, "ada", t0)
    opens, closes = t0 + 2 * HOUR, t0 + 48 * HOUR
    with pytest.raises(RegradeError, match="open at"):
        desk.file("ada", LAB, "explain", "please", now=opens - 0.001)
    with pytest.raises(RegradeError, match="closed at"):
        desk.file("ada", LAB, "explain", "please", now=closes)
    req = desk.file("ada", LAB, "explain", "please", now=opens)
    assert (req.state, req.kind, req.old_score) == ("open", "cell", 0.0)


def test_one_request_per_item_and_only_items_of_ones_own_results(
    course: Path, desk: RegradeDesk
) -> None:
    """Is a second request for the same item refused, and an item not in the results too?"""
    released(course, "ada", time.time() - 10 * HOUR)
    assert set(items_of(course, "ada", LAB)) == {"test_add_on_random_arrays", "explain"}
    desk.file("ada", LAB, "test_add_on_random_arrays", "my add is right")
    with pytest.raises(RegradeError, match="already asked") as err:
        desk.file("ada", LAB, "test_add_on_random_arrays", "again")
    assert err.value.status == 409
    for bad in ("test_secret_other", "", "../ben"):
        with pytest.raises(RegradeError, match="no graded item"):
            desk.file("ada", LAB, bad, "x")
    with pytest.raises(RegradeError, match="empty"):
        desk.file("ada", LAB, "explain", "   ")
    with pytest.raises(RegradeError, match="characters long"):
        desk.file("ada", LAB, "explain", "x" * 501)
    # Ben's window is his own: his feedback is not released, whatever Ada's is.
    (course / "feedback" / "ben").exists() and shutil.rmtree(course / "feedback" / "ben")
    with pytest.raises(RegradeError, match="not been released"):
        desk.file("ben", LAB, "explain", "x")


def test_the_state_machine_escalation_and_the_audit_trail_survive_a_restart(
    course: Path, desk: RegradeDesk, tmp_path: Path
) -> None:
    """open -> answered -> (escalated) open -> answered by the instructor -> closed by the
    student; a TA may not answer an escalated request; a student may not accept another's or
    an open one; every step is in the audit trail, and a restart keeps it all."""
    released(course, "ada", time.time() - 10 * HOUR)
    req = desk.file("ada", LAB, "explain", "I explained it")
    with pytest.raises(RegradeError, match="cannot be accepted"):
        desk.accept(req.id, "ada")
    with pytest.raises(RegradeError, match="no regrade request"):
        desk.accept(req.id, "ben")
    with pytest.raises(RegradeError, match="write a comment"):
        desk.answer(req.id, "ta", instructor=False, comment=" ", score=None)
    kept = desk.answer(req.id, "ta", instructor=False, comment="no: see rubric", score=None)
    assert (kept.state, kept.old_score, kept.new_score) == ("answered", 0.0, 0.0)
    with pytest.raises(RegradeError, match="not open"):
        desk.answer(req.id, "ta", instructor=False, comment="again", score=1)
    up = desk.escalate(req.id, "ada", by_student=True)
    assert (up.state, up.escalated) == ("open", True)
    with pytest.raises(RegradeError, match="already with the instructor"):
        desk.escalate(req.id, "ada", by_student=True)
    with pytest.raises(RegradeError, match="only the instructor") as err:
        desk.answer(req.id, "ta", instructor=False, comment="still no", score=None)
    assert err.value.status == 403
    with pytest.raises(RegradeError, match="between 0 and 1"):
        desk.answer(req.id, "prof", instructor=True, comment="x", score=2)
    done = desk.answer(req.id, "prof", instructor=True, comment="fair point", score=1)
    assert (done.old_score, done.new_score, done.answered_by) == (0.0, 1.0, "prof")
    # The changed score is the hand-graded cell's manual score in nbgrader's gradebook.
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        grade = gb.find_grade("explain", LAB, LAB, "ada")
        assert (grade.manual_score, grade.score) == (1.0, 1.0)
    assert desk.accept(req.id, "ada").state == "closed"
    with pytest.raises(RegradeError):
        desk.escalate(req.id, "ada", by_student=True)
    desk.store.close()
    again = RegradeDesk(StaffStore.beside(tmp_path), course, WINDOW, CourseReleases(course))
    after = again.get(req.id)
    assert after is not None
    assert (after.state, after.new_score, after.escalated) == ("closed", 1.0, True)
    trail = [(a.who, a.action) for a in reversed(again.store.audit_trail(student="ada"))]
    assert trail == [
        ("ada", "regrade.file"),
        ("ta", "regrade.answer"),
        ("ada", "regrade.escalate"),
        ("prof", "regrade.answer"),
        ("ada", "regrade.accept"),
    ]
    answer_line = again.store.audit_trail(student="ada")[1]
    assert answer_line.detail["cell_score"] == {"grade_id": "explain", "old": 0.0, "new": 1.0}


def test_a_changed_test_score_lands_in_its_grade_cell_and_the_window_closes_answers(
    course: Path, desk: RegradeDesk
) -> None:
    """Does a hidden test's new score replace its points in the grade cell's score, and does an
    answered request close when the window ends (and only then)?"""
    t0 = time.time() - 10 * HOUR
    released(course, "ben", t0)
    req = desk.file("ben", LAB, "test_add_on_random_arrays", "random inputs were unfair")
    desk.answer(req.id, "ta", instructor=False, comment="half credit", score=1.0)
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        grade = gb.find_grade("add", LAB, LAB, "ben")
        assert (grade.auto_score, grade.manual_score) == (0.0, 1.0)
    assert desk.sweep(now=t0 + 48 * HOUR - 1) == 0
    assert desk.sweep(now=t0 + 48 * HOUR) == 1
    closed = desk.get(req.id)
    assert closed is not None
    assert closed.state == "closed"
    assert desk.store.audit_trail(student="ben")[0].who == "window"


def test_the_queue_is_open_first_oldest_first(course: Path, desk: RegradeDesk) -> None:
    released(course, "ada", time.time() - 10 * HOUR)
    released(course, "ben", time.time() - 10 * HOUR)
    first = desk.file("ben", LAB, "explain", "b", now=time.time() - 3600)
    second = desk.file("ada", LAB, "explain", "a", now=time.time() - 60)
    third = desk.file("ada", LAB, "test_add_on_random_arrays", "c", now=time.time() - 7200)
    desk.answer(third.id, "ta", instructor=False, comment="ok", score=None)
    assert [r.id for r in desk.queue()] == [first.id, second.id, third.id]


def test_hostile_reasons_are_inert_on_every_page(course: Path, desk: RegradeDesk) -> None:
    """Is a reason with script, an onerror image and quotes escaped on the staff's queue and
    request pages and the student's own request page, and a long one cut in the queue only?"""
    released(course, "ada", time.time() - 10 * HOUR)
    long = HOSTILE + "x" * 5000
    desk.window = Window(WINDOW.opens_after, WINDOW.closes_after, 10_000)
    req = desk.file("ada", LAB, "explain", long)
    pages = [
        regrade_pages.queue_page(desk.queue(), prefix="/services/check/"),
        regrade_pages.request_page(req, staff_view=True, xsrf="t", trail=[], prefix="/p/"),
        regrade_pages.request_page(req, staff_view=False, xsrf="t", trail=[], prefix="/p/"),
    ]
    for page in pages:
        assert "<script" not in page
        assert "<img" not in page
        assert "onerror=alert" in page
        assert "&lt;script&gt;" in page
        assert "&#x27;&quot;&amp;" in page
    assert "x" * 5000 not in pages[0]
    assert "x" * 5000 in pages[1]


def test_window_settings_are_checked_and_name_the_file(tmp_path: Path) -> None:
    config = tmp_path / "nbgrader_config.py"
    assert regrade_window(tmp_path).opens_after == 24 * HOUR  # no file: the defaults
    for line, words in (
        ("c.Regrades.opens_after_hours = -1", "opens_after_hours must be 0 or more"),
        ("c.Regrades.closes_after_days = 0", "closes_after_days must be more than 0"),
        ("c.Regrades.opens_after_hours = 48\nc.Regrades.closes_after_days = 1", "must end after"),
        ("c.Regrades.max_reason_chars = 0", "max_reason_chars must be at least 1"),
    ):
        config.write_text(f"c = get_config()\n{line}\n")
        with pytest.raises(BadInput, match=words) as err:
            regrade_window(tmp_path)
        assert str(config) in str(err.value)
    config.write_text("c = get_config()\nc.Regrades.opens_after_hours = 0\n")
    assert regrade_window(tmp_path).opens_after == 0


def test_exchange_releases_are_read_from_the_exchanges_records(tmp_path: Path) -> None:
    """Is the window counted from the exchange's first feedback release of the student's lab,
    and is nothing released for another student or lab?"""
    store = ExchangeStore(tmp_path / "exchange")
    store.release(LAB, b"release", ["corpus.ipynb"], by="prof")
    sub = store.submit("ada", LAB, b"blob", ["a.ipynb"])
    before = time.time()
    store.put_feedback(sub, b"fb", ["a.html"])
    releases = ExchangeReleases(tmp_path / "exchange")
    at = releases.released_at("ada", LAB)
    assert at is not None
    assert before - 1 <= at <= time.time() + 1
    assert releases.released_at("ben", LAB) is None
    assert releases.released_at("ada", "lab9") is None
    assert ExchangeReleases(tmp_path / "none").released_at("ada", LAB) is None
    # The exchange stopped (no -wal, no -shm): read without leaving files of ours in its folder.
    store.db.close()
    files = sorted(p.name for p in (tmp_path / "exchange").iterdir())
    assert releases.released_at("ada", LAB) == at
    assert sorted(p.name for p in (tmp_path / "exchange").iterdir()) == files


@needs_bwrap
def test_a_rerun_grades_again_with_the_current_tests_and_records_old_and_new(
    course: Path, desk: RegradeDesk
) -> None:
    """Does answering by a rerun grade the submission in the sandbox with the hidden tests as
    they are now, land it in the gradebook and results.json, and keep the old and new score?"""
    released(course, "ben", time.time() - 10 * HOUR)
    desk.options = GradeOptions(backend="bwrap")
    req = desk.file("ben", LAB, "test_add_on_random_arrays", "add(a, b) returns a + b")
    assert req.old_score == 0.0
    if os.geteuid() == 0:  # the course belongs to its instructor, not to root
        os.chown(course, 65534, 65534)
    done = desk.rerun(req.id, "ta", instructor=False, comment="the test was fixed")
    assert (done.state, done.old_score, done.new_score) == ("answered", 0.0, 2.0)
    assert "scores 2 (was 0)" in (done.answer or "")
    assert "the test was fixed" in (done.answer or "")
    assert Results.read(results_path(course, "ben", LAB)).score == 2.0
    # Run as root (the check service is), the rerun's files go back to the course's owner.
    owner = course.stat().st_uid
    written = [course / "autograded" / "ben" / LAB, *(course / "autograded" / "ben").rglob("*")]
    assert {p.stat().st_uid for p in written} == {owner}, "root-owned files left in the course"
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        assert gb.find_grade("add", LAB, LAB, "ben").auto_score == 2.0
    line = desk.store.audit_trail(student="ben")[0]
    assert (line.action, line.detail["old_total"], line.detail["new_total"]) == (
        "regrade.rerun",
        0.0,
        2.0,
    )
    _ = grade_submission  # the engine the desk uses (imported for readers)


def test_the_check_service_takes_the_instructor_group_and_the_exchange() -> None:
    """Do --instructor-group and --exchange-root reach the service (default: none given)?"""
    from introdl.checkwork.service import parse_args

    plain = parse_args(["--course", "c", "--state", "s"])
    assert (plain.instructor_group, plain.exchange_root) == ("", "")
    given = parse_args(["--course", "c", "--state", "s", "--instructor-group", "profs",
                        "--exchange-root", "/srv/exchange"])  # fmt: skip
    assert (given.instructor_group, given.exchange_root) == ("profs", "/srv/exchange")

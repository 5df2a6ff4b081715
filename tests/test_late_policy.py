"""Deadlines, extensions and the late penalty, in nbgrader's real gradebook.

One tiny course (tests/test_gradebook.py's) with the policy "10% per started day, at most 50%",
a due date, and staff records beside a check service's state folder.
"""

from __future__ import annotations

import csv
import html
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from nbgrader.api import Gradebook

from introdl import cli
from introdl.grading.errors import BadInput
from introdl.grading.record import late
from introdl.grading.record.gradebook import (
    LandedGrades,
    export_grades,
    generate_feedback,
    land_grades,
)
from introdl.staff import extensions as ext
from introdl.staff.store import FILE_NAME, StaffStore
from tests.fixtures.notebook_student import NotebookStudent
from tests.test_gradebook import CORRECT, LAB, answered, grade, released_course

DUE = "2026-11-03 00:00:00 UTC"
POLICY = """
c.LatePolicy.percent_per_day = 10
c.LatePolicy.max_percent = 50
c.LatePolicy.check_state = {state!r}
c.AssignLatePenalties.plugin_class = "introdl.grading.record.late.LatePenalty"
"""


@pytest.mark.parametrize(
    ("seconds", "percent"),
    [
        (0, 0),  # just on time
        (1, 10),  # one second late: a started day
        (86_400, 10),
        (86_401, 20),
        (4 * 86_400 + 1, 50),  # five started days: the cap exactly
        (30 * 86_400, 50),  # capped
    ],
)
def test_penalty_per_started_day_is_capped(seconds: float, percent: float) -> None:
    """Is the penalty 10% per started day, 0 when on time, and never past the cap?"""
    policy = late.Policy(percent_per_day=10, max_percent=50)
    assert policy.percent(seconds) == percent
    assert policy.penalty(8.0, seconds) == pytest.approx(8.0 * percent / 100)


def test_grace_minutes_count_as_on_time_then_days_count_from_the_due_date() -> None:
    policy = late.Policy(percent_per_day=10, max_percent=100, grace_minutes=5)
    assert policy.percent(300) == 0
    assert policy.percent(301) == 10
    assert policy.penalty(0.0, 10 * 86_400) == 0.0  # nothing to take from a zero score


def write_policy(root: Path, text: str) -> None:
    base = (root / "nbgrader_config.py").read_text().split("# --- test policy")[0]
    (root / "nbgrader_config.py").write_text(base + "# --- test policy\n" + text)


def test_a_nonsense_policy_is_refused_naming_the_config_file(tmp_path: Path) -> None:
    (tmp_path / "nbgrader_config.py").write_text("c = get_config()\n")
    write_policy(tmp_path, "c.LatePolicy.percent_per_day = 150\n")
    with pytest.raises(BadInput, match=r"nbgrader_config.py: c.LatePolicy.percent_per_day"):
        late.course_policy(tmp_path)
    write_policy(tmp_path, "c.LatePolicy.percent_per_day = 10\n")  # without the plugin
    with pytest.raises(BadInput, match=r"AssignLatePenalties\.plugin_class"):
        late.course_policy(tmp_path)


def test_grading_reads_the_staff_records_file_the_store_writes() -> None:
    assert late.STAFF_FILE == FILE_NAME


@dataclass
class Course:
    root: Path
    state: Path
    store: StaffStore
    dave: LandedGrades  # extension granted before grading: on time
    erin: LandedGrades  # 33 h late, graded without an extension
    erin_extended: dict[str, float]  # erin's penalty after an extension granted after grading
    erin_revoked: dict[str, float]
    frank: LandedGrades  # ten days late: capped
    export: Path
    feedback: Path


def penalty_in_gradebook(root: Path, student: str) -> float:
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        return float(gb.find_submission_notebook(LAB, LAB, student).late_submission_penalty or 0)


@pytest.fixture(scope="module")
def course(tmp_path_factory: pytest.TempPathFactory) -> Course:
    root = tmp_path_factory.mktemp("late-course")
    state = tmp_path_factory.mktemp("check-state")
    release, points = released_course(root)
    write_policy(root, POLICY.format(state=str(state)))
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        gb.update_or_create_assignment(LAB, duedate=DUE)
    store = StaffStore.beside(state)
    correct = answered(release, CORRECT)

    def land(student: str, at: datetime) -> LandedGrades:
        results = grade(root, student, correct, seed=7, points=points)
        executed = NotebookStudent(correct).executed
        return land_grades(root, LAB, student, executed, results, timestamp=at)

    ext.grant(store, root, lab=LAB, student="dave", until="2026-11-05T00:00", who="ta")
    dave = land("dave", datetime(2026, 11, 4, 9))
    erin = land("erin", datetime(2026, 11, 4, 9))
    extended = ext.grant(
        store, root, lab=LAB, student="erin", until="2026-11-04T00:00", reason="flu", who="ta"
    ).penalties
    export = export_grades(root, root / "exports" / "extended.csv")
    feedback = generate_feedback(root, LAB, "erin")
    revoked = ext.revoke(store, root, lab=LAB, student="erin", who="ta").penalties
    frank = land("frank", datetime(2026, 11, 13, 0, 0, 1))
    return Course(root, state, store, dave, erin, extended, revoked, frank, export, feedback)


def test_extension_granted_before_grading_makes_the_hand_in_on_time(course: Course) -> None:
    """Dave handed in 33 h after the due date with an extension of two days: no penalty."""
    assert course.dave.score == 5.0
    assert course.dave.late_penalty == 0.0
    assert penalty_in_gradebook(course.root, "dave") == 0.0


def test_late_hand_in_is_graded_with_its_penalty_never_dropped(course: Course) -> None:
    """Erin, 33 h late without extension: two started days, 20% of 5 points."""
    assert course.erin.late_penalty == pytest.approx(1.0)
    assert course.erin.score == pytest.approx(4.0)
    assert course.frank.late_penalty == pytest.approx(2.5)  # ten days: capped at 50%


def test_extension_after_grading_reprices_without_regrading(course: Course) -> None:
    """Granted after grading, 9 h past the new date: one day, 10%; revoked: 20% again."""
    assert course.erin_extended == {LAB: pytest.approx(0.5)}
    assert course.erin_revoked == {LAB: pytest.approx(1.0)}
    assert penalty_in_gradebook(course.root, "erin") == pytest.approx(1.0)


def test_export_and_feedback_show_the_stored_penalty(course: Course) -> None:
    rows = {r["student_id"]: r for r in csv.DictReader(course.export.open())}
    assert float(rows["erin"]["late_submission_penalty"]) == pytest.approx(0.5)
    assert float(rows["erin"]["score"]) == pytest.approx(4.5)
    assert float(rows["dave"]["late_submission_penalty"]) == 0.0
    page = html.unescape(course.feedback.read_text())
    assert "Late submission penalty (Score: -0.5)" in page


def test_every_grant_and_revocation_is_in_the_audit_trail(course: Course) -> None:
    trail = course.store.audit_trail(student="erin", lab=LAB)
    assert [a.action for a in trail] == ["extension.revoke", "extension.grant"]
    assert trail[1].detail["reason"] == "flu"
    assert trail[1].detail["penalties"] == {LAB: pytest.approx(0.5)}
    assert all(a.who == "ta" for a in trail)


@pytest.mark.parametrize(
    ("until", "student", "lab", "match"),
    [
        ("2026-11-02T17:00", "erin", LAB, "not after"),
        ("2026-11-03T00:00", "erin", LAB, "not after"),
        ("tomorrow", "erin", LAB, "not a time"),
        ("2026-12-01T00:00", "../root", LAB, "not a valid name"),
        ("2026-12-01T00:00", "erin", "no_such_lab", "not a lab of the gradebook"),
    ],
)
def test_nonsense_grants_are_refused_and_leave_no_trace(
    course: Course, until: str, student: str, lab: str, match: str
) -> None:
    before = len(course.store.audit_trail())
    with pytest.raises(BadInput, match=match):
        ext.grant(course.store, course.root, lab=lab, student=student, until=until, who="ta")
    assert len(course.store.audit_trail()) == before


def test_cli_grants_and_revokes_with_meaningful_exit_codes(
    course: Course, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`introdl extension`: 0 when done, 2 for bad input; who is the Unix user."""
    monkeypatch.setenv("INTRODL_COURSE_ROOT", str(course.root))
    args = [LAB, "grace", "--state", str(course.state)]
    assert cli.main(["extension", *args, "--until", "2026-11-01T00:00"]) == 2
    assert "not after" in capsys.readouterr().err
    assert cli.main(["extension", *args]) == 2  # neither --until nor --revoke
    assert cli.main(["extension", *args, "--revoke"]) == 2  # nothing to revoke
    assert cli.main(["extension", "nolab", "grace", "--until", "2026-12-01T00:00"]) == 2
    assert cli.main(["extension", *args, "--until", "2026-11-06T12:00", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["until"] == "2026-11-06T12:00:00+00:00"
    assert out["who"].startswith("unix:")
    assert cli.main(["extension", *args, "--revoke"]) == 0
    assert ext.extension_of(course.store, "grace", LAB) is None
    assert [a.action for a in course.store.audit_trail(student="grace")] == [
        "extension.revoke",
        "extension.grant",
    ]


def test_a_student_sees_their_graded_score_with_the_stored_penalty(course: Course) -> None:
    """The home page's row for frank: ten days late, 50%, and the gradebook's numbers."""
    from introdl.staff import late as status

    graded = status.graded_of(course.root, LAB, "frank")
    assert graded == status.Graded(score=5.0, max_score=6.0, penalty=pytest.approx(2.5))
    assert status.graded_of(course.root, LAB, "nobody") is None
    row = status.status(
        LAB,
        due=late.parse_until("2026-11-03T00:00"),
        extension=None,
        handins={LAB: datetime(2026, 11, 13, 0, 0, 1, tzinfo=UTC)},
        policy=late.course_policy(course.root)[0],
        graded=graded,
        now=datetime(2026, 12, 1, tzinfo=UTC),
    )
    page = status.deadlines_html([row])
    assert "10 d 0 h late, penalty 50% of the score" in page
    assert "2.5 / 6 (5 minus a late penalty of 2.5)" in page


def test_an_extension_reason_is_shown_as_text(course: Course) -> None:
    """Staff-written text reaches a student's page escaped, never as markup."""
    from introdl.staff import late as status

    ext.grant(
        course.store,
        course.root,
        lab=LAB,
        student="mallory",
        until="2026-11-09T00:00",
        reason="<script>alert(1)</script>",
        who="ta",
    )
    extension = ext.extension_of(course.store, "mallory", LAB)
    row = status.status(
        LAB,
        due=None,
        extension=extension,
        handins=None,
        policy=late.Policy(),
        graded=None,
        now=datetime(2026, 11, 1, tzinfo=UTC),
    )
    page = status.deadlines_html([row])
    assert "<script>" not in page
    assert "&lt;script&gt;" in page
    assert "until 2026-11-09 00:00 UTC" in page
    assert ext.extensions(course.store, student="erin") == []  # only one's own are listed

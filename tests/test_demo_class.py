"""The demo class of `make demo`, graded end to end: exchange, sandboxes, gradebook, feedback, export."""

from __future__ import annotations

import csv
import html
import re
import shutil
from pathlib import Path

import pytest

from introdl.cli.demo import LAB, grade_demo_class
from introdl.grading.batch import Row, grade_class
from introdl.grading.grade import GradeOptions
from introdl.grading.submission import find_submissions

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Row], list[str], Path]:
    course = tmp_path_factory.mktemp("demo") / "course"
    rows, feedback, export = grade_demo_class(ROOT, course)
    return course, {r.student: r for r in rows}, feedback, export


def test_scores_of_the_demo_class(demo: tuple[Path, dict[str, Row], list[str], Path]) -> None:
    """Does the correct student get full marks, the untouched release zero, and the rest in between?"""
    _, rows, _, _ = demo
    assert rows["ada"].score == rows["ada"].max_score == 11
    assert rows["eve"].score == 0
    assert rows["cy"].score == 0
    assert "not a valid notebook" in rows["cy"].message
    # ben: three exercises left as TODO (computation 1, gradient_tape 1, gradient_descent 2) and
    # the dense layer without its bias (the 1.5-point value test fails, the 0.5-point shape test passes).
    assert rows["ben"].score == 11 - 4 - 1.5
    # dee: correct answers, then a `func` returning an always-equal object: loses computation's point.
    assert rows["dee"].score == 10


def test_export_matches_the_gradebook(demo: tuple[Path, dict[str, Row], list[str], Path]) -> None:
    """Does `nbgrader export` give each student the score the hidden tests earned?"""
    _, rows, _, export = demo
    with export.open() as fh:
        exported = {r["student_id"]: float(r["score"]) for r in csv.DictReader(fh)}
    assert exported == {s: r.score for s, r in rows.items()}


def test_feedback_shows_test_names_and_messages_but_no_test_source(
    demo: tuple[Path, dict[str, Row], list[str], Path],
) -> None:
    """Is every hidden test named in the feedback, with none of its source lines?"""
    _, _, feedback, _ = demo
    assert len(feedback) == 5
    suite = ROOT / "grader_tests" / LAB
    source_lines = {
        line.strip()
        for path in suite.glob("*.py")
        for line in path.read_text().splitlines()
        if len(line.strip()) > 25
        and not line.strip().startswith(("#", '"""', "def test_", "@pytest"))
    }
    test_names = re.findall(
        r"^def (test_\w+)", (suite / "test_lab1_tensorflow.py").read_text(), re.M
    )
    for path in feedback:
        text = html.unescape(re.sub(r"<[^>]+>", "", Path(path).read_text()))
        leaked = [line for line in source_lines if line in text]
        assert not leaked, f"{path} shows hidden test source: {leaked[:2]}"
    ben = html.unescape(Path(next(f for f in feedback if "/ben/" in f)).read_text())
    for name in test_names:
        assert name in ben
    assert "OurDenseLayer should return sigmoid(x W + b)" in ben


def test_hostile_student_reads_nothing_and_forges_nothing(
    demo: tuple[Path, dict[str, Row], list[str], Path],
) -> None:
    """Did dee's attempts on the hidden tests, the gradebook and results.json all fail?"""
    course, _, _, _ = demo
    autograded = (course / "autograded" / "dee" / LAB / f"{LAB}.ipynb").read_text()
    assert "could not write" in autograded
    assert (
        '"score": 11, "max_score": 11, "tests": []'
        not in (course / "autograded" / "dee" / LAB / "results.json").read_text()
    )
    assert "test_lab1_tensorflow.py" not in autograded


def test_a_second_run_regrades_nothing(demo: tuple[Path, dict[str, Row], list[str], Path]) -> None:
    """Does grading the class again skip every unchanged submission (a resumed batch)?"""
    course, rows, _, _ = demo
    again = grade_class(
        course, find_submissions(course, LAB), GradeOptions(backend="bwrap"), workers=1
    )
    assert {r.status for r in again} == {"unchanged"}
    assert {r.student: r.score for r in again} == {s: r.score for s, r in rows.items()}


def test_the_demo_class_grades_reach_the_lms(
    demo: tuple[Path, dict[str, Row], list[str], Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Does `introdl lms push` put every demo student's exported score on a real LTI 1.3
    platform's line item (loopback), matching each by lms_user_id, and send nothing the second
    time?"""
    from nbgrader.api import Gradebook

    from introdl.cli import main
    from introdl.lms.keys import public_jwk
    from tests.lms_course import CLIENT_ID, secret_file, tool_key
    from tests.lti_platform import Platform, private_pem

    source, rows, _, export = demo
    course = tmp_path / "course"
    shutil.copytree(source, course)  # the demo course stays as the other tests left it
    db_url = f"sqlite:///{course / 'gradebook.db'}"
    with Gradebook(db_url, "introdl") as gb:
        for student in rows:
            gb.update_or_create_student(student, lms_user_id=f"lms-{student}")
    exported = {
        r["student_id"]: float(r["score"])
        for r in csv.DictReader(export.open())
        if r["assignment"] == LAB
    }
    with Platform() as platform:
        for student in rows:
            platform.add_member("demo", f"lms-{student}")
        key = tool_key()
        secrets_dir = course / "secrets"
        secrets_dir.mkdir(mode=0o700)
        platform.register_tool(CLIENT_ID, public_jwk(key))
        settings = {
            "issuer": platform.issuer,
            "client_id_file": str(secret_file(secrets_dir / "client_id", CLIENT_ID.encode())),
            "deployment_id": platform.deployment_id,
            "token_url": platform.token_url,
            "platform_jwks_url": platform.jwks_url,
            "lineitems_url": platform.lineitems_url("demo"),
            "memberships_url": platform.memberships_url("demo"),
            "private_key_file": str(secret_file(secrets_dir / "tool.pem", private_pem(key))),
            "state": str(course / "state"),
        }
        with (course / "nbgrader_config.py").open("a") as config:
            config.writelines(f"\nc.LTI.{name} = {value!r}" for name, value in settings.items())
        monkeypatch.setenv("INTRODL_COURSE_ROOT", str(course))

        assert main(["lms", "push", LAB]) == 0
        (item,) = platform.context("demo").lineitems.values()
        (number,) = platform.context("demo").lineitems
        on_lms = {s["userId"]: s["scoreGiven"] for s in platform.scores("demo", number)}
        assert on_lms == {f"lms-{s}": score for s, score in exported.items()}
        assert item["scoreMaximum"] == rows["ada"].max_score
        assert "not in the gradebook" not in capsys.readouterr().out
        posted = platform.posts("/scores")
        assert main(["lms", "push", LAB]) == 0
        assert platform.posts("/scores") == posted == len(rows)
        assert f"0 sent, {len(rows)} unchanged" in capsys.readouterr().out

"""Scores into nbgrader's real gradebook; real `nbgrader generate_feedback` and `nbgrader export` read them.

One tiny course is built per module (every nbgrader command costs seconds): a source notebook with
two autograded grade cells (`add`, 2 points; `scale`, 3 points) and a hand-graded answer (1 point).
"""

from __future__ import annotations

import csv
import html
import re
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Grade, Gradebook

from introdl.grading.course import nbgrader
from introdl.grading.errors import BadInput
from introdl.grading.hidden.runner import run_hidden_tests
from introdl.grading.record.gradebook import (
    DAMAGED_NOTE,
    LandedGrades,
    autograded_points,
    export_grades,
    generate_feedback,
    land_grades,
    report_hidden_tests,
    submission_timestamp,
)
from introdl.grading.record.results import Results, Sandbox, TestResult, results_path
from introdl.grading.submission import grade_points
from tests.fixtures.notebook_student import NotebookStudent

REPO = Path(__file__).resolve().parents[1]
SUITE = Path(__file__).parent / "fixtures" / "grader_tests_example"
LAB = "lab_example"
STAMP = "2026-11-02 10:00:00.000000 UTC"


def nbgrader_meta(
    grade_id: str, *, grade: bool, solution: bool, points: float = 0
) -> dict[str, object]:
    meta: dict[str, object] = {
        "grade": grade,
        "grade_id": grade_id,
        "locked": not solution,
        "schema_version": 3,
        "solution": solution,
        "task": False,
    }
    if grade:
        meta["points"] = points
    return {"nbgrader": meta}


def source_notebook() -> nbformat.NotebookNode:
    code, md = nbformat.v4.new_code_cell, nbformat.v4.new_markdown_cell
    cells = [
        md("# Example lab\n\nWrite `add` and `scale`."),
        code(
            "def add(a, b):\n    ### BEGIN SOLUTION\n    return a + b\n    ### END SOLUTION",
            metadata=nbgrader_meta("add_solution", grade=False, solution=True),
        ),
        code(
            '# Public check (hidden tests score this cell)\nassert add(1, 2) == 3, "add(1, 2) should be 3"',
            metadata=nbgrader_meta("add", grade=True, solution=False, points=2),
        ),
        code(
            "def scale(x, k):\n    ### BEGIN SOLUTION\n    return [k * v for v in x]\n    ### END SOLUTION",
            metadata=nbgrader_meta("scale_solution", grade=False, solution=True),
        ),
        code(
            'assert scale([1.0, 2.0], -1.0) == [-1.0, -2.0], "scale([1, 2], -1) should be [-1, -2]"',
            metadata=nbgrader_meta("scale", grade=True, solution=False, points=3),
        ),
        md(
            "Why is `add` commutative? (graded by hand)",
        ),
        md(
            "### BEGIN SOLUTION\nBecause addition of numbers is.\n### END SOLUTION",
            metadata=nbgrader_meta("explain", grade=True, solution=True, points=1),
        ),
    ]
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    return nb


CORRECT = {
    "add_solution": "def add(a, b):\n    return a + b",
    "scale_solution": "def scale(x, k):\n    return [k * v for v in x]",
    "explain": "Because a + b = b + a.",
}
BUGGY = {
    "add_solution": "def add(a, b):\n    return int(a) + int(b)",
    "scale_solution": (
        "def scale(x, k):\n    if k < 0:\n"
        '        raise ValueError("negative scale not supported")\n    return [k * v for v in x]'
    ),
    "explain": "Because a + b = b + a.",
}


def answered(release: nbformat.NotebookNode, answers: dict[str, str]) -> nbformat.NotebookNode:
    nb = nbformat.from_dict(release)
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            cell.source = answers[grade_id]
    return nb


@dataclass
class Course:
    root: Path
    points: dict[str, float]
    first: LandedGrades  # alice, correct
    alice: LandedGrades  # alice regraded with the buggy notebook
    alice_results: Results
    bob: LandedGrades  # unreadable submission
    carol: LandedGrades  # damaged nbgrader metadata
    erin: LandedGrades  # late, under a "zero" late-penalty policy
    grade_rows: tuple[int, int]  # Grade rows after the first and after the second grading of alice
    feedback: Path
    export: Path


def grade(
    root: Path, student: str, nb: nbformat.NotebookNode, seed: int, points: dict[str, float]
) -> Results:
    double = NotebookStudent(nb)
    tests = run_hidden_tests(SUITE, double, seed=seed, points=points)
    results = Results(
        lab=LAB,
        student=student,
        seed=seed,
        max_points=points,
        sandbox=Sandbox("none", sandboxed=False),
        tests=tuple(tests),
    )
    results.write(results_path(root, student, LAB))
    return results


def count_grades(root: Path) -> int:
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        return int(gb.db.query(Grade).count())


def released_course(root: Path) -> tuple[nbformat.NotebookNode, dict[str, float]]:
    """A course at ROOT with the source notebook released by real nbgrader: (release, points)."""
    shutil.copy(REPO / "nbgrader_config.py", root / "nbgrader_config.py")
    (root / "source" / LAB).mkdir(parents=True)
    nbformat.write(source_notebook(), root / "source" / LAB / f"{LAB}.ipynb")
    nbgrader("generate_assignment", LAB, "--force", "--log-level=WARN", cwd=root)
    release = nbformat.read(root / "release" / LAB / f"{LAB}.ipynb", as_version=4)
    return release, autograded_points(root, LAB)


@pytest.fixture(scope="module")
def course(tmp_path_factory: pytest.TempPathFactory) -> Course:
    root = tmp_path_factory.mktemp("course")
    release, points = released_course(root)

    submitted = root / "submitted" / "alice" / LAB
    submitted.mkdir(parents=True)
    (submitted / "timestamp.txt").write_text(STAMP + "\n")

    correct = answered(release, CORRECT)
    nbformat.write(correct, submitted / f"{LAB}.ipynb")
    first_results = grade(root, "alice", correct, seed=1, points=points)
    first = land_grades(root, LAB, "alice", NotebookStudent(correct).executed, first_results)
    rows_first = count_grades(root)

    buggy = answered(release, BUGGY)
    nbformat.write(buggy, submitted / f"{LAB}.ipynb")
    alice_results = grade(root, "alice", buggy, seed=2, points=points)
    alice = land_grades(root, LAB, "alice", NotebookStudent(buggy).executed, alice_results)
    rows_second = count_grades(root)

    bob_results = Results(
        lab=LAB,
        student="bob",
        seed=3,
        max_points=points,
        sandbox=Sandbox("bwrap", sandboxed=True),
        errors=("notebook is not valid JSON",),
    )
    bob = land_grades(root, LAB, "bob", None, bob_results)

    damaged = answered(release, CORRECT)
    for cell in damaged.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "scale":
            del cell.metadata.nbgrader["grade_id"]
    carol_results = grade(root, "carol", damaged, seed=4, points=points)
    carol = land_grades(root, LAB, "carol", NotebookStudent(damaged).executed, carol_results)

    # A late submission under the course's late policy (set here, after the others are graded).
    with (root / "nbgrader_config.py").open("a") as fh:
        fh.write('\nc.LateSubmissionPlugin.penalty_method = "zero"\n')
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        gb.update_or_create_assignment(LAB, duedate="2026-11-03 00:00:00 UTC")
    erin_results = grade(root, "erin", correct, seed=5, points=points)
    erin = land_grades(
        root,
        LAB,
        "erin",
        NotebookStudent(correct).executed,
        erin_results,
        timestamp=datetime(2026, 11, 4, 9),
    )

    feedback = generate_feedback(root, LAB, "alice")
    export = export_grades(root, root / "exports" / "grades.csv")
    return Course(
        root=root,
        points=points,
        first=first,
        alice=alice,
        alice_results=alice_results,
        bob=bob,
        carol=carol,
        erin=erin,
        grade_rows=(rows_first, rows_second),
        feedback=feedback,
        export=export,
    )


def test_hidden_tests_score_the_autograded_grade_cells_only(course: Course) -> None:
    """Which grade cells do hidden tests score? The code grade cells, not the hand-graded answer."""
    assert course.points == {"add": 2.0, "scale": 3.0}
    nb = nbformat.read(course.root / "source" / LAB / f"{LAB}.ipynb", as_version=4)
    assert grade_points(nb) == course.points


def test_gradebook_holds_the_scores_the_hidden_tests_earned(course: Course) -> None:
    """Are the auto scores per grade cell in the gradebook exactly the hidden tests' scores?"""
    earned = {g.grade_id: g.score for g in course.alice_results.grades().values()}
    assert earned == {"add": 1.0, "scale": 1.0}
    with Gradebook(f"sqlite:///{course.root / 'gradebook.db'}") as gb:
        notebook = gb.find_submission_notebook(LAB, LAB, "alice")
        stored = {g.name: g.auto_score for g in notebook.grades}
        assert stored == {**earned, "explain": None}
        assert {g.name for g in notebook.grades if g.needs_manual_grade} == {"explain"}
        assert gb.find_submission(LAB, "alice").timestamp == datetime(2026, 11, 2, 10, 0, 0)
    assert submission_timestamp(course.root, LAB, "alice") == datetime(2026, 11, 2, 10, 0, 0)
    assert course.alice.scores == stored
    assert course.alice.score == 2.0
    assert course.alice.max_score == 6.0
    assert course.alice.late_penalty == 0.0


def test_regrading_replaces_scores_without_duplicates(course: Course) -> None:
    """Does grading a submission again replace its scores rather than add rows?"""
    assert course.first.scores == {"add": 2.0, "scale": 3.0, "explain": None}
    assert course.alice.scores["add"] == 1.0
    assert course.grade_rows[0] == course.grade_rows[1]


def test_scores_come_from_hidden_tests_not_cell_errors(course: Course) -> None:
    """Does a grade cell whose public check raised still get the points its hidden tests earned?"""
    nb = nbformat.read(course.alice.notebook, as_version=4)
    scale = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "scale")
    kinds = [o.output_type for o in scale.outputs]
    assert "error" not in kinds
    assert kinds[-2:] == ["stream", "execute_result"]
    assert "ValueError: negative scale not supported" in scale.outputs[0].text
    report = scale.outputs[-2].text
    assert report.splitlines() == [
        "Hidden tests for 'scale': 1 of 3 points",
        "  FAILED  test_scale_matches_reference_on_random_vectors: StudentError: scale raised ValueError: negative scale not supported",
        "  PASSED  test_scale_keeps_length",
    ]
    assert scale.outputs[-1].data["text/plain"] == "1.0"
    assert (
        (course.alice.notebook.parent / "timestamp.txt")
        .read_text()
        .startswith("2026-11-02 10:00:00")
    )


def test_unreadable_submission_scores_zero_and_says_why(course: Course) -> None:
    """Does a submission that could not be run get zeros and a reason, on the released notebook?"""
    assert course.bob.scores == {"add": 0.0, "scale": 0.0, "explain": 0.0}
    text = course.bob.notebook.read_text()
    assert "NOT GRADED  notebook is not valid JSON" in text
    assert "Because addition of numbers is." not in text  # the source's solution never shows


def test_damaged_grading_metadata_falls_back_to_the_release(course: Course) -> None:
    """Does a notebook with damaged nbgrader metadata still get its hidden-test scores?"""
    assert course.carol.scores["add"] == 2.0
    assert course.carol.scores["scale"] == 3.0
    assert DAMAGED_NOTE.split("(")[0] in course.carol.notebook.read_text()


def test_late_submissions_get_the_course_late_penalty(course: Course) -> None:
    """Does nbgrader's late-penalty plugin apply to hidden-test scores, with an explicit timestamp?"""
    assert course.erin.scores == {"add": 2.0, "scale": 3.0, "explain": None}
    assert course.erin.late_penalty == 5.0
    assert course.erin.score == 0.0
    assert course.erin.timestamp == datetime(2026, 11, 4, 9)
    assert (
        course.erin.notebook.parent / "timestamp.txt"
    ).read_text() == "2026-11-04 09:00:00.000000 UTC\n"
    assert course.alice.late_penalty == 0.0


def test_feedback_shows_test_names_and_messages_but_no_test_source(course: Course) -> None:
    """Does the real feedback HTML show each hidden test's name and message, and none of its source?"""
    raw = course.feedback.read_text(encoding="utf-8")
    text = html.unescape(re.sub(r"<[^>]+>", "", raw))
    for test in course.alice_results.tests:
        assert test.name in text
        if test.output:
            assert test.output in text
    assert "Hidden tests for 'add': 1 of 2 points" in text
    leaked = [line for line in hidden_source_lines() if line in text or line in raw]
    assert leaked == []
    assert str(SUITE) not in raw


def test_export_csv_has_the_hidden_test_totals(course: Course) -> None:
    """Does the real `nbgrader export` CSV carry each student's hidden-test score?"""
    rows = {row["student_id"]: row for row in csv.DictReader(course.export.open())}
    assert {s: float(rows[s]["raw_score"]) for s in ("alice", "bob", "carol", "erin")} == {
        "alice": 2.0,
        "bob": 0.0,
        "carol": 5.0,
        "erin": 5.0,
    }
    assert float(rows["erin"]["late_submission_penalty"]) == 5.0
    assert float(rows["erin"]["score"]) == 0.0
    assert float(rows["alice"]["max_score"]) == 6.0
    assert rows["alice"]["timestamp"].startswith("2026-11-02 10:00:00")


def test_results_for_another_version_of_the_lab_are_refused(course: Course) -> None:
    """Are results graded against different grade cells refused instead of landing wrong scores?"""
    stale = Results(LAB, "dave", 0, {"add": 2.0}, Sandbox("none", sandboxed=False))
    with pytest.raises(BadInput, match="the source notebook changed since grading, so regrade"):
        land_grades(course.root, LAB, "dave", None, stale)
    with pytest.raises(BadInput, match="run `nbgrader generate_assignment lab_nope`"):
        autograded_points(course.root, "lab_nope")


def hidden_source_lines() -> list[str]:
    """Code lines of the hidden suite that a leak would show (imports and docstrings excluded:
    a student's notebook may share them)."""
    lines: list[str] = []
    for path in (SUITE / "test_example.py", SUITE / "reference.py"):
        text = path.read_text(encoding="utf-8")
        body = text.split('"""', 2)[-1] if text.lstrip().startswith('"""') else text
        for line in body.splitlines():
            s = line.strip()
            if len(s) >= 8 and not s.startswith(("#", "import ", "from ", '"""')):
                lines.append(s)
    assert len(lines) > 10
    return lines


def test_report_lists_tests_and_hides_what_is_marked_hidden() -> None:
    """What does a grade cell show for visible, hidden and never-run tests?"""
    cells = [
        nbformat.v4.new_code_cell(
            "check_a()", metadata=nbgrader_meta("a", grade=True, solution=False, points=2)
        ),
        nbformat.v4.new_code_cell(
            "check_b()", metadata=nbgrader_meta("b", grade=True, solution=False, points=1)
        ),
    ]
    cells[0].outputs = [nbformat.v4.new_output("stream", name="stderr", text="a warning\n")]
    nb = nbformat.v4.new_notebook(cells=cells)
    results = Results(
        LAB,
        "s",
        0,
        {"a": 2.0, "b": 1.0},
        Sandbox("none", sandboxed=False),
        tests=(
            TestResult("test_visible", "a", 1.0, 1.0, "passed"),
            TestResult(
                "test_secret",
                "a",
                0.0,
                1.0,
                "failed",
                output="the secret is 42",
                visibility="hidden",
            ),
        ),
        errors=("the kernel died",),
    )
    report_hidden_tests(nb, results)
    a, b = nb.cells
    assert [o.output_type for o in a.outputs] == ["stream", "stream", "execute_result"]
    assert a.outputs[0].name == "stdout"
    assert a.outputs[1].text == (
        "Hidden tests for 'a': 1 of 2 points\n  PASSED  test_visible\n  FAILED  hidden test 2\n"
    )
    assert a.outputs[2].data == {"text/plain": "1.0"}
    assert (
        b.outputs[0].text == "Hidden tests for 'b': 0 of 1 points\n  NOT GRADED  the kernel died\n"
    )

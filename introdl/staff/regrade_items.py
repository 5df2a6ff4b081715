"""What a student may ask to have regraded, and where its score lives.

Items come from the student's own graded results only: each hidden test of
`autograded/<student>/<lab>/results.json` (batch grading writes it) and each manually graded
cell of the lab in nbgrader's gradebook. A test whose visibility is `hidden` is named as the
feedback names it ("<grade cell>: hidden test N"), never by its real name.

A staff answer that changes a score lands in nbgrader's gradebook as the manual score of the grade
cell: for a hidden test, the cell's score with that test's points replaced; for a hand-graded
cell, the new score itself. nbgrader then uses it in place of the automatic score.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from introdl.grading.api import Results, TestResult, course_directory, open_gradebook, results_path


@dataclass(frozen=True)
class Item:
    """One gradable thing: a hidden test ('test') or a hand-graded cell ('cell')."""

    key: str  # what the request stores and the student sees
    kind: str
    grade_id: str
    score: float
    max_score: float
    test: str = ""  # the hidden test's real name (staff only)


def test_items(results: Results) -> list[Item]:
    """Each hidden test of RESULTS, keyed as its feedback shows it."""
    items = []
    for grade in results.grades().values():
        for index, test in enumerate(grade.tests, 1):
            items.append(
                Item(
                    test_key(grade.grade_id, index, test),
                    "test",
                    grade.grade_id,
                    test.score,
                    test.max_score,
                    test.name,
                )
            )
    return items


def test_key(grade_id: str, index: int, test: TestResult) -> str:
    return f"{grade_id}: hidden test {index}" if test.visibility == "hidden" else test.name


def read_results(course: Path, student: str, lab: str) -> Results | None:
    path = results_path(course, student, lab)
    if not path.is_file():
        return None
    try:
        return Results.read(path)
    except ValueError:
        return None


def cell_items(course: Path, student: str, lab: str) -> list[Item]:
    """STUDENT's hand-graded cells of LAB in the gradebook (none when not in it)."""
    coursedir = course_directory(course)
    try:
        with open_gradebook(coursedir) as gb:
            notebook = gb.find_notebook(lab, lab)
            manual = {c.name for c in notebook.solution_cells}
            manual |= {c.name for c in notebook.grade_cells if c.cell_type == "markdown"}
            submitted = gb.find_submission_notebook(lab, lab, student)
            return [
                Item(g.name, "cell", g.name, float(g.score or 0.0), float(g.max_score))
                for g in submitted.grades
                if g.name in manual
            ]
    except Exception:  # no gradebook, lab or submission: nothing hand-graded to ask about
        return []


def items_of(course: Path, student: str, lab: str) -> dict[str, Item]:
    """Every item STUDENT may ask about in LAB, by key (empty when the lab is not graded)."""
    results = read_results(course, student, lab)
    found = test_items(results) if results is not None else []
    found += cell_items(course, student, lab)
    return {item.key: item for item in found}


def set_score(
    course: Path, student: str, lab: str, item: Item, current: float, new: float
) -> tuple[float, float]:
    """Land NEW as ITEM's score in the gradebook (the grade cell's manual score; CURRENT: the
    item's score now, e.g. an earlier answer's); returns the cell's score before and after."""
    coursedir = course_directory(course)
    with open_gradebook(coursedir) as gb:
        grade = gb.find_grade(item.grade_id, lab, lab, student)
        before = float(grade.score or 0.0)
        cell = new if item.kind == "cell" else before - current + new
        cell = min(max(cell, 0.0), float(grade.max_score))
        grade.manual_score = cell
        gb.db.commit()
        return before, cell


def clear_manual(course: Path, student: str, lab: str, grade_id: str) -> float | None:
    """Drop a grade cell's manual score (a rerun's new automatic score counts); the old one."""
    with open_gradebook(course_directory(course)) as gb:
        grade = gb.find_grade(grade_id, lab, lab, student)
        old = None if grade.manual_score is None else float(grade.manual_score)
        grade.manual_score = None
        gb.db.commit()
        return old

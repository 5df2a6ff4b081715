"""Scores into nbgrader's gradebook, so formgrader, `generate_feedback` and `export` work unchanged.

`land_grades` takes a graded submission (the executed student notebook and its `Results`) and
does what `nbgrader autograde` would have done after execution, with nbgrader's own classes:

1. the student and the submission (with the `timestamp.txt` of `nbgrader collect`) are created or
   updated in the gradebook; a regrade updates the same rows, so scores are replaced, never doubled;
2. the notebook is sanitized by nbgrader's preprocessors (duplicate ids, the source's kernelspec,
   locked and grade cells restored from the source, deleted grade cells added back);
3. each autograded grade cell gets two outputs in place of a score nbgrader would compute from
   errors: a plain-text list of its hidden tests (name, status, authored message) and an
   `execute_result` holding the score, which nbgrader reads as partial credit;
4. nbgrader's `SaveAutoGrades` and `AssignLatePenalties` (late.py: the course's policy, staff's
   extension copied in first) store the scores and late penalty; the notebook is written to
   `autograded/<student>/<lab>/<lab>.ipynb`, made inert first (inert.py: only text and plain
   images of the student's outputs, their markdown as text): formgrader and feedback show it.

Only the coordinating process calls `land_grades`: the gradebook is a SQLite file by default, and
worker processes (which run student code next door) never open it.
"""

from __future__ import annotations

import copy
import os
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import nbformat
from nbconvert.exporters.exporter import ResourcesDict
from nbformat import NotebookNode
from nbgrader import utils as nbutils
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.coursedir import CourseDirectory
from nbgrader.nbgraderformat import ValidationError
from nbgrader.preprocessors import (
    AssignLatePenalties,
    CheckCellMetadata,
    ClearOutput,
    DeduplicateIds,
    LimitOutput,
    OverwriteCells,
    OverwriteKernelspec,
    SaveAutoGrades,
)
from sqlalchemy.exc import SAWarning

from introdl.grading.course import course_config, nbgrader
from introdl.grading.errors import BadInput
from introdl.grading.record.inert import inert_notebook, instructor_cells
from introdl.grading.record.late import apply_staff_extension
from introdl.grading.record.results import Results, TestResult

# nbformat's helpers are untyped; these names give them types once.
new_output: Callable[..., NotebookNode] = nbformat.v4.new_output
new_markdown_cell: Callable[..., NotebookNode] = nbformat.v4.new_markdown_cell
read_notebook: Callable[..., NotebookNode] = nbformat.read
write_notebook: Callable[..., None] = nbformat.write

# nbgrader's add_submission trips SQLAlchemy's autoflush warning (nbgrader autograde does too).
# Filtered once, at import: `warnings.catch_warnings` is not thread-safe, and the batch lands
# results on a thread of its own while the next submission's hidden tests run under pytest.
warnings.filterwarnings("ignore", category=SAWarning)

DAMAGED_NOTE = (
    "**Grading note:** the nbgrader metadata of the submitted notebook was damaged ({error}), so "
    "this feedback shows the released notebook instead of your outputs. Your score comes from the "
    "hidden tests, which ran on your submission as usual."
)


@dataclass(frozen=True)
class LandedGrades:
    """What the gradebook holds for one submission after `land_grades`."""

    notebook: Path
    scores: dict[str, float | None]  # grade cell -> auto score (None: needs manual grading)
    score: float  # notebook score after the late penalty
    max_score: float
    late_penalty: float
    timestamp: datetime | None


def course_directory(course_root: Path) -> Any:
    """nbgrader's CourseDirectory for the course at COURSE_ROOT (paths, db_url, course id)."""
    config = course_config(course_root)
    coursedir = CourseDirectory(config=config)
    if not coursedir.root or Path(coursedir.root).resolve() != course_root.resolve():
        coursedir.root = str(course_root)
    return coursedir


def open_gradebook(coursedir: Any) -> Gradebook:
    return Gradebook(coursedir.db_url, coursedir.course_id)


def autograded_points(
    course_root: Path, lab: str, notebook_id: str | None = None
) -> dict[str, float]:
    """{grade_id: points} of the grade cells the hidden tests score: code grade cells that are not
    also solution cells (those are graded by hand), as `nbgrader generate_assignment` recorded them."""
    coursedir = course_directory(course_root)
    with open_gradebook(coursedir) as gb:
        notebook = _find_notebook(gb, lab, notebook_id or lab, course_root)
        manual = {cell.name for cell in notebook.solution_cells}
        return {
            cell.name: float(cell.max_score)
            for cell in notebook.grade_cells
            if cell.cell_type == "code" and cell.name not in manual
        }


def submission_timestamp(course_root: Path, lab: str, student: str) -> datetime | None:
    """The time in `submitted/<student>/<lab>/timestamp.txt` (written by `nbgrader collect`)."""
    coursedir = course_directory(course_root)
    folder = coursedir.format_path(coursedir.submitted_directory, student, lab)
    stamp: datetime | None = coursedir.get_existing_timestamp(folder)
    return stamp


def sanitize_submission(
    course_root: Path,
    lab: str,
    student: str,
    notebook: NotebookNode,
    *,
    clear_outputs: bool = True,
    notebook_id: str | None = None,
) -> NotebookNode:
    """nbgrader's sanitizing steps on a copy of NOTEBOOK (what `nbgrader autograde` does before it
    executes): outputs cleared, duplicate grade ids dropped, the source's kernelspec, locked and
    grade cells restored from the source, deleted grade cells added back.

    Raises nbgrader's ValidationError when the nbgrader metadata is damaged beyond repair.
    """
    coursedir = course_directory(course_root)
    resources = _resources(coursedir, lab, student, notebook_id or lab)
    steps: list[Any] = [ClearOutput] if clear_outputs else []
    steps += [DeduplicateIds, OverwriteKernelspec, OverwriteCells, CheckCellMetadata]
    nb = copy.deepcopy(notebook)
    for step in steps:
        kwargs = {"add_missing_cells": True} if step is OverwriteCells else {}
        nb, resources = step(config=coursedir.config, **kwargs)(nb, resources)
    return nb


def land_grades(
    course_root: Path,
    lab: str,
    student: str,
    notebook: NotebookNode | None,
    results: Results,
    *,
    timestamp: datetime | None = None,
    notebook_id: str | None = None,
) -> LandedGrades:
    """Store RESULTS as STUDENT's autograded scores for LAB and write the autograded notebook.

    NOTEBOOK is the executed student notebook (None when the submission could not be read: the
    released notebook stands in). TIMESTAMP defaults to the submission's `timestamp.txt`.
    Call this from the coordinating process only (see the module docstring).
    """
    notebook_id = notebook_id or lab
    if (results.lab, results.student) != (lab, student):
        raise ValueError(
            f"results are for {results.student}/{results.lab}, not {student}/{lab}; pass the matching results.json"
        )
    coursedir = course_directory(course_root)
    points = autograded_points(course_root, lab, notebook_id)
    if dict(results.max_points) != points:
        raise BadInput(
            f"the results for {student}/{lab} were graded against grade cells {dict(results.max_points)} "
            f"but the gradebook has {points}; the source notebook changed since grading, so regrade"
        )
    submitted = Path(coursedir.format_path(coursedir.submitted_directory, student, lab))
    if timestamp is None:
        timestamp = coursedir.get_existing_timestamp(str(submitted))
    if timestamp is not None:
        timestamp = nbutils.parse_utc(timestamp)  # naive UTC, as the gradebook stores it

    with open_gradebook(coursedir) as gb:
        gb.update_or_create_student(student)
        if timestamp is not None:
            gb.update_or_create_submission(lab, student, timestamp=timestamp)
        else:
            gb.update_or_create_submission(lab, student)
        apply_staff_extension(gb, coursedir.config, lab, student)  # before the penalty

    nb = _sanitized_or_release(course_root, coursedir, lab, student, notebook, notebook_id)
    resources = _resources(coursedir, lab, student, notebook_id)
    nb, resources = LimitOutput(config=coursedir.config)(nb, resources)
    report_hidden_tests(nb, results)
    nb, resources = SaveAutoGrades(config=coursedir.config)(nb, resources)
    nb, resources = AssignLatePenalties(config=coursedir.config)(nb, resources)

    out_dir = Path(coursedir.format_path(coursedir.autograded_directory, student, lab))
    out = out_dir / f"{notebook_id}.ipynb"
    _write_notebook(out, inert_notebook(nb, _instructor_cells(coursedir, lab, notebook_id)))
    _write_timestamp(out_dir, timestamp)

    with open_gradebook(coursedir) as gb:
        submitted_nb = gb.find_submission_notebook(notebook_id, lab, student)
        penalty = float(submitted_nb.late_submission_penalty or 0.0)
        return LandedGrades(
            notebook=out,
            scores={grade.name: grade.auto_score for grade in submitted_nb.grades},
            score=float(submitted_nb.score) - penalty,
            max_score=float(submitted_nb.max_score),
            late_penalty=penalty,
            timestamp=timestamp,
        )


def report_hidden_tests(nb: NotebookNode, results: Results) -> None:
    """Put each autograded grade cell's hidden-test report and score into its outputs (in place).

    The student's own outputs stay, made harmless for nbgrader's scoring: errors become a line of
    text, stderr becomes stdout, results become displays. Then come the report and the score.
    """
    grades = results.grades()
    unrun = "; ".join(results.errors) or "no hidden test ran for this cell"
    for cell in nb.cells:
        if cell.cell_type != "code" or not nbutils.is_grade(cell):
            continue
        grade = grades.get(cell.metadata.nbgrader["grade_id"])
        if grade is None:
            continue  # graded by hand, not by the hidden tests
        outputs = [_harmless(output) for output in cell.get("outputs", [])]
        lines = [
            f"Hidden tests for {grade.grade_id!r}: {grade.score:g} of {grade.max_score:g} points"
        ]
        lines += [_report_line(i, test) for i, test in enumerate(grade.tests, 1)]
        if not grade.tests:
            lines.append(f"  NOT GRADED  {unrun}")
        outputs.append(new_output("stream", name="stdout", text="\n".join(lines) + "\n"))
        # nbgrader's determine_grade reads a lone number in an execute_result as partial credit.
        outputs.append(
            new_output(
                "execute_result",
                data={"text/plain": repr(float(grade.score))},
                execution_count=cell.get("execution_count"),
            )
        )
        cell.outputs = outputs


def generate_feedback(
    course_root: Path, lab: str, student: str, notebook_id: str | None = None
) -> Path:
    """Run the real `nbgrader generate_feedback LAB --student STUDENT --force`; the HTML's path."""
    nbgrader(
        "generate_feedback",
        lab,
        "--student",
        student,
        "--force",
        "--log-level=WARN",
        cwd=course_root,
    )
    coursedir = course_directory(course_root)
    html = (
        Path(coursedir.format_path(coursedir.feedback_directory, student, lab))
        / f"{notebook_id or lab}.html"
    )
    if not html.is_file():
        raise BadInput(f"nbgrader generate_feedback made no {html}; is {student}/{lab} autograded?")
    return html


def export_grades(course_root: Path, csv_path: Path) -> Path:
    """Run the real `nbgrader export` into CSV_PATH (one row per student and assignment)."""
    csv_path = csv_path.resolve()
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    nbgrader("export", f"--to={csv_path}", "--log-level=WARN", cwd=course_root)
    return csv_path


def _report_line(index: int, test: TestResult) -> str:
    if test.visibility == "hidden":
        return f"  {test.status.upper():<7} hidden test {index}"
    line = f"  {test.status.upper():<7} {test.name}"
    if test.output:
        message = test.output.replace("\n", "\n" + " " * 10)
        line += f": {message}"
    return line


def _harmless(output: NotebookNode) -> NotebookNode:
    """The student's output in a form that nbgrader does not read as a score."""
    kind = output.get("output_type")
    if kind == "error":
        text = f"{output.get('ename', 'Error')}: {output.get('evalue', '')}\n"
        return new_output("stream", name="stdout", text=text)
    if kind == "stream" and output.get("name") == "stderr":
        return new_output("stream", name="stdout", text=output.get("text", ""))
    if kind == "execute_result":
        return new_output(
            "display_data", data=output.get("data", {}), metadata=output.get("metadata", {})
        )
    return output


def _sanitized_or_release(
    course_root: Path,
    coursedir: Any,
    lab: str,
    student: str,
    notebook: NotebookNode | None,
    notebook_id: str,
) -> NotebookNode:
    """The sanitized submission; the released notebook when there is none or it is damaged."""
    error = ""
    if notebook is not None:
        try:
            return sanitize_submission(
                course_root, lab, student, notebook, clear_outputs=False, notebook_id=notebook_id
            )
        except (ValidationError, KeyError, ValueError, TypeError, AttributeError) as err:
            error = f"{type(err).__name__}: {err}".splitlines()[0][:200]
    release = _release_path(coursedir, lab, notebook_id)
    try:
        stand_in = read_notebook(release, as_version=4)
    except (OSError, ValueError) as err:
        raise BadInput(
            f"{release} is needed to grade {student}'s unreadable {lab} but cannot be read ({err}); "
            f"run `introdl release {lab}`"
        ) from err
    nb = sanitize_submission(
        course_root, lab, student, stand_in, clear_outputs=True, notebook_id=notebook_id
    )
    if error:
        nb.cells.insert(0, new_markdown_cell(DAMAGED_NOTE.format(error=error)))
    return nb


def _release_path(coursedir: Any, lab: str, notebook_id: str) -> Path:
    return (
        Path(coursedir.format_path(coursedir.release_directory, ".", lab)) / f"{notebook_id}.ipynb"
    )


def _instructor_cells(coursedir: Any, lab: str, notebook_id: str) -> list[tuple[str, str]]:
    """The released notebook's own markdown and raw cells; none when it cannot be read (then
    every markdown cell is shown as text, which is safe)."""
    try:
        return instructor_cells(read_notebook(_release_path(coursedir, lab, notebook_id), 4))
    except (OSError, ValueError):
        return []


def _find_notebook(gb: Gradebook, lab: str, notebook_id: str, course_root: Path) -> Any:
    try:
        return gb.find_notebook(notebook_id, lab)
    except MissingEntry as err:
        raise BadInput(
            f"the gradebook of {course_root} has no notebook {notebook_id} in assignment {lab}; "
            f"run `nbgrader generate_assignment {lab}` in {course_root} first"
        ) from err


def _resources(coursedir: Any, lab: str, student: str, notebook_id: str) -> ResourcesDict:
    resources = ResourcesDict()
    resources["nbgrader"] = {
        "notebook": notebook_id,
        "assignment": lab,
        "student": student,
        "db_url": coursedir.db_url,
    }
    return resources


def _write_notebook(path: Path, nb: NotebookNode) -> None:
    """Write atomically: formgrader may be reading the previous version."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            write_notebook(nb, fh)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_timestamp(out_dir: Path, timestamp: datetime | None) -> None:
    """Keep timestamp.txt beside the autograded notebook, as `nbgrader autograde` does (feedback
    copies it on to the student)."""
    target = out_dir / "timestamp.txt"
    if timestamp is None:
        target.unlink(missing_ok=True)
    else:
        # The format of nbgrader's exchange; TIMESTAMP is naive UTC (see land_grades).
        target.write_text(timestamp.strftime("%Y-%m-%d %H:%M:%S.%f UTC") + "\n", encoding="utf-8")

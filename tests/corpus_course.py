"""The one-exercise course of the grading-engine tests: a source notebook, its release, submissions.

Its hidden suite is tests/fixtures/corpus_course/grader_tests/corpus; the notebook needs no
TensorFlow, so a submission grades in a couple of seconds.
"""

from __future__ import annotations

import copy
import shutil
from collections.abc import Callable
from pathlib import Path

import nbformat
from nbformat import NotebookNode
from nbformat.v4 import new_code_cell, new_notebook

from introdl.grading.course import nbgrader

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "corpus_course"
LAB = "corpus"


def source_notebook() -> NotebookNode:
    def meta(gid: str, **kw: object) -> dict[str, object]:
        base = {
            "grade_id": gid,
            "schema_version": 3,
            "solution": False,
            "grade": False,
            "locked": True,
            "task": False,
        }
        return {"nbgrader": {**base, **kw}}

    return new_notebook(
        cells=[
            new_code_cell("import numpy as np", metadata=meta("setup")),
            new_code_cell(
                "def add(a, b):\n    ### BEGIN SOLUTION\n    return a + b\n    ### END SOLUTION",
                metadata=meta("add_answer", solution=True, locked=False),
            ),
            new_code_cell("assert add(1, 2) == 3", metadata=meta("add", grade=True, points=2)),
        ],
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
    )


def answer(release: NotebookNode, body: str = "return a + b") -> NotebookNode:
    nb = copy.deepcopy(release)
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "add_answer":
            cell.source = f"def add(a, b):\n    {body}"
    return nb


def with_cell(release: NotebookNode, code: str, *, first: bool = False) -> NotebookNode:
    nb = answer(release)
    cell = new_code_cell(code)
    if first:
        nb.cells.insert(1, cell)
    else:
        nb.cells.append(cell)
    return nb


def build_course(course: Path) -> NotebookNode:
    """Write the course under COURSE (config, hidden suite, source), release it; return the release."""
    (course / "source" / LAB).mkdir(parents=True)
    shutil.copy(ROOT / "nbgrader_config.py", course / "nbgrader_config.py")
    shutil.copytree(FIXTURE / "grader_tests", course / "grader_tests")
    nbformat.write(source_notebook(), course / "source" / LAB / f"{LAB}.ipynb")
    nbgrader("generate_assignment", LAB, "--force", "--log-level=WARN", cwd=course)
    return nbformat.read(course / "release" / LAB / f"{LAB}.ipynb", as_version=4)


def submit(course: Path, student: str, what: NotebookNode | bytes | Callable[[Path], None]) -> None:
    """Put STUDENT's submission where `nbgrader collect` would: a notebook, raw bytes, or a writer."""
    folder = course / "submitted" / student / LAB
    folder.mkdir(parents=True)
    (folder / "timestamp.txt").write_text("2026-11-23 09:00:00.000000 UTC")
    if callable(what):
        what(folder)
    elif isinstance(what, bytes):
        (folder / f"{LAB}.ipynb").write_bytes(what)
    else:
        nbformat.write(what, folder / f"{LAB}.ipynb")

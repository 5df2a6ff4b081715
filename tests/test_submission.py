"""Is an untrusted submission read safely and repaired before it reaches the sandbox?"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from introdl.grading.submission import (
    SubmissionError,
    check_lab,
    prepare_workdir,
    read_notebook,
    restore_locked_cells,
    submission_at,
)


def tagged(cell, gid: str, *, solution: bool = False, grade: bool = False, points: int = 0):
    cell.metadata["nbgrader"] = {
        "grade_id": gid,
        "solution": solution,
        "grade": grade,
        "locked": not solution,
        "schema_version": 3,
        "task": False,
        **({"points": points} if grade else {}),
    }
    return cell


def release_nb():
    return new_notebook(
        cells=[
            tagged(new_markdown_cell("Intro"), "intro"),
            tagged(
                new_code_cell(
                    "def f(x):\n    # TODO: your code here\n    raise NotImplementedError"
                ),
                "f_answer",
                solution=True,
            ),
            tagged(new_code_cell("check.f(f)"), "f_check", grade=True, points=2),
            tagged(
                new_code_cell("def g():\n    raise NotImplementedError"), "g_answer", solution=True
            ),
            tagged(new_code_cell("check.g(g)"), "g_check", grade=True, points=1),
        ]
    )


def test_edited_locked_cell_is_restored_and_answers_kept() -> None:
    """Does editing a public check give back the released check, while the answer stays the student's?"""
    student = release_nb()
    student.cells[1].source = "def f(x):\n    return 2 * x"
    student.cells[2].source = "pass  # deleted the check"
    repaired, notes = restore_locked_cells(student, release_nb())
    assert repaired.cells[1].source == "def f(x):\n    return 2 * x"
    assert repaired.cells[2].source == "check.f(f)"
    assert any("f_check" in n and "edited" in n for n in notes)


def test_untouched_submission_needs_no_repair(tmp_path: Path) -> None:
    """Does a submission read from disk, with its locked cells as released, report no repairs?"""
    nbformat.write(release_nb(), tmp_path / "lab.ipynb")
    _, notes = restore_locked_cells(read_notebook(tmp_path / "lab.ipynb"), release_nb())
    assert notes == []


def test_deleted_grade_cell_is_put_back_in_place() -> None:
    """Does a deleted grade cell come back, in the release's order?"""
    student = release_nb()
    del student.cells[2]
    repaired, notes = restore_locked_cells(student, release_nb())
    ids = [c.metadata.get("nbgrader", {}).get("grade_id") for c in repaired.cells]
    assert ids == ["intro", "f_answer", "f_check", "g_answer", "g_check"]
    assert any("f_check" in n and "missing" in n for n in notes)


def test_retagged_and_duplicated_cells_lose_their_tags() -> None:
    """Can a student claim points by retagging or duplicating a cell? (No: the tags are removed.)"""
    student = release_nb()
    student.cells.append(
        tagged(new_code_cell("print('full marks')"), "bonus", grade=True, points=100)
    )
    student.cells.append(tagged(new_code_cell("check.f(f)"), "f_check", grade=True, points=50))
    repaired, notes = restore_locked_cells(student, release_nb())
    grade_cells = [c for c in repaired.cells if c.metadata.get("nbgrader", {}).get("grade")]
    assert sorted(c.metadata.nbgrader["grade_id"] for c in grade_cells) == ["f_check", "g_check"]
    assert sum(c.metadata.nbgrader["points"] for c in grade_cells) == 3
    assert len(notes) == 2


def test_changed_cell_type_is_restored() -> None:
    """Does turning an answer cell into markdown get undone?"""
    student = release_nb()
    student.cells[1] = tagged(new_markdown_cell("def f(x): return x"), "f_answer", solution=True)
    repaired, _ = restore_locked_cells(student, release_nb())
    assert repaired.cells[1].cell_type == "code"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{ this is not json", "not a valid notebook"),
        ('{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}', "no cells"),
        ('{"cells": 3}', "not a valid notebook"),
    ],
)
def test_broken_notebooks_are_reported(tmp_path: Path, content: str, message: str) -> None:
    """Does a broken or empty notebook give a clear message instead of a crash?"""
    path = tmp_path / "lab.ipynb"
    path.write_text(content)
    with pytest.raises(SubmissionError, match=message):
        read_notebook(path)


def test_other_labs_notebook_is_rejected() -> None:
    """Is the notebook of another lab recognised as such?"""
    other = new_notebook(cells=[tagged(new_code_cell("x = 1"), "other_cell", grade=True, points=1)])
    with pytest.raises(SubmissionError, match="another lab"):
        check_lab(other, release_nb(), "lab1_tensorflow")
    other.metadata["introdl"] = {"generated_from": "source/lab2_mnist/lab2_mnist.ipynb"}
    with pytest.raises(SubmissionError, match="lab2_mnist"):
        check_lab(other, release_nb(), "lab1_tensorflow")


def test_symlinks_are_not_followed_into_the_workdir(tmp_path: Path) -> None:
    """Does a symlink pointing outside the submission stay out of the sandbox's copy?"""
    folder = tmp_path / "submitted" / "eve" / "lab1_tensorflow"
    folder.mkdir(parents=True)
    nbformat.write(release_nb(), folder / "lab1_tensorflow.ipynb")
    (folder / "notes.txt").write_text("mine")
    os.symlink("/etc/hostname", folder / "secret.txt")
    sub = submission_at(folder, "lab1_tensorflow")
    dest = tmp_path / "work"
    notes = prepare_workdir(sub, read_notebook(sub.notebook), dest)
    assert (dest / "notes.txt").read_text() == "mine"
    assert not (dest / "secret.txt").exists()
    assert any("secret.txt" in n for n in notes)
    (folder / "lab1_tensorflow.ipynb").unlink()
    os.symlink("/etc/hostname", folder / "lab1_tensorflow.ipynb")
    with pytest.raises(SubmissionError, match="symbolic link"):
        read_notebook(sub.notebook)


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap not installed")
def test_grade_refuses_a_submission_without_its_time_stamp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Is a collected folder without timestamp.txt refused in words, never graded as on time?

    (Issue 21: a collect that stopped half way left such a folder, and `introdl grade` recorded
    the late hand-in as 0 s late.) The dated classmate is graded as usual.
    """
    from nbgrader.api import Gradebook, MissingEntry

    import introdl.grading.course
    from introdl.cli import main
    from tests.corpus_course import LAB, answer, build_course, submit

    course = tmp_path / "course"
    release = build_course(course)
    for student in ("ada", "ben"):
        submit(course, student, answer(release))
    (course / "submitted" / "ben" / LAB / "timestamp.txt").unlink()
    monkeypatch.setenv("INTRODL_COURSE_ROOT", str(course))
    monkeypatch.setattr(introdl.grading.course, "LABS", (*introdl.grading.course.LABS, LAB))
    code = main(["grade", LAB, "--backend", "bwrap", "--no-warm", "--workers", "1", "--json"])
    said = capsys.readouterr()
    assert code == 0, said.err
    rows = {row["student"]: row for row in json.loads(said.out)["rows"]}
    assert rows["ada"]["status"] == "graded"
    assert rows["ada"]["score"] == 2
    assert rows["ben"]["status"] == "error"
    message = rows["ben"]["message"]
    assert f"{course / 'submitted' / 'ben' / LAB} has no timestamp.txt" in message
    assert f"nbgrader collect {LAB} --update --student ben" in message
    assert message in said.err  # said at once, whole, not only in the table
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        assert gb.find_submission(LAB, "ada").timestamp is not None
        with pytest.raises(MissingEntry):
            gb.find_submission(LAB, "ben")

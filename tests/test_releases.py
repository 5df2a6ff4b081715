"""Are the committed student releases current, free of solutions, and honest stubs?"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import nbformat
import pytest

from introdl.cli.release import generate_into
from introdl.grading.release_stamp import STAMP_CELL_ID
from tests.conftest import LABS, ROOT
from tests.notebooks import assigned_names, errors, execute, is_grade_cell

# Metadata that legitimately differs between two generations of the same release.
VOLATILE_NOTEBOOK_KEYS = {"widgets", "toc", "varInspector"}
SOLUTION_MARKERS = re.compile(
    r"BEGIN SOLUTION|END SOLUTION|BEGIN HIDDEN TESTS|END HIDDEN TESTS|BEGIN MARK SCHEME"
)


def comparable(path: Path) -> dict[str, object]:
    nb = nbformat.read(path, as_version=4)
    meta = {k: v for k, v in nb.metadata.items() if k not in VOLATILE_NOTEBOOK_KEYS}
    cells = [
        {
            "type": c.cell_type,
            "source": c.source,
            "metadata": c.get("metadata", {}),
            "id": c.get("id"),
        }
        for c in nb.cells
    ]
    return {"metadata": meta, "cells": cells}


def test_every_lab_has_a_release() -> None:
    """Does every lab with a source notebook have a committed release notebook?"""
    assert LABS, "no source notebooks found under source/"
    for lab in LABS:
        assert (ROOT / "release" / lab / f"{lab}.ipynb").is_file(), (
            f"release/{lab}/{lab}.ipynb is missing: run `make releases`"
        )


@pytest.mark.parametrize("lab", LABS)
def test_release_is_current(lab: str, tmp_path: Path) -> None:
    """Does regenerating the release from source give exactly the committed release?"""
    fresh = generate_into(ROOT, lab, tmp_path)
    committed = ROOT / "release" / lab / f"{lab}.ipynb"
    assert comparable(fresh) == comparable(committed), (
        f"release/{lab}/{lab}.ipynb is stale: the source notebook changed without regenerating. "
        "Run `make releases` and commit the result."
    )
    fresh_files = sorted(
        p.relative_to(tmp_path / "release" / lab)
        for p in (tmp_path / "release" / lab).rglob("*")
        if p.is_file()
    )
    # Tracked files only: running a release notebook in its folder (the tests do) may leave
    # git-ignored output beside it, such as the music lab's tunes/.
    tracked = subprocess.run(
        ["git", "ls-files", "--", f"release/{lab}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\n")
    committed_files = sorted(
        Path(line).relative_to(Path("release") / lab) for line in tracked if line.strip()
    )
    assert fresh_files == committed_files, (
        f"release/{lab}/ has other files than a fresh generation: {committed_files} vs {fresh_files}"
    )


@pytest.mark.parametrize("lab", LABS)
def test_release_has_no_solutions_or_hidden_material(lab: str) -> None:
    """Does the release hold no solution code, solution markers, or hidden tests?"""
    hidden_sources = [p.read_text() for p in (ROOT / "grader_tests").rglob("*.py")]
    hidden_lines = {
        line.strip()
        for text in hidden_sources
        for line in text.splitlines()
        if len(line.strip()) > 30
    }
    for path in (ROOT / "release" / lab).rglob("*"):
        if not path.is_file():
            continue
        text = path.read_text(errors="replace")
        assert not SOLUTION_MARKERS.search(text), f"{path} contains a solution marker"
        leaked = [line for line in hidden_lines if line in text]
        assert not leaked, f"{path} contains lines of the hidden tests: {leaked[:3]}"
    source = nbformat.read(ROOT / "source" / lab / f"{lab}.ipynb", as_version=4)
    release = nbformat.read(ROOT / "release" / lab / f"{lab}.ipynb", as_version=4)
    solution_cells = [
        c for c in source.cells if c.get("metadata", {}).get("nbgrader", {}).get("solution")
    ]
    assert solution_cells, f"source/{lab} has no solution cells"
    by_id = {c.metadata.get("nbgrader", {}).get("grade_id"): c for c in release.cells}
    for cell in solution_cells:
        gid = cell.metadata.nbgrader["grade_id"]
        if cell.cell_type != "code":
            continue
        answer = cell.source.split("### BEGIN SOLUTION", 1)[-1].split("### END SOLUTION", 1)[0]
        solution_lines = [ln.strip() for ln in answer.splitlines() if len(ln.strip()) > 12]
        released = by_id[gid].source
        assert "raise NotImplementedError" in released, f"release of cell {gid} has no stub"
        leaked = [ln for ln in solution_lines if ln in released]
        assert not leaked, f"release of cell {gid} still contains solution lines: {leaked[:3]}"


@pytest.mark.parametrize("lab", LABS)
def test_release_says_it_is_generated(lab: str) -> None:
    """Does the release name the source it was generated from?"""
    nb = nbformat.read(ROOT / "release" / lab / f"{lab}.ipynb", as_version=4)
    assert nb.cells[0].get("id") == STAMP_CELL_ID
    assert f"source/{lab}/{lab}.ipynb" in nb.cells[0].source
    assert nb.metadata["introdl"]["generated_from"] == f"source/{lab}/{lab}.ipynb"


@pytest.mark.parametrize("lab", LABS)
def test_untouched_release_fails_only_with_not_implemented(lab: str) -> None:
    """Run as a student would with the TODOs untouched: does every graded check fail, and only
    because of NotImplementedError (or a name a TODO cell never got to define)?"""
    nb = execute(ROOT / "release" / lab / f"{lab}.ipynb", allow_errors=True)
    undefined_by_todo: set[str] = set()
    failed_cells: set[int] = set()
    for index, cell, output in errors(nb):
        failed_cells.add(index)
        if output.ename == "NotImplementedError":
            undefined_by_todo |= assigned_names(cell.source)
            continue
        name = re.search(r"name '(\w+)' is not defined", output.evalue or "")
        cascade = (
            output.ename == "NameError" and name is not None and name.group(1) in undefined_by_todo
        )
        assert cascade, (
            f"release/{lab}: cell {index} failed with {output.ename}: {output.evalue} "
            "(an untouched release may only fail with NotImplementedError)"
        )
    grade_cells = [i for i, c in enumerate(nb.cells) if is_grade_cell(c)]
    assert grade_cells, f"release/{lab} has no graded cells"
    passing = [i for i in grade_cells if i not in failed_cells]
    assert not passing, f"release/{lab}: graded cells {passing} pass with the TODOs untouched"


@pytest.mark.parametrize("lab", LABS)
def test_source_notebook_runs_and_its_checks_pass(lab: str) -> None:
    """Does the source notebook (solutions in place) run top to bottom with every check passing?"""
    nb = execute(ROOT / "source" / lab / f"{lab}.ipynb", allow_errors=True)
    failures = [f"cell {i}: {o.ename}: {o.evalue}" for i, _, o in errors(nb)]
    assert not failures, f"source/{lab}/{lab}.ipynb fails: " + "; ".join(failures)
    for index, cell in enumerate(nb.cells):
        if is_grade_cell(cell):
            stderr = [o for o in cell.outputs if o.output_type == "stream" and o.name == "stderr"]
            assert not stderr, (
                f"source/{lab}: grade cell {index} writes to stderr (nbgrader scores it 0): {stderr[0].text[:200]}"
            )


def test_notebooks_are_stored_without_outputs() -> None:
    """Is every committed notebook free of outputs and execution counts?"""
    tracked = subprocess.run(
        ["git", "ls-files", "*.ipynb"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert tracked, "no notebooks tracked"
    for rel in tracked:
        nb = json.loads((ROOT / rel).read_text())
        for i, cell in enumerate(nb["cells"]):
            assert not cell.get("outputs"), (
                f"{rel}: cell {i} has outputs; strip them (nbstripout or `make format`)"
            )
            assert cell.get("execution_count") is None, f"{rel}: cell {i} has an execution count"


def test_the_course_image_hands_in_by_the_courses_rules(tmp_path: Path) -> None:
    """Does a student's nbgrader in the course image leave out and limit exactly what the course
    says (max_file_size, ignore list, archive limits), and is its generated copy current?"""
    from traitlets.config.loader import PyFileConfigLoader

    from introdl.hub.course_limits import STUDENT_LIMITS, course_config, student_limits_text

    committed = (ROOT / STUDENT_LIMITS).read_text()
    assert committed == student_limits_text(ROOT), (
        f"{STUDENT_LIMITS} is stale: nbgrader_config.py changed without regenerating it. "
        "Run `make releases` and commit the result."
    )
    image = PyFileConfigLoader(
        "nbgrader_config.py", path=str(ROOT / STUDENT_LIMITS.parent)
    ).load_config()
    course = course_config(ROOT)
    for key in ("max_file_size", "ignore"):
        assert image.CourseDirectory[key] == course.CourseDirectory[key], key
    assert dict(image.ExchangeService) == dict(course.ExchangeService)
    # and the student's nbgrader talks to the course's exchange, not nbgrader's shared folder
    assert image.ExchangeFactory.submit == "introdl.hub.exchange_client.Submit"
    assert image.ExchangeFactory.collect == "introdl.hub.exchange_staff.Collect"

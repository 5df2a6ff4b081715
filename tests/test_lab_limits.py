"""A lab's own grading limits (grader_tests/<lab>/limits.toml): read strictly, tighten only, and
bound grading time whatever training length a student hard-codes."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import nbformat
import pytest

from introdl.grading.errors import BadInput
from introdl.grading.grade import GradeOptions, grade_submission
from introdl.grading.sandbox.limits import DEFAULT_LIMITS, TEST_LIMITS, lab_limits
from introdl.grading.submission import submission_at
from tests.sandboxed import ROOT, needs_bwrap, test_slot

# Seconds each lab may take to grade one submission (its issue) and the sandbox start allowance.
LAB_LIMITS = {"lab1_music": 180, "lab2_mnist": 120, "lab2_debiasing": 180, "lab3_rl": 180}


def test_limits_file_tightens_and_never_loosens(tmp_path: Path) -> None:
    """Does a lab's file lower the limits it names, leave the others, and never raise one?"""
    (tmp_path / "limits.toml").write_text("cell_timeout = 45\nnotebook_timeout = 99999\n")
    limits = lab_limits(tmp_path, DEFAULT_LIMITS)
    assert limits.cell_timeout == 45
    assert limits.notebook_timeout == DEFAULT_LIMITS.notebook_timeout  # not loosened
    assert limits.call_timeout == DEFAULT_LIMITS.call_timeout
    assert lab_limits(tmp_path / "nowhere", TEST_LIMITS) is TEST_LIMITS


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("cell_timeout = ", "not valid TOML"),
        ("cel_timeout = 5", "unknown limit 'cel_timeout'"),
        ("cell_timeout = -5", "must be a positive number"),
        ('cell_timeout = "5"', "must be a positive number"),
        ("cell_timeout = true", "must be a positive number"),
    ],
)
def test_bad_limits_file_is_refused_by_name(tmp_path: Path, text: str, complaint: str) -> None:
    """Is a broken limits file an authoring error naming the file and the fault?"""
    (tmp_path / "limits.toml").write_text(text)
    with pytest.raises(BadInput, match=complaint) as err:
        lab_limits(tmp_path, DEFAULT_LIMITS)
    assert str(tmp_path / "limits.toml") in str(err.value)


@pytest.mark.parametrize("lab", sorted(LAB_LIMITS))
def test_each_timed_lab_caps_its_notebook_well_inside_its_limit(lab: str) -> None:
    """Does every lab with a grading-time limit cap its notebook phase, leaving at least a third of
    the limit to the hidden tests?"""
    suite = ROOT / "grader_tests" / lab
    if not suite.is_dir():
        pytest.skip(f"{lab} has no hidden suite yet")
    limits = lab_limits(suite, DEFAULT_LIMITS)
    assert limits.notebook_timeout <= LAB_LIMITS[lab] * 2 / 3, (lab, limits.notebook_timeout)
    assert limits.cell_timeout <= limits.notebook_timeout


@needs_bwrap
def test_hard_coded_long_training_is_cut_and_the_rest_still_graded(tmp_path: Path) -> None:
    """A submission whose cell runs far past the lab's cell cap: is that cell interrupted, do the
    later cells and the hidden tests still run (full marks here), and does grading stay short?"""
    lab = "lab1_tensorflow"
    course = tmp_path / "course"
    for part in ("source", "release", "grader_tests"):
        shutil.copytree(ROOT / part / lab, course / part / lab)
    shutil.copy(ROOT / "grader_tests" / "__init__.py", course / "grader_tests")
    shutil.copy(ROOT / "nbgrader_config.py", course)
    (course / "grader_tests" / lab / "limits.toml").write_text("cell_timeout = 20\n")
    nb = nbformat.read(ROOT / "source" / lab / f"{lab}.ipynb", as_version=4)
    first_code = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code")
    stalls = nbformat.v4.new_code_cell("import time\nfor epoch in range(1000):\n    time.sleep(1)")
    nb.cells.insert(first_code + 1, stalls)
    folder = course / "submitted" / "keen" / lab
    folder.mkdir(parents=True)
    nbformat.write(nb, folder / f"{lab}.ipynb")

    started = time.monotonic()
    graded = grade_submission(
        course,
        submission_at(folder, lab, student="keen"),
        GradeOptions(backend="bwrap", seed=5),
        slot=test_slot(),
    )
    elapsed = time.monotonic() - started
    results = graded.results
    statuses = [c.status for c in results.cells]
    assert statuses.count("timeout") == 1, statuses
    assert "skipped" not in statuses, statuses
    assert results.score == sum(results.max_points.values()), [
        (t.name, t.output) for t in results.tests if t.status != "passed"
    ]
    assert [e.kind for e in results.events] == ["cell_timeout"], results.events
    assert elapsed < 120, elapsed  # the stalled cell alone would have taken 1000 s

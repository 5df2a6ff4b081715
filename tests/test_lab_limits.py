"""A lab's own grading limits (grader_tests/<lab>/limits.toml): read strictly, tighten only, and
bound grading time whatever training length a student hard-codes."""

from __future__ import annotations

import shutil
import time
import tomllib
from pathlib import Path

import nbformat
import pytest

from introdl.grading.errors import BadInput
from introdl.grading.grade import GradeOptions, grade_submission
from introdl.grading.sandbox.limits import DEFAULT_LIMITS, TEST_LIMITS, lab_limits
from introdl.grading.submission import find_submissions, submission_at
from introdl.labs import LABS
from tests.corpus_course import LAB, answer, build_course, submit
from tests.sandboxed import FIXTURES, ROOT, needs_bwrap, test_slot

# Seconds each lab may take to grade one submission (its issue) and the sandbox start allowance.
LAB_LIMITS = {
    "lab1_tensorflow": 90,
    "lab1_music": 180,
    "lab2_mnist": 120,
    "lab2_debiasing": 180,
    "lab3_rl": 180,
}


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
    assert limits.grading_timeout <= LAB_LIMITS[lab], (lab, limits.grading_timeout)
    assert limits.grading_timeout - limits.notebook_timeout >= LAB_LIMITS[lab] / 3, lab


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
    # it sleeps: little CPU, so a first grading cannot blame it; every test passed, so nothing is
    # graded again (tests/test_busy_host.py)
    assert [e.kind for e in results.events] == ["cell_timeout", "host_busy"], results.events
    assert results.host_busy == ()
    assert elapsed < 120, elapsed  # the stalled cell alone would have taken 1000 s


@pytest.mark.parametrize("lab", LABS)
def test_every_lab_declares_its_limits_and_records_them(lab: str) -> None:
    """Does every lab declare a cell and a notebook timeout tighter than the defaults, and write
    them in its CALIBRATION.md beside the measurement they come from?"""
    suite = ROOT / "grader_tests" / lab
    declared = tomllib.loads((suite / "limits.toml").read_text(encoding="utf-8"))
    for name in ("cell_timeout", "notebook_timeout", "grading_timeout"):
        assert name in declared, f"{suite / 'limits.toml'} declares no {name}"
        assert declared[name] < getattr(DEFAULT_LIMITS, name), (lab, name)
    assert declared["cell_timeout"] <= declared["notebook_timeout"] < declared["grading_timeout"]
    line = (
        f"Declared limits (limits.toml): cell_timeout = {declared['cell_timeout']} s, "
        f"notebook_timeout = {declared['notebook_timeout']} s, "
        f"grading_timeout = {declared['grading_timeout']} s."
    )
    assert line in (suite / "CALIBRATION.md").read_text(encoding="utf-8"), line


@needs_bwrap
def test_a_notebook_that_never_returns_holds_a_worker_no_longer_than_its_lab_allows(
    tmp_path: Path,
) -> None:
    """A submission whose cells loop forever, one of them swallowing every interrupt: does its
    grading end within the lab's declared notebook limit (plus the sandbox's start, one interrupt
    grace and the hidden tests), with the looping cells cut and the rest skipped?"""
    course = tmp_path / "course"
    release = build_course(course)
    cell_timeout, notebook_timeout = 4, 10
    (course / "grader_tests" / LAB / "limits.toml").write_text(
        f"cell_timeout = {cell_timeout}\nnotebook_timeout = {notebook_timeout}\n"
    )
    hostile = answer(release)
    for fixture in (
        "submitted-infinite-loop",
        "submitted-ignores-interrupt",
        "submitted-infinite-loop",
    ):
        loops = nbformat.read(FIXTURES / f"{fixture}.ipynb", as_version=4)
        hostile.cells[1:1] = [
            nbformat.v4.new_code_cell(c.source) for c in loops.cells if c.cell_type == "code"
        ]
    submit(course, "looping", hostile)
    (sub,) = find_submissions(course, LAB)

    limits = DEFAULT_LIMITS  # the lab's own file is what bounds it
    started = time.monotonic()
    results = grade_submission(
        course, sub, GradeOptions(backend="bwrap", seed=3), slot=test_slot()
    ).results
    elapsed = time.monotonic() - started

    statuses = [c.status for c in results.cells]
    assert "timeout" in statuses, statuses
    assert "skipped" in statuses, statuses
    assert results.phases.notebook <= notebook_timeout + limits.interrupt_grace + 2, results.phases
    assert elapsed <= notebook_timeout + limits.startup_timeout / 2, (elapsed, results.phases)


STALLING_SUITE = """
import pytest

@pytest.mark.parametrize("n", range(4))
@pytest.mark.grade("add", points=0.5)
@pytest.mark.budget(seconds=60)
def test_add_answers(student, n):
    assert student.call("add", n, 1, timeout=50) == n + 1, "add(n, 1) should be n + 1"
"""


@needs_bwrap
def test_no_submission_holds_a_worker_past_its_labs_grading_limit(tmp_path: Path) -> None:
    """A submission whose function never returns, called by four hidden tests each allowed 60 s:
    does grading end at the lab's grading_timeout, the running test stopped and the later ones
    failed without running, each saying why?"""
    course = tmp_path / "course"
    release = build_course(course)
    suite = course / "grader_tests" / LAB
    (suite / "test_corpus.py").write_text(STALLING_SUITE)
    grading_timeout = 15
    (suite / "limits.toml").write_text(
        f"cell_timeout = 3\nnotebook_timeout = 8\ngrading_timeout = {grading_timeout}\n"
    )
    submit(course, "stalls", answer(release, "import time\n    while True:\n        time.sleep(1)"))
    (sub,) = find_submissions(course, LAB)

    started = time.monotonic()
    # a retry: it sleeps, so a first grading cannot blame it and gives errors (busy host); the
    # retry fails it, saying it waited without computing (tests/test_busy_host.py)
    results = grade_submission(
        course, sub, GradeOptions(backend="bwrap", seed=3, retry=True), slot=test_slot()
    ).results
    elapsed = time.monotonic() - started

    assert [t.status for t in results.tests] == ["failed"] * 4, results.tests
    assert all("waited without computing" in t.output for t in results.tests), results.tests
    assert all("ran out before this test finished" in t.output for t in results.tests), [
        t.output for t in results.tests
    ]
    assert all(t.duration < 1 for t in results.tests[1:]), results.tests  # never started
    worked = results.phases.notebook + results.phases.hidden_tests
    assert grading_timeout - 3 <= worked <= grading_timeout + DEFAULT_LIMITS.interrupt_grace, (
        results.phases
    )
    assert elapsed <= grading_timeout + DEFAULT_LIMITS.startup_timeout / 2, elapsed

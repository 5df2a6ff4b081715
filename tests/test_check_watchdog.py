"""Check my work cannot freeze (issue 21): every check gets a verdict within its lab's grading
limit plus the watchdog's margin, whatever the notebook or the grader does, and the worker goes on.

The course is the TensorFlow-free corpus course (tests/corpus_course.py) with real bubblewrap
sandboxes; tests/test_check_labs.py does the same with the five real labs.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import nbformat
import pytest

from introdl.checkwork import workers as workers_module
from introdl.checkwork.workers import Workers
from tests.check_driver import (
    add_lab_copy,
    check_queue,
    serve_checks,
    workers_sandbox_processes,
)
from tests.corpus_course import LAB, answer, build_course
from tests.sandboxed import needs_bwrap

pytestmark = needs_bwrap

OTHER = "corpus_b"  # a second lab: the corpus lab's release and hidden suite under another name
GRADING_LIMIT = 5  # seconds: the corpus lab's grading_timeout in these tests
MARGIN = 4.0  # seconds: the watchdog's margin in these tests
STOP_GRACE = 3.0  # seconds a stopped grading has to unwind before its worker is killed

# The corpus lab's hidden test, able to hang the grader itself where no deadline of the engine
# reaches it (it stands for a bug in a hidden test or the engine, or a C call that never returns):
# a student's add(2, 3) that returns -1 makes it deaf to the budget's alarm, -2 to SIGTERM too.
HANGING_SUITE = textwrap.dedent(
    """\
    import signal, time
    import pytest

    @pytest.mark.grade("add", points=2)
    def test_add_or_hang_the_grader(student):
        got = student.call("add", 2, 3)
        deaf = {-1: {signal.SIGALRM}, -2: {signal.SIGALRM, signal.SIGTERM}}.get(got)
        if deaf:
            signal.pthread_sigmask(signal.SIG_BLOCK, deaf)
            try:
                time.sleep(3600)
            finally:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, deaf)
        assert got == 5, "add(2, 3) should be 5"
    """
)


@pytest.fixture(scope="module")
def course(tmp_path_factory: pytest.TempPathFactory) -> Path:
    course = tmp_path_factory.mktemp("watchdog") / "course"
    build_course(course)
    suite = course / "grader_tests" / LAB
    (suite / "test_corpus.py").write_text(HANGING_SUITE)
    # as every lab's: a cell, the notebook, then the notebook and the hidden tests together
    (suite / "limits.toml").write_text(
        f"cell_timeout = 2\nnotebook_timeout = 4\ngrading_timeout = {GRADING_LIMIT}\n"
    )
    add_lab_copy(course, LAB, OTHER)
    return course


def notebook(course: Path, lab: str, body: str) -> bytes:
    release = nbformat.read(course / "release" / lab / f"{lab}.ipynb", as_version=4)
    return nbformat.writes(answer(release, body)).encode()


def test_a_grading_that_hangs_is_stopped_told_and_the_queue_moves_on(
    course: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A check's grading hangs where no deadline of the engine reaches: first one that SIGTERM
    still ends, then one deaf to it. Is each stopped at its lab's limit plus the margin, does the
    student read why in words, is the worker kept (then killed and replaced), is the next check
    graded, and is no sandbox left?"""
    monkeypatch.setattr(workers_module, "STOP_GRACE", STOP_GRACE)
    queue = check_queue(tmp_path / "checks.sqlite")
    workers = Workers(queue, course, 1, warm=1, margin=MARGIN)
    pids: list[list[int]] = []
    workers.on_done = lambda check: pids.append([p.pid for p in workers.slots[0].processes()])
    asks = [
        ("ada", LAB, notebook(course, LAB, "return -1")),
        ("ben", LAB, notebook(course, LAB, "return -2")),
        ("cy", LAB, notebook(course, LAB, "return a + b")),
    ]
    checks = serve_checks(workers, queue, asks, bound=120)
    assert [c.state for c in checks] == ["done"] * 3, [c.state for c in checks]
    ada, ben, cy = checks
    for stopped in (ada, ben):
        assert stopped.results is not None
        (error,) = stopped.results["errors"]
        assert error.startswith(
            f"your check was stopped: it took longer than {LAB}'s limit of "
            f"{GRADING_LIMIT + MARGIN:.0f} s"
        ), error
        assert "run your notebook top to bottom" in error
        took = (stopped.finished_at or 0) - (stopped.started_at or 0)
        assert GRADING_LIMIT + MARGIN <= took < GRADING_LIMIT + MARGIN + STOP_GRACE + 5, took
    assert cy.results is not None
    assert cy.results["score"] == 2.0, cy.results
    # after each verdict, the worker's process: SIGTERM ended ada's grading, not the worker; the
    # deaf grading's worker was killed, and a new one (no process until the next check) graded cy
    assert len(pids[0]) == 1, pids
    assert pids[1] == [], pids
    assert len(pids[2]) == 1, pids
    assert pids[2] != pids[0], pids
    assert workers_sandbox_processes() == []


# What a student's notebook can do to its kernel: a cell that never ends (in Python, in C), a
# kernel that exits or segfaults, a process forked to outlive it. Each still gets its verdict.
HOSTILE_CELLS = {
    "loops": "while True:\n    pass",
    "sleeps": "import time\nwhile True:\n    time.sleep(1)",
    "exits": "import os\nos._exit(1)",
    "segfaults": "import ctypes\nctypes.string_at(0)",
    "forks": "import os, time\nif os.fork() == 0:\n    while True:\n        time.sleep(1)",
}


def hostile_notebook(course: Path, lab: str, kind: str) -> bytes:
    """LAB's release as fetched (or answered, for "answered"), with KIND's cell at the end."""
    release = nbformat.read(course / "release" / lab / f"{lab}.ipynb", as_version=4)
    nb = answer(release) if kind == "answered" else release
    if kind in HOSTILE_CELLS:
        nb.cells.append(nbformat.v4.new_code_cell(HOSTILE_CELLS[kind]))
    return nbformat.writes(nb).encode()


@pytest.mark.parametrize("count", [1, 2], ids=["one-worker", "two-workers"])
def test_checks_of_two_labs_in_turn_are_all_answered(
    course: Path, tmp_path: Path, count: int
) -> None:
    """Warm workers given checks that alternate between two labs (issue 21: the second check
    froze the service), some of them looping or crashing: is every check answered, of its own
    lab, within the lab's limit plus the margin, with one worker and with two?"""
    margin = 30.0
    queue = check_queue(tmp_path / "checks.sqlite")
    workers = Workers(queue, course, count, warm=1, margin=margin)
    kinds = ["answered", "loops", "answered", "exits", "answered", "segfaults", "forks", "sleeps"]
    labs = [(LAB, OTHER)[i % 2] for i in range(len(kinds))]
    asks = [
        (f"s{i}", lab, hostile_notebook(course, lab, kind))
        for i, (lab, kind) in enumerate(zip(labs, kinds, strict=True))
    ]
    checks = serve_checks(
        workers, queue, asks, bound=600, per_check=lambda lab: GRADING_LIMIT + margin + 5
    )
    assert [c.state for c in checks] == ["done"] * len(asks), [c.state for c in checks]
    assert [(c.results or {}).get("lab") for c in checks] == labs
    scores = [(c.results or {}).get("score") for c in checks]
    assert scores == [2.0 if kind == "answered" else 0.0 for kind in kinds], [
        (c.results or {}).get("errors") for c in checks
    ]
    for check in checks:
        took = (check.finished_at or 0) - (check.started_at or 0)
        assert took < GRADING_LIMIT + margin, (check.lab, took)
    assert workers_sandbox_processes() == []

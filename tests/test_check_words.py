"""Words a student can act on (issue 23, point 5): a verdict names a failing cell as the student
finds it in JupyterLab (the heading above it, its number among code cells), and never points at a
traceback the verdict page does not show."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell

from introdl.checkwork import pages
from introdl.checkwork.grader import grade_check, status_lines, student_view
from introdl.grading.kernel.cpu import AGAIN
from tests.corpus_course import LAB, answer, build_course
from tests.sandboxed import needs_bwrap


def test_a_cell_is_named_by_its_heading_and_its_number_among_code_cells() -> None:
    """Is 'cell 27' (an index counting markdown cells) gone, in favour of what JupyterLab shows?"""
    results = {
        "events": [{"kind": "cell_timeout", "message": "no answer", "cell": 26}],
        "cells": [
            {"index": 2, "status": "ok", "code_number": 1, "heading": "0 Setup"},
            {"index": 26, "status": "timeout", "code_number": 12,
             "heading": "1.3 Exercise: build the CNN"},
            {"index": 31, "status": "error", "code_number": 13, "heading": None,
             "message": "NameError: name 'x' is not defined"},
        ],
    }  # fmt: skip
    assert status_lines(results) == [
        'your notebook ran out of time in the 12th code cell (under "1.3 Exercise: build the CNN")',
        "the 13th code cell raised NameError: name 'x' is not defined",
    ]
    assert "27" not in repr(status_lines(results))


def test_results_recorded_before_code_numbers_still_name_the_code_cell() -> None:
    """Results of older checks list every code cell by its index only: is the number among code
    cells still right (its rank), and an event in a cell they do not list said without a place?"""
    results = {
        "events": [
            {"kind": "memory_exhausted", "cell": 9},
            {"kind": "kernel_killed", "cell": 40},
            {"kind": "output_truncated", "cell": None},
        ],
        "cells": [
            {"index": 1, "status": "ok"},
            {"index": 4, "status": "ok"},
            {"index": 9, "status": "error", "message": "MemoryError: "},
        ],
    }
    assert status_lines(results) == [
        "your notebook ran out of memory in the 3rd code cell",
        "your notebook was stopped",
        "a cell printed too much; its output was cut",
        "the 3rd code cell raised MemoryError: ",
    ]


def test_the_verdict_never_says_read_the_traceback_above() -> None:
    """A public check's message tells the student to read the traceback above it (true in their
    notebook); does the verdict page, which shows no traceback, say where to see it instead?"""
    from introdl.checks import CheckFailed, calling

    try:
        with calling("build_model()", "Give the last Dense layer 10 units."):
            raise ValueError("expected axis -1 to have value 784")
    except CheckFailed as err:
        message = f"CheckFailed: {err}"
    assert "Read the traceback above" in message  # in the notebook, the traceback is above it
    [line] = status_lines(
        {"cells": [{"index": 7, "status": "error", "code_number": 4, "message": message}]}
    )
    assert "traceback above" not in line.lower()
    assert line.startswith("the 4th code cell raised CheckFailed: build_model() raised ValueError")
    assert "Give the last Dense layer 10 units." in line
    assert line.endswith("(the traceback is not shown here: run that cell in JupyterLab to see it)")
    # A student's own message that merely says "above" is left alone.
    own = "ValueError: a learning rate above 1 diverges"
    assert status_lines({"cells": [{"index": 0, "status": "error", "message": own}]}) == [
        f"the 1st code cell raised {own}"
    ]


def test_headings_are_read_as_jupyterlab_shows_them() -> None:
    from introdl.grading.kernel.notebook import last_heading

    assert last_heading("## 1.3 Exercise: build the `CNN`") == "1.3 Exercise: build the CNN"
    assert last_heading("# Part 1\ntext\n### Exercise 3.2a: the network ###") == (
        "Exercise 3.2a: the network"
    )
    assert last_heading("Training\n========\nsome words") == "Training"
    assert last_heading("<h2 id='x'>Exercise <i>2</i></h2>") == "Exercise 2"
    assert last_heading("```python\n# not a heading\n```\nplain text") is None
    assert last_heading("#hashtag is not a heading\n\n---") is None
    assert last_heading("") is None


def test_a_students_heading_is_short_plain_text() -> None:
    """A heading is the student's text: is it kept short and free of control characters?"""
    from introdl.grading.kernel.notebook import last_heading

    heading = last_heading("# " + "\x1b[31m" + "A" * 10_000 + "\u202e\x00 end")
    assert heading is not None
    assert len(heading) <= 80
    assert not set(heading) & {"\x1b", "\u202e", "\x00"}


@needs_bwrap
def test_a_graded_notebook_names_its_failing_cells_as_the_student_sees_them(
    tmp_path: Path,
) -> None:
    """Graded for real (bwrap), does the verdict name the cell that raised and the one that ran
    out of time by the heading above each and its number among code cells, with a hostile
    heading shown as text?"""
    course = tmp_path / "course"
    release = build_course(course)
    (course / "grader_tests" / LAB / "limits.toml").write_text(
        "cell_timeout = 3\nnotebook_timeout = 30\n"
    )
    nb = answer(release)
    evil = "<img src=x onerror=alert(1)> Exercise 2"
    nb.cells[1:1] = [new_markdown_cell("# Lab\n\nSome words.\n\n## 1.2 Exercise: adding")]
    nb.cells += [
        new_markdown_cell("Read this first."),
        new_code_cell(
            "from introdl.checks import calling\n"
            "with calling('add(1, None)', 'Give add two numbers.'):\n"
            "    add(1, None)"
        ),
        new_markdown_cell(f"## {evil}"),
        new_code_cell("x = 1"),
        new_code_cell("while True:\n    pass"),
    ]
    results = grade_check(course, LAB, "ada", nbformat.writes(nb).encode())
    view = student_view(results, due=None, now=datetime.now(UTC))
    status = view["status"]
    assert any(
        line.startswith(
            'the 4th code cell (under "1.2 Exercise: adding") raised CheckFailed: add(1, None) '
            "raised TypeError"
        )
        and "Give add two numbers." in line
        and "traceback above" not in line.lower()
        for line in status
    ), status
    assert f'your notebook ran out of time in the 6th code cell (under "{evil}")' in status, status
    row = {"id": 1, "lab": LAB, "requested_at": 0.0, "state": "done", "verdict": view,
           "wait_seconds": 1.0}  # fmt: skip
    html = pages.check(row)
    assert "<img" not in html
    assert "6th code cell (under &quot;&lt;img src=x onerror=alert(1)&gt; Exercise 2&quot;)" in html
    cells = {c["code_number"]: c for c in results["cells"]}
    assert [cells[n]["heading"] for n in (1, 2, 3)] == ["1.2 Exercise: adding"] * 3
    assert cells[5]["heading"] == evil


def test_an_error_says_what_to_do_and_keeps_its_internals_and_markup_out() -> None:
    """Does every status get words and a next step; is a 500's exception text never shown, and
    is the service's own reason (which may hold a lab name from the URL) escaped?"""
    from tornado import web

    from introdl.hub import error_page

    for status in (400, 401, 403, 404, 405, 409, 413, 429, 500, 502, 503, 504):
        title, todo = error_page.words(status)
        assert title
        assert todo
    crash = (ValueError, ValueError("invalid literal for int(): '/etc/shadow'"), None)
    assert error_page.reason(500, crash) is None
    hub_fault = (web.HTTPError, web.HTTPError(500, "hub at http://10.0.0.1:8081 said 500"), None)
    assert error_page.reason(500, hub_fault) is None
    evil = "<img src=x onerror=alert(1)> is not a released lab"
    ours = (web.HTTPError, web.HTTPError(404, evil), None)
    assert error_page.reason(404, ours) == evil
    html = error_page.body_html(404, evil, home="home", home_url="/x'><script>")
    assert "<img" not in html
    assert "<script" not in html
    assert (
        error_page.as_json(500, None, home="home")["message"] == "Something went wrong on our side"
    )


def test_a_busy_host_verdict_says_so_first_and_asks_for_a_check_again() -> None:
    """Does a check graded on a too busy machine say, before anything else, that it is not a
    verdict yet, with 'ask for a check again' in place of the batch's 'graded again'?"""
    busy = (
        "the grading machine was too busy: your code used only 0.2 CPU seconds of the 30 "
        f"seconds it was given. {AGAIN}"
    )
    results = {
        "host_busy": [busy],
        "events": [{"kind": "cell_timeout", "message": "no answer", "cell": 3},
                   {"kind": "host_busy", "message": busy, "cell": 3}],
        "cells": [{"index": 3, "status": "timeout", "code_number": 2, "heading": None}],
        "tests": [{"name": "test_add", "grade_id": "add", "score": 0.0, "max_score": 2.0,
                   "status": "error", "output": busy, "host_busy": True}],
    }  # fmt: skip
    view = student_view(results, due=None, now=datetime.now(UTC))
    first = view["status"][0]
    assert first.startswith("Not judged yet: the grading machine was too busy"), first
    assert "ask for a check again" in first
    assert AGAIN not in first
    assert view["tests"][0]["status"] == "error"
    assert "ask for a check again" in view["tests"][0]["message"]
    page = pages.check({"id": 1, "lab": LAB, "requested_at": 0, "state": "done",
                        "verdict": view, "wait_seconds": 3.0})  # fmt: skip
    assert "Not judged yet" in page
    assert "failed" not in page

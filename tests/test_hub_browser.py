"""A student's whole lab in a real browser: log in, fetch, fill a TODO, validate, submit; staff
collect, grade in the sandbox and release feedback; the student reads their score.

Playwright drives Debian's Chromium (the binary itself: Debian's wrapper script misbehaves here).
A screenshot of every step is kept under build/screenshots/hub/ for people to look at.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from introdl.hub.local import Hub
from tests.hub import SCREENSHOTS, chromium, log_in

LAB = "lab1_tensorflow"
ROOT = Path(__file__).resolve().parents[1]
# The student fills in one exercise (`func`, 1 point) and leaves the other TODOs alone.
ANSWER = '''def func(a, b):
    """Returns e, where c = a + b, d = b - 1 and e = c * d."""
    c = tf.add(a, b)
    d = tf.subtract(b, 1)
    e = tf.multiply(c, d)
    return e
'''
# Lines of the hidden suite that would give away its source if they reached a student.
HIDDEN_SOURCE_MARKERS = ("def test_", "assert_close(", "student.call(", "@pytest.mark")


@pytest.fixture
def browser():  # type: ignore[no-untyped-def]
    with chromium(SCREENSHOTS) as launched:
        yield launched


def shot(page, name: str) -> None:  # type: ignore[no-untyped-def]
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def open_lab(browser, hub: Hub, user: str):  # type: ignore[no-untyped-def]
    page = log_in(browser, hub, user)
    page.wait_for_selector(".jp-LabShell")
    return page


def open_assignments(page) -> None:  # type: ignore[no-untyped-def]
    page.click(".lm-MenuBar-itemLabel:has-text('Nbgrader')")
    page.click(".lm-Menu-itemLabel:has-text('Assignment List')")
    page.wait_for_selector("#released_assignments_list")


def staff_grade_and_release_feedback(hub: Hub) -> dict[str, object]:
    """What the TA does: collect (own hub token), grade as root in bwrap, release feedback."""
    teacher = hub.settings.instructor
    course = Path(f"~{teacher}").expanduser() / "course"
    done = hub.nbgrader(teacher, "collect", LAB, "--update", cwd=course)
    assert done.returncode == 0, done.stdout + done.stderr
    graded = subprocess.run(
        [
            sys.executable,
            "-m",
            "introdl.cli",
            "grade",
            LAB,
            "--student",
            "st-ada",
            "--feedback",
            "--json",
        ],
        env={
            **os.environ,
            "INTRODL_COURSE_ROOT": str(course),
            # nbgrader's gradebook runs `alembic` from PATH, as `.venv/bin/introdl` would find it.
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        },
        capture_output=True,
        text=True,
        check=False,
        cwd=course,
    )
    assert graded.returncode == 0, graded.stdout + graded.stderr
    # Graded as root, the course is handed back: the instructor's own commands go on writing it.
    assert (course / "gradebook.db").stat().st_uid == (course / "source").stat().st_uid
    done = hub.nbgrader(teacher, "release_feedback", LAB, cwd=course)
    assert done.returncode == 0, done.stdout + done.stderr
    return dict(json.loads(graded.stdout))


def test_a_student_fetches_fills_validates_submits_and_reads_feedback(browser, hub: Hub) -> None:  # type: ignore[no-untyped-def]
    """Can a student do a whole lab in the browser, and see the hidden tests' verdict only?"""
    page = open_lab(browser, hub, "st-ada")
    shot(page, "01-student-logged-in")

    open_assignments(page)
    released = page.locator(f"#released_assignments_list .list_item:has-text('{LAB}')")
    released.locator("button:has-text('Fetch')").click()
    fetched = page.locator(f"#fetched_assignments_list .list_item:has-text('{LAB}')").first
    fetched.wait_for()
    shot(page, "02-fetched")

    page.goto(f"{hub.settings.url}/user/st-ada/lab/tree/{LAB}/{LAB}.ipynb")
    cell = page.locator(".jp-Cell:has-text('def func(a, b):')").first
    cell.wait_for()
    cell.scroll_into_view_if_needed()
    cell.locator(".cm-content").click()
    page.keyboard.press("Control+A")
    page.keyboard.insert_text(ANSWER.rstrip("\n"))
    page.keyboard.press("Escape")
    page.keyboard.press("Control+S")
    page.wait_for_timeout(1500)
    shot(page, "03-todo-filled")
    on_disk = Path("~st-ada").expanduser() / LAB / f"{LAB}.ipynb"
    assert "e = tf.multiply(c, d)" in on_disk.read_text()

    page.locator(".jp-NotebookPanel-toolbar").get_by_text("Validate", exact=True).click()
    dialog = page.locator(".jp-Dialog")
    dialog.wait_for(timeout=240_000)
    dialog.locator(".jp-Dialog-body").wait_for()
    page.wait_for_function(
        "() => !document.querySelector('.jp-Dialog-body')?.innerText.includes('Validating')",
        timeout=240_000,
    )
    shot(page, "04-validated")
    said = dialog.inner_text()
    # The other TODOs are still open: validation names them, the filled one passes.
    assert "NotImplementedError" in said or "failed" in said.lower(), said
    dialog.locator("button").last.click()

    page.goto(f"{hub.settings.url}/user/st-ada/lab")
    page.wait_for_selector(".jp-LabShell")
    open_assignments(page)
    page.locator(
        f"#fetched_assignments_list .list_item:has-text('{LAB}') button:has-text('Submit')"
    ).first.click()
    submitted = page.locator(f"#submitted_assignments_list .list_item:has-text('{LAB}')").first
    submitted.wait_for()
    shot(page, "05-submitted")
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", submitted.inner_text())

    results = staff_grade_and_release_feedback(hub)
    ada = next(r for r in results["rows"] if r["student"] == "st-ada")
    assert 0 < ada["score"] < ada["max_score"], ada

    staff = open_lab(browser, hub, hub.settings.instructor)
    staff.goto(f"{hub.settings.url}/user/{hub.settings.instructor}/formgrader")
    staff.wait_for_selector(f"text={LAB}")
    shot(staff, "06-staff-formgrader-own-tab")

    page.reload()
    page.wait_for_selector(".jp-LabShell")
    open_assignments(page)
    fetch_feedback = page.locator(
        f"#submitted_assignments_list .list_item:has-text('{LAB}') button:has-text('Fetch Feedback')"
    ).first
    fetch_feedback.wait_for()
    fetch_feedback.click()
    link = page.locator(
        f"#submitted_assignments_list .list_item:has-text('{LAB}') a:has-text('view feedback')"
    ).first
    link.wait_for()
    shot(page, "07-feedback-fetched")
    link.click()  # the file browser goes to the feedback folder; open the page from there
    page.locator(f".jp-DirListing-item:has-text('{LAB}.html')").first.dblclick()
    feedback = page.frame_locator(".jp-HTMLViewer iframe").first
    header = feedback.locator("text=Score").first
    header.wait_for()
    shot(page, "08-feedback")
    text = feedback.locator("body").inner_text()
    assert f"Score: {ada['score']:.1f} / {ada['max_score']:.1f}" in text
    # The hidden tests' names and authored messages, passed and failed, as the student sees them.
    assert "PASSED  test_func_computes_the_graph_on_random_tensors" in text
    assert (
        "FAILED  test_make_matrix_is_two_dimensional: make_matrix() raised NotImplementedError"
        in text
    )
    html = feedback.locator("html").inner_html()
    for marker in HIDDEN_SOURCE_MARKERS:
        assert marker not in html, f"feedback shows hidden-test source: {marker}"

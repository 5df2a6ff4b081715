"""Regrade requests through the real hub (issue 24): forgeries refused and logged, then in
Chromium a student files a request with a hostile reason, staff answer it by re-running the
autograder on lab1_tensorflow, and the student sees the new score.

The student's graded lab is put where batch grading leaves it (submitted/, autograded/ with
results.json, the gradebook through the real `land`), with an old verdict that failed the
`func` test; the rerun grades the same submission for real, in bwrap, with the current tests.
Screenshots: build/screenshots/staff/regrade-*.png.
"""

from __future__ import annotations

import os
import time

import nbformat
import requests

from introdl.grading.batch import land
from introdl.grading.grade import Graded
from introdl.grading.record.results import Results, Sandbox, TestResult
from introdl.grading.submission import grade_points, submission_at
from introdl.hub.local import Hub
from introdl.hub.prepare import course_dir
from tests.hub import SCREENSHOTS, CheckApi, chromium, log_in
from tests.test_hub_check_browser import ANSWER

LAB = "lab1_tensorflow"
TEST = "test_func_computes_the_graph_on_random_tensors"
SHOTS = SCREENSHOTS.parent / "staff"
HOSTILE = "<script>alert(1)</script><img src=x onerror=alert(2)> func is right" + " ok" * 800


def graded_lab(hub: Hub, student: str) -> None:
    """STUDENT's submission with func done, graded earlier with a failed func test (the old
    verdict), and feedback released 30 hours ago (the window opens after 24)."""
    course = course_dir(hub.settings)
    release = nbformat.read(course / "release" / LAB / f"{LAB}.ipynb", as_version=4)
    for cell in release.cells:
        if "def func(a, b):" in cell.source:
            cell.source = ANSWER
    folder = course / "submitted" / student / LAB
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "timestamp.txt").write_text("2026-11-23 09:00:00.000000 UTC")
    nbformat.write(release, folder / f"{LAB}.ipynb")
    old = TestResult(TEST, "computation", 0.0, 1.0, "failed", "func(a, b) is wrong")
    points = grade_points(release)
    results = Results(LAB, student, 1, points, Sandbox("bwrap", True), tests=(old,))
    land(course, submission_at(folder, LAB, student), Graded(results, nbformat.writes(release)))
    html = course / "feedback" / student / LAB / f"{LAB}.html"
    html.parent.mkdir(parents=True, exist_ok=True)
    html.write_text("<p>feedback</p>")
    then = time.time() - 30 * 3600
    os.utime(html, (then, then))
    owner = course.stat()
    for top in ("submitted", "autograded", "feedback"):
        for path in [course / top, *(course / top).rglob("*")]:
            os.chown(path, owner.st_uid, owner.st_gid)
    os.chown(course / "gradebook.db", owner.st_uid, owner.st_gid)


def refusals(staff: CheckApi) -> list[dict[str, str]]:
    answer = staff.call("GET", "refusals")
    answer.raise_for_status()
    return list(answer.json())


def test_nobody_files_for_reads_or_answers_anothers_request(hub: Hub) -> None:
    """Forgeries: a named student, another's request, staff actions, another origin; each
    refused and in the refusal log; another's request answered like a missing one."""
    graded_lab(hub, "st-cy")
    cy = CheckApi(hub, hub.token_for("st-cy", "test: regrades"))
    ben = CheckApi(hub, hub.token_for("st-ben", "test: regrades"))
    staff = CheckApi(hub, hub.token_for(hub.settings.instructor, "test: regrades"))
    item = {"item": TEST, "reason": "func is right"}

    forged = cy.call("POST", f"regrades/labs/{LAB}", data={**item, "student": "st-ben"})
    assert forged.status_code == 403, forged.text
    filed = cy.call("POST", f"regrades/labs/{LAB}", data=item)
    assert filed.status_code == 201, filed.text
    mine = filed.json()
    assert (mine["student"], mine["state"], mine["old_score"]) == ("st-cy", "open", 0.0)
    assert cy.call("POST", f"regrades/labs/{LAB}", data=item).status_code == 409

    theirs = ben.call("GET", f"regrades/{mine['id']}")
    missing = ben.call("GET", "regrades/999999")
    assert theirs.status_code == missing.status_code == 404
    assert theirs.text.replace(str(mine["id"]), "N") == missing.text.replace("999999", "N")
    assert "st-cy" not in theirs.text
    assert ben.call("GET", "regrades").json() == []
    ben_files = ben.call("POST", f"regrades/labs/{LAB}", data=item)
    assert ben_files.status_code == 403  # his feedback is not released
    assert "not been released" in ben_files.text
    for path in (f"staff/regrades/{mine['id']}/answer", f"staff/regrades/{mine['id']}/rerun"):
        answer = cy.call("POST", path, data={"comment": "I give myself full marks", "score": "1"})
        assert answer.status_code == 403, answer.text
    assert cy.call("GET", "staff/regrades").status_code == 403
    other_site = requests.post(
        f"{cy.base}/regrades/{mine['id']}/escalate",
        headers={**cy.headers, "Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"},
        timeout=60,
    )
    assert other_site.status_code == 403
    still = cy.call("GET", f"regrades/{mine['id']}").json()
    assert (still["state"], still["escalated"]) == ("open", False)

    reasons = "\n".join(f"{r['who']} | {r['action']} | {r['reason']}" for r in refusals(staff))
    assert "cannot file or read st-ben's" in reasons
    assert f"regrade request {mine['id']} belongs to st-cy" in reasons
    assert "st-cy is not course staff" in reasons
    assert "another site or port" in reasons
    assert "already asked" in reasons

    queue = staff.call("GET", "staff/regrades").json()
    assert [r["id"] for r in queue if r["student"] == "st-cy"] == [mine["id"]]


def test_a_student_files_staff_rerun_and_the_student_sees_the_new_score(hub: Hub) -> None:
    """In Chromium: the student files a request (a hostile reason) for the func test, staff
    see it escaped in the queue and answer by re-running the autograder; the student sees
    0 -> 1 and the answer, and accepts it."""
    graded_lab(hub, "st-ada")
    dialogs: list[str] = []
    with chromium(SHOTS) as browser:
        ada = log_in(browser, hub, "st-ada")
        ada.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        base = f"{hub.settings.url}/services/check/"
        ada.goto(base + "regrades")
        ada.select_option(f"#file-{LAB} select[name=item]", TEST)
        ada.fill(f"#file-{LAB} textarea[name=reason]", HOSTILE[:3000])
        ada.screenshot(path=str(SHOTS / "regrade-01-student-files.png"), full_page=True)
        ada.click(f"#file-{LAB} button")
        ada.wait_for_url("**/services/check/regrades")
        row = ada.locator("#my-regrades tr", has_text=TEST)
        assert "open" in row.locator(".state").inner_text()
        ada.screenshot(path=str(SHOTS / "regrade-02-student-filed.png"), full_page=True)
        request_id = row.locator("a").first.inner_text()

        teacher = log_in(browser, hub, hub.settings.instructor)
        teacher.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        teacher.goto(base + "staff/regrades")
        queue = teacher.locator("#regrade-queue").inner_text()
        assert "<script>alert(1)</script>" in queue  # shown as text, never run
        assert teacher.locator("#regrade-queue img").count() == 0
        teacher.screenshot(path=str(SHOTS / "regrade-03-staff-queue.png"), full_page=True)
        teacher.goto(base + f"staff/regrades/{request_id}")
        teacher.screenshot(path=str(SHOTS / "regrade-04-staff-request.png"), full_page=True)
        started = time.monotonic()
        teacher.click("#rerun", timeout=600_000)
        teacher.wait_for_url(f"**/staff/regrades/{request_id}", timeout=600_000)
        rerun_seconds = time.monotonic() - started
        assert "answered" in teacher.locator("#state").inner_text()
        assert teacher.locator("#score").inner_text() == "0 → 1"
        assert "regrade.rerun" in teacher.locator("#trail").inner_text()
        teacher.screenshot(path=str(SHOTS / "regrade-05-staff-reran.png"), full_page=True)

        ada.goto(base + "regrades")
        row = ada.locator(f"#regrade-{request_id}")
        assert "answered" in row.locator(".state").inner_text()
        assert row.locator(".change").inner_text() == "0 → 1"
        assert "Re-ran the autograder" in row.inner_text()
        ada.screenshot(path=str(SHOTS / "regrade-06-student-sees-new-score.png"), full_page=True)
        # A page of another origin posts the accept form with Ada's login cookie: refused.
        evil = ada.context.new_page()
        evil.set_content(
            f"<form method='post' action='{base}regrades/{request_id}/accept'>"
            "<input name='_xsrf' value='guess'><button id='go'>win a prize</button></form>"
        )
        with evil.expect_navigation():
            evil.click("#go")
        assert "answered" in ada.locator(f"#regrade-{request_id} .state").inner_text()
        ada.reload()
        assert "answered" in ada.locator(f"#regrade-{request_id} .state").inner_text()
        evil.screenshot(path=str(SHOTS / "regrade-07-cross-origin-refused.png"), full_page=True)
        ada.click(f"#accept-{request_id}")
        ada.wait_for_url("**/services/check/regrades")
        assert "closed" in ada.locator(f"#regrade-{request_id} .state").inner_text()
        ada.screenshot(path=str(SHOTS / "regrade-08-student-accepted.png"), full_page=True)
    assert dialogs == []
    print(f"rerun of {LAB} answered in {rerun_seconds:.1f} s")

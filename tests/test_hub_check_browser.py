"""'Check my work' in a real browser (issue 16): a student follows the link in their notebook,
checks lab1_tensorflow, reads the score and messages, is refused past the limit with when the next
check is allowed, and another student cannot open that check; staff see the queue.

Playwright drives Debian's Chromium; screenshots of every page are kept in build/screenshots/check/.
"""

from __future__ import annotations

import time

import pytest

from introdl.hub.local import Hub
from tests.hub import SCREENSHOTS, chromium, fetched_notebook, log_in, save_as_student

LAB = "lab1_tensorflow"
SHOTS = SCREENSHOTS.parent / "check"
ANSWER = (
    "def func(a, b):\n"
    '    """Returns e, where c = a + b, d = b - 1 and e = c * d."""\n'
    "    c = tf.add(a, b)\n"
    "    d = tf.subtract(b, 1)\n"
    "    e = tf.multiply(c, d)\n"
    "    return e\n"
)
SOURCE_MARKERS = ("def test_", "assert_close(", "student.call(", "@pytest.mark", "reference.")


@pytest.fixture
def browser():  # type: ignore[no-untyped-def]
    with chromium(SHOTS) as launched:
        yield launched


def shot(page, name: str) -> None:  # type: ignore[no-untyped-def]
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def fill_in_func(hub: Hub, user: str) -> None:
    """The student's work: fetched with nbgrader as their Unix user, one exercise done."""
    path, nb = fetched_notebook(hub, user, LAB)
    for cell in nb["cells"]:
        if "def func(a, b):" in "".join(cell["source"]):
            cell["source"] = ANSWER
    save_as_student(path, nb, user)


def test_a_student_checks_lab1_in_the_browser(browser, hub: Hub) -> None:  # type: ignore[no-untyped-def]
    """Link in the notebook -> check -> score and messages; past the limit: when; others: nothing."""
    fill_in_func(hub, "st-ada")
    page = log_in(browser, hub, "st-ada")
    page.goto(f"{hub.settings.url}/user/st-ada/lab/tree/{LAB}/{LAB}.ipynb")
    link = page.locator(".jp-RenderedMarkdown a:has-text('Check my work')").first
    link.wait_for()
    shot(page, "01-link-in-the-notebook")
    with page.context.expect_page() as opened:
        link.click()
    labs = opened.value
    labs.set_default_timeout(60_000)
    labs.wait_for_load_state()
    try:
        labs.wait_for_selector(f"#check-{LAB}")
    except Exception:
        shot(labs, "02-failed-labs")
        raise AssertionError(f"no check button at {labs.url}: {labs.content()[:2000]}") from None
    assert labs.locator("#user").inner_text() == "st-ada"
    shot(labs, "02-labs")
    stale = labs.context.new_page()  # a second tab, still showing the button
    stale.goto(labs.url)

    labs.click(f"#check-{LAB}")
    labs.wait_for_url("**/services/check/checks/*")
    check_url = labs.url
    shot(labs, "03-waiting")
    # While it is graded the page shows the results as they land (the notebook's cells run so far,
    # its public checks, each hidden test), reloaded every second without script.
    seen: set[str] = set()
    deadline = time.monotonic() + 600
    while not labs.locator("#score").count() and time.monotonic() < deadline:
        if labs.locator("#progress").count():
            seen.add("progress")
        if labs.locator("#cells").count():
            assert "code cells run" in labs.locator("#cells").inner_text()
            if "cells" not in seen:
                shot(labs, "03b-notebook-running")
            seen.add("cells")
        if labs.locator("#so-far").count() and "tests" not in seen:
            seen.add("tests")
            shot(labs, "03c-hidden-tests-landing")
        labs.wait_for_timeout(250)
    assert {"progress", "cells"} <= seen, seen
    labs.wait_for_selector("#score", timeout=600_000)
    shot(labs, "04-verdict")
    assert labs.locator("#score").inner_text().startswith("1 / ")
    tests = labs.locator("#tests").inner_text()
    assert "test_func_computes_the_graph_on_random_tensors\tpassed" in tests
    assert "make_matrix() raised NotImplementedError" in tests  # messages, never a traceback
    assert "1 more tests: 0 passed / 1 failed" in labs.locator("#more").inner_text()
    html = labs.content()
    assert not [m for m in SOURCE_MARKERS if m in html]

    labs.goto(labs.url.split("/checks/")[0] + "/")
    assert "next check allowed at" in labs.locator("table").first.inner_text()
    shot(labs, "05-next-check-allowed-at")
    stale.click(f"#check-{LAB}")
    refused = stale.locator("#refused")
    refused.wait_for()
    assert "your next check is allowed at" in refused.inner_text()
    shot(stale, "06-refused-past-the-limit")

    ben = log_in(browser, hub, "st-ben")
    answer = ben.goto(check_url)
    assert answer is not None
    assert answer.status == 404
    assert "1 / " not in ben.content()
    assert "st-ada" not in ben.content()
    shot(ben, "07-another-students-check")
    mine = ben.goto(check_url.split("/checks/")[0] + "/")
    assert mine is not None
    assert mine.status == 200
    assert ben.locator(f"a[href='checks/{check_url.rsplit('/', 1)[-1]}']").count() == 0
    staff_page = ben.goto(check_url.split("/checks/")[0] + "/staff")
    assert staff_page is not None
    assert staff_page.status == 403

    teacher = log_in(browser, hub, hub.settings.instructor)
    teacher.goto(f"{hub.settings.url}/hub/home")
    services = teacher.locator("a:has-text('Services')")
    if services.count():
        services.first.click()
    assert teacher.locator(".dropdown-menu a[href$='/services/check/']").count() == 1
    shot(teacher, "08-hub-services-menu")
    teacher.goto(check_url.split("/checks/")[0] + "/staff")
    summary = teacher.locator("#summary").inner_text()
    assert "st-ada" in summary
    assert LAB in summary
    shot(teacher, "09-staff")
    teacher.fill("#grant input[name=student]", "st-ada")
    teacher.fill("#grant input[name=lab]", LAB)
    teacher.fill("#grant input[name=extra]", "3")
    teacher.click("#grant button")
    teacher.wait_for_url("**/services/check/staff")
    row = teacher.locator(f"#summary tr:has-text('st-ada'):has-text('{LAB}')").inner_text()
    assert "8 per 24 h" in row  # 5 a day from nbgrader_config.py, plus 3
    shot(teacher, "10-staff-gave-more-checks")

"""Deadlines and extensions through the real hub (issue 24): a student hands in late and sees the
due date, their extension and the penalty on the check service's home page; staff grant an
extension on the staff page; a student cannot grant one (page or API) nor read another's, and the
exchange tells hand-in times to the check service's own token only. Every refusal is logged.

Playwright drives Debian's Chromium; screenshots go to build/screenshots/staff/late-*.png.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from nbgrader.api import Gradebook

from introdl.hub.local import Hub
from introdl.hub.prepare import course_dir
from tests.hub import SCREENSHOTS, CheckApi, Exchange, chromium, log_in, tarball

LAB = "corpus"  # released by install_corpus; no one else gives it a due date
SHOTS = SCREENSHOTS.parent / "staff"
POLICY = "\n# test_hub_late\nc.LatePolicy.percent_per_day = 10\nc.LatePolicy.max_percent = 50\n"


@pytest.fixture(scope="module")
def due_lab(hub: Hub) -> Iterator[datetime]:
    """The corpus lab due two days ago under "10% a started day, at most 50%"; undone after."""
    from tests.hub import install_corpus

    install_corpus(hub)
    course = course_dir(hub.settings)
    staff = Exchange(hub, hub.token_for(hub.settings.instructor, "test: late release"))
    released = staff.call("POST", f"assignments/{LAB}", data=tarball({f"{LAB}.ipynb": b"{}"}))
    assert released.status_code == 200, released.text
    config = course / "nbgrader_config.py"
    before = config.read_text()
    config.write_text(before + POLICY)
    due = (datetime.now(UTC) - timedelta(days=2)).replace(second=0, microsecond=0)
    gradebook = f"sqlite:///{course / 'gradebook.db'}"
    with Gradebook(gradebook) as gb:
        gb.update_or_create_assignment(LAB, duedate=due.replace(tzinfo=None))
    try:
        yield due
    finally:
        config.write_text(before)
        staff.call("DELETE", f"assignments/{LAB}")
        with Gradebook(gradebook) as gb:
            gb.update_or_create_assignment(LAB, duedate=None)


def test_late_hand_in_extension_and_refusals(hub: Hub, due_lab: datetime) -> None:
    people = ["st-ben", "st-cy", hub.settings.instructor]
    tokens = {name: hub.token_for(name, "test: late") for name in people}
    ben, cy = CheckApi(hub, tokens["st-ben"]), CheckApi(hub, tokens["st-cy"])
    staff = CheckApi(hub, tokens[hub.settings.instructor])

    # A hand-in after the due date is filed (never dropped), stamped by the exchange's clock.
    handed = Exchange(hub, tokens["st-ben"]).call(
        "POST", f"submissions/{LAB}", data=tarball({f"{LAB}.ipynb": b"{}"})
    )
    assert handed.status_code == 200, handed.text

    # Staff extend ben's deadline by 26 h: the hand-in is still about 22 h late (one started day).
    until = (due_lab + timedelta(hours=26)).strftime("%Y-%m-%dT%H:%M")
    granted = staff.call(
        "POST", f"extensions/{LAB}/st-ben", params={"until": until, "reason": "doctor's note"}
    )
    assert granted.status_code == 200, granted.text
    assert granted.json()["who"] == hub.settings.instructor

    # A student can neither grant (API) nor read another's extension.
    forged = cy.call("POST", f"extensions/{LAB}/st-cy", params={"until": "2030-01-01T00:00"})
    assert forged.status_code == 403
    assert [e["student"] for e in ben.call("GET", "extensions").json()] == ["st-ben"]
    assert cy.call("GET", "extensions").json() == []
    refused = staff.call("GET", "refusals").json()
    assert any(r["who"] == "hub user st-cy" and "extensions" in r["action"] for r in refused), (
        refused
    )

    # The exchange's hand-in times are for the check service's token, not a student's.
    peek = Exchange(hub, tokens["st-cy"]).call("GET", "handins/st-ben")
    assert peek.status_code == 403
    logged = Exchange(hub, tokens[hub.settings.instructor]).call("GET", "refusals").json()
    assert any("handins" in r["action"] and r["hub_user"] == "st-cy" for r in logged), logged

    with chromium(SHOTS) as browser:
        page = log_in(browser, hub, "st-ben")
        page.goto(f"{hub.settings.url}/services/check/")
        row = page.locator(f"#late-{LAB}")
        row.wait_for()
        if "not available" in row.inner_text():  # say why, from the services' log
            log = (hub.settings.hub_dir / "jupyterhub.log").read_text(errors="replace")
            lines = [ln for ln in log.splitlines() if "handins" in ln or "exchange" in ln.lower()]
            raise AssertionError("\n".join(lines[-30:]))
        assert page.locator(f"#due-{LAB}").inner_text() == f"{due_lab:%Y-%m-%d %H:%M} UTC"
        assert "doctor's note" in page.locator(f"#extension-{LAB}").inner_text()
        assert re.search(
            r"handed in .*: 2[12] h \d+ min late, penalty 10% of the score", row.inner_text()
        )
        page.screenshot(path=str(SHOTS / "late-01-student-home.png"), full_page=True)

        # A student opening the staff page, or posting its form with their own form token, is
        # refused (and logged).
        token = page.locator("input[name=_xsrf]").first.get_attribute("value")
        posted = page.request.post(
            f"{hub.settings.url}/services/check/staff/extensions",
            form={
                "_xsrf": token or "",
                "action": "grant",
                "lab": LAB,
                "student": "st-ben",
                "until": "2030-01-01T00:00",
            },
            headers={"Origin": hub.settings.url},
        )
        assert posted.status == 403
        refused_page = page.goto(f"{hub.settings.url}/services/check/staff/extensions")
        assert refused_page is not None
        assert refused_page.status == 403
        reasons = [
            r["reason"]
            for r in staff.call("GET", "refusals").json()
            if r["who"] == "hub user st-ben" and "staff/extensions" in r["action"]
        ]
        assert reasons.count("st-ben is not course staff") == 2, reasons
        assert ben.call("GET", "extensions").json()[0]["until"].startswith(until)

        teacher = log_in(browser, hub, hub.settings.instructor)
        teacher.goto(f"{hub.settings.url}/services/check/staff/extensions")
        form = teacher.locator("#grant-extension")
        form.locator("input[name=student]").fill("st-cy")
        form.locator("select[name=lab]").select_option(LAB)
        form.locator("input[name=until]").fill(until)
        form.locator("input[name=reason]").fill("<b>family</b>")
        form.locator("button").click()
        teacher.wait_for_url("**/staff/extensions")
        table = teacher.locator("#extensions").inner_text()
        for shown in ("st-cy", "<b>family</b>", "st-ben"):
            assert shown in table
        teacher.screenshot(path=str(SHOTS / "late-02-staff-extensions.png"), full_page=True)
        revoke = teacher.locator("#extensions tr", has_text="st-cy").locator("button")
        revoke.click()
        teacher.wait_for_url("**/staff/extensions")
        assert "st-cy" not in teacher.locator("#extensions").inner_text()
        trail = teacher.locator("#extension-trail").inner_text()
        assert "extension.revoke" in trail
        assert "extension.grant" in trail
    assert Path(SHOTS / "late-01-student-home.png").stat().st_size > 0

"""A student against the hub and against staff: what a logged-in student tries, refused.

docs/security.md lists the attackers and the boundaries; this file is the part of its
hostile-student suite that is about the hub itself (the course's configuration of it: roles,
groups, no admins) rather than the course's services. The student `st-cy` uses their own browser
session and a token they made themselves (one that holds everything they hold, as one made at
/hub/token does):

- in the browser: another student's server, the instructor's formgrader and files, the hub's
  admin page, the check service's staff page, the exchange's staff API with the login cookie, and a
  login link that sends them off the hub afterwards; each refused, with a screenshot kept;
- with the token: promoting themselves to staff, admin, tokens with more scopes than theirs, a
  token of another user, another user's server; each refused, and nothing changed in the hub.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests

from introdl.hub.local import Hub
from tests.hub import SCREENSHOTS, chromium, log_in

ATTACKER = "st-cy"
VICTIM = "st-ben"
SHOTS = SCREENSHOTS.parent / "hostile"


@pytest.fixture(scope="module")
def own_token(hub: Hub) -> str:
    """A token of ATTACKER's with every scope they hold (no `scopes`: the token role)."""
    body = {"note": "test: a student's own token", "expires_in": 3600}
    return str(hub.admin("POST", f"users/{ATTACKER}/tokens", json=body).json()["token"])


def as_student(hub: Hub, token: str, method: str, path: str, **kwargs: Any) -> requests.Response:
    return requests.request(
        method,
        f"{hub.api}/{path.lstrip('/')}",
        headers={"Authorization": f"token {token}"},
        timeout=30,
        **kwargs,
    )


def groups_of(hub: Hub, user: str) -> set[str]:
    return set(hub.admin("GET", f"users/{user}").json()["groups"])


def tokens_of(hub: Hub, user: str) -> int:
    return len(hub.admin("GET", f"users/{user}/tokens").json()["api_tokens"])


ESCALATIONS = [
    ("POST", "groups/formgrade-introdl/users", {"users": [ATTACKER]}),
    ("PATCH", f"users/{ATTACKER}", {"admin": True}),
    ("POST", f"users/{ATTACKER}/tokens", {"scopes": ["admin:users"]}),
    ("POST", f"users/{ATTACKER}/tokens", {"scopes": [f"access:servers!user={VICTIM}"]}),
    ("POST", f"users/{ATTACKER}/tokens", {"scopes": ["read:users:groups"]}),
    ("POST", f"users/{VICTIM}/tokens", {"note": "mine now"}),
    ("GET", f"users/{VICTIM}", None),
    ("POST", f"users/{VICTIM}/server", None),
    ("DELETE", f"users/{VICTIM}/server", None),
    ("POST", "users", {"usernames": ["st-sock"]}),
    ("GET", "services", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ESCALATIONS)
def test_a_students_own_token_cannot_raise_itself(
    hub: Hub, own_token: str, method: str, path: str, body: dict[str, Any] | None
) -> None:
    """Can a student's own token make them staff or admin, mint wider tokens, or reach another?"""
    staff_before = groups_of(hub, ATTACKER)
    tokens_before = tokens_of(hub, ATTACKER), tokens_of(hub, VICTIM)
    answer = as_student(hub, own_token, method, path, json=body)
    assert answer.status_code in (400, 403, 404), (method, path, answer.status_code, answer.text)
    assert groups_of(hub, ATTACKER) == staff_before
    assert (tokens_of(hub, ATTACKER), tokens_of(hub, VICTIM)) == tokens_before
    assert "st-sock" not in {u["name"] for u in hub.admin("GET", "users").json()}
    assert hub.admin("GET", f"users/{ATTACKER}").json()["admin"] is False


def test_a_students_token_lists_only_themselves(hub: Hub, own_token: str) -> None:
    """Does the hub tell a student who else is in the course, or who is staff?"""
    answer = as_student(hub, own_token, "GET", "users")
    names = {u["name"] for u in answer.json()} if answer.status_code == 200 else set()
    assert names <= {ATTACKER}, names
    groups = as_student(hub, own_token, "GET", "groups")
    assert groups.status_code == 403 or groups.json() == [], groups.text


@pytest.fixture(scope="module")
def browser():  # type: ignore[no-untyped-def]
    with chromium(SHOTS) as launched:
        yield launched


# Pages a student must not see, and a marker of each page's content that must not reach them.
FORBIDDEN_PAGES = [
    ("another-students-lab", f"/user/{VICTIM}/lab", "jupyter-config-data"),
    ("another-students-files", f"/user/{VICTIM}/api/contents", '"content"'),
    ("instructors-formgrader", "/user/{staff}/formgrader", "Manage Assignments"),
    ("instructors-course-files", "/user/{staff}/api/contents/course", "gradebook.db"),
    ("hub-admin", "/hub/admin", "Add Users"),
    ("check-staff-page", "/services/check/staff", "checks per student"),
    ("exchange-refusals-with-cookie", "/services/exchange/api/refusals", "hub_user"),
    ("exchange-collect-with-cookie", "/services/exchange/api/collect/lab1_tensorflow", "timestamp"),
]


def test_a_student_in_the_browser_reaches_no_one_elses_page(browser, hub: Hub) -> None:  # type: ignore[no-untyped-def]
    """Logged in as a student, can the browser open another's server, staff pages or staff APIs?"""
    staff = hub.settings.instructor
    page = log_in(browser, hub, ATTACKER)
    reached = []
    for name, path, marker in FORBIDDEN_PAGES:
        response = page.goto(f"{hub.settings.url}{path.format(staff=staff)}")
        page.wait_for_load_state()
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
        body = page.content()
        status = response.status if response is not None else 0
        if status < 400 or marker in body:
            reached.append((name, status, page.url))
    assert not reached, reached
    page.goto(f"{hub.settings.url}/services/check/staff")
    assert f"{ATTACKER} is not course staff" in page.locator("#refused").inner_text()


def test_a_login_link_never_sends_a_student_off_the_hub(browser, hub: Hub) -> None:  # type: ignore[no-untyped-def]
    """Can a link to the hub's login page send a student to another site once logged in?"""
    evil = "https://evil.example.org/phish"
    for next_url in (
        f"?next={evil}",
        "?next=//evil.example.org/phish",
        "?next=/\\evil.example.org",
    ):
        page = log_in(browser, hub, ATTACKER, next_url=next_url)
        page.wait_for_load_state()
        assert page.url.startswith(hub.settings.url), (next_url, page.url)
        page.context.close()

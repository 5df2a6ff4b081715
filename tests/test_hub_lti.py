"""LTI 1.3 launches into the production hub, from a real platform on loopback (tests/lti_platform.py).

docker/hub/jupyterhub_config.py runs unchanged with `INTRODL_AUTHENTICATOR=lti13` (tests/production.py
starts it as a deployment does, without a container engine: no server is spawned here, the launch
ends on the hub's home page). The platform has its own RSA key, publishes it as JWKS and signs
id_tokens with it; it serves the browser on `localhost` while the hub is `127.0.0.1`, so the LMS's
form POST back to the hub is cross-site, as it is between canvas.example.edu and dl.example.edu.

In Debian's Chromium: a Learner and an Instructor launch and land in the hub with their groups;
forged, expired, replayed, wrong-audience and wrong-key id_tokens, and launches from another
course, another deployment or with a role that is not the course's, get a page that says why.
Screenshots go to build/screenshots/lti/.
"""

from __future__ import annotations

import contextlib
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import requests

from tests import production
from tests.dockerhub import free_port
from tests.hub import SCREENSHOTS, chromium, skip_reason
from tests.lti_platform import INSTRUCTOR, LEARNER, Platform, new_rsa_key

SHOTS = SCREENSHOTS.parent / "lti"
CLIENT = "introdl-hub-client-7"
COURSE = "course-dl-2026"
TA = "http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistant"
MENTOR = "http://purl.imsglobal.org/vocab/lis/v2/membership#Mentor"
FACULTY = "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Faculty"
# Canvas-like `sub`s: opaque and stable; the e-mail claim is there and must not become the name.
ADA = "6b1c2f0e-4d2a-4f5e-9a4b-0c7d1e2f3a4b"
PROF = "9f8e7d6c-5b4a-4c3d-8e2f-1a0b9c8d7e6f"


@pytest.fixture(scope="module")
def platform() -> Iterator[Platform]:
    with Platform(host="localhost") as running:
        running.add_person(
            "hint-ada",
            sub=ADA,
            role=LEARNER,
            context_id=COURSE,
            email="ada@example.edu",
            given_name="Ada",
            family_name="Lovelace",
        )
        running.add_person("hint-prof", sub=PROF, role=INSTRUCTOR, context_id=COURSE)
        running.add_person("hint-ta", sub="ta-31", role=TA, context_id=COURSE)
        running.add_person("hint-elsewhere", sub="prof-9", role=INSTRUCTOR, context_id="other-1")
        running.add_person("hint-mentor", sub="parent-1", role=MENTOR, context_id=COURSE)
        running.add_person("hint-faculty", sub="dean-1", role=FACULTY, context_id=COURSE)
        yield running


@pytest.fixture(scope="module")
def hub(platform: Platform) -> Iterator[production.Production]:
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    base = Path(tempfile.mkdtemp(prefix="introdl-production-", dir="/tmp"))
    made = production.prepare(
        base,
        public_host="127.0.0.1",
        subnet="127.77.0.0/24",
        port=free_port(),
        extra={
            "INTRODL_AUTHENTICATOR": "lti13",
            "INTRODL_LTI_ISSUER": platform.issuer,
            "INTRODL_LTI_CLIENT_ID": CLIENT,
            "INTRODL_LTI_DEPLOYMENT_ID": platform.deployment_id,
            "INTRODL_LTI_AUTHORIZE_URL": f"{platform.url}/auth",
            "INTRODL_LTI_JWKS_URL": platform.jwks_url,
            "INTRODL_LTI_CONTEXT_ID": COURSE,
        },
    )
    platform.register_launch(
        CLIENT,
        login_url=f"{made.url}/hub/lti13/oauth_login",
        redirect_uri=f"{made.url}/hub/lti13/oauth_callback",
    )
    with production.running(made) as started:
        yield started


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium(SHOTS) as launched:
        yield launched


def launch(browser: Any, platform: Platform, hub: production.Production, hint: str) -> Any:
    """A fresh browser opens the course's link to the tool in the LMS, as HINT; its page."""
    context = browser.new_context(viewport={"width": 1100, "height": 700}, ignore_https_errors=True)
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(platform.launch_url(hint, CLIENT, f"{hub.url}/hub/home"))
    page.wait_for_load_state("networkidle")
    return page


def me(page: Any, hub: production.Production) -> dict[str, Any]:
    """The hub API's record of whoever the page is logged in as (their own session)."""
    answer = page.request.get(f"{hub.url}/hub/api/user")
    assert answer.status == 200, answer.text()[:300]
    return dict(answer.json())


def refused(page: Any, words: str, status: int = 400) -> str:
    text = page.locator("body").inner_text()
    assert f"{status} : Launch refused" in text, text[:600]
    assert words in text, text[:600]
    assert "Open the tool again from your course" in text
    assert "Traceback" not in text
    return str(text)


def test_a_learner_and_an_instructor_launch_into_their_groups(
    browser: Any, platform: Platform, hub: production.Production
) -> None:
    """Does a launch log a Learner into nbgrader-introdl and an Instructor (and a TA) into
    formgrade-introdl, named by the LMS's `sub` (not their e-mail), with the Learner's sub
    recorded as nbgrader's lms_user_id in the course's gradebook?"""
    ada = launch(browser, platform, hub, "hint-ada")
    ada.wait_for_url("**/hub/home")
    ada.screenshot(path=str(SHOTS / "learner-home.png"))
    record = me(ada, hub)
    assert (record["name"], record["groups"]) == (ADA, ["nbgrader-introdl"])
    assert record["admin"] is False

    prof = launch(browser, platform, hub, "hint-prof")
    prof.wait_for_url("**/hub/home")
    prof.screenshot(path=str(SHOTS / "instructor-home.png"))
    assert (me(prof, hub)["name"], me(prof, hub)["groups"]) == (PROF, ["formgrade-introdl"])
    # Staff may reach the course's formgrader service; the Learner may not.
    formgrader = "access:services!service=introdl"
    assert formgrader in me(prof, hub)["scopes"]
    assert formgrader not in record["scopes"]

    ta = launch(browser, platform, hub, "hint-ta")
    ta.wait_for_url("**/hub/home")
    assert me(ta, hub)["groups"] == ["formgrade-introdl"]

    # The gradebook (the course's owner wrote it, after the login): Ada with her LMS id and names.
    # Read-only: nbgrader's Gradebook() would create the file as root if it is not there yet.
    deadline = time.monotonic() + 60
    gradebook = hub.course / "gradebook.db"
    rows: list[tuple[str, ...]] = []
    while not rows:
        read_only = f"file:{gradebook}?mode=ro"
        with (
            contextlib.suppress(sqlite3.Error),
            contextlib.closing(sqlite3.connect(read_only, uri=True)) as db,
        ):
            rows = db.execute(
                "SELECT id, lms_user_id, first_name, last_name, email FROM student"
            ).fetchall()
        if not rows:
            assert time.monotonic() < deadline, f"no gradebook row for {ADA}:\n{hub.tail()}"
            time.sleep(0.5)
    found = rows[0][1:]
    students = [row[0] for row in rows]
    assert found == (ADA, "Ada", "Lovelace", "ada@example.edu")
    assert students == [ADA]  # staff are not students
    assert (hub.course / "gradebook.db").stat().st_uid == (hub.course).stat().st_uid


def test_a_launch_from_elsewhere_or_without_a_course_role_is_refused(
    browser: Any, platform: Platform, hub: production.Production
) -> None:
    """Is an instructor of ANOTHER LMS course, a mentor, a faculty member without a role in the
    course, or a launch from another deployment of the tool, kept out (with a page saying why)?"""
    page = launch(browser, platform, hub, "hint-elsewhere")
    refused(page, "comes from an LMS course that this hub does not serve", 403)
    page.screenshot(path=str(SHOTS / "refused-other-course.png"))
    for hint in ("hint-mentor", "hint-faculty"):
        page = launch(browser, platform, hub, hint)
        refused(page, "only the course's instructors, teaching assistants and students", 403)
    page.screenshot(path=str(SHOTS / "refused-no-course-role.png"))
    platform.next_launch(
        lambda claims: platform.id_token(
            {**claims, "https://purl.imsglobal.org/spec/lti/claim/deployment_id": "other-dep"}
        )
    )
    page = launch(browser, platform, hub, "hint-prof")
    refused(page, "installation of the tool in the LMS that this hub does not serve", 403)
    page.goto(f"{hub.url}/hub/home")
    assert "/hub/login" in page.url  # not logged in


def test_forged_expired_wrong_audience_and_wrong_key_id_tokens_are_refused(
    browser: Any, platform: Platform, hub: production.Production
) -> None:
    """Does an id_token signed with another key under the platform's kid, one past its expiry,
    one for another client id, and one signed with a key the JWKS does not publish, each get a
    page that names what is wrong, and no login?"""
    now = int(time.time())
    intruder = new_rsa_key()
    cases = {
        "forged": (
            lambda c: platform.id_token(c, key=intruder),
            "its signature does not match the LMS's keys",
            400,
        ),
        "expired": (
            lambda c: platform.id_token({**c, "iat": now - 900, "exp": now - 600}),
            "This launch has expired",
            400,
        ),
        "wrong-audience": (
            lambda c: platform.id_token({**c, "aud": "another-tool", "azp": "another-tool"}),
            "it was meant for another tool",
            401,
        ),
        "wrong-key": (
            lambda c: platform.id_token(c, key=intruder, kid="intruder-key"),
            "signed with a key the LMS does not publish",
            400,
        ),
    }
    for name, (how, words, status) in cases.items():
        platform.next_launch(how)
        page = launch(browser, platform, hub, "hint-prof")
        refused(page, words, status)
        page.screenshot(path=str(SHOTS / f"refused-{name}.png"))
        page.goto(f"{hub.url}/hub/home")
        assert "/hub/login" in page.url, name
    log = hub.tail(400_000)
    assert "LTI launch refused" in log
    assert platform.issued[-1] not in log  # no token in the hub's log


def test_a_replayed_id_token_is_refused(
    browser: Any, platform: Platform, hub: production.Production
) -> None:
    """Is a captured id_token refused when posted again: on its own (no launch started in this
    browser), and inside a fresh launch (its nonce is another launch's)?"""
    page = launch(browser, platform, hub, "hint-prof")
    page.wait_for_url("**/hub/home")
    captured = platform.issued[-1]
    # Inside a new launch: the platform (or a man in the middle) sends the old token back.
    platform.next_launch(lambda claims: captured)
    page = launch(browser, platform, hub, "hint-prof")
    refused(page, "its nonce does not match")
    page.screenshot(path=str(SHOTS / "refused-replayed.png"))
    # On its own, as an attacker holding it would send it (with some state of their own).
    bare = requests.post(
        f"{hub.url}/hub/lti13/oauth_callback",
        data={"id_token": captured, "state": "eyJzdGF0ZV9pZCI6ICIxIn0="},
        verify=str(hub.ca),
        allow_redirects=False,
        timeout=30,
    )
    assert bare.status_code == 400, bare.text[:300]
    assert "it did not start in this browser, or it was already used" in bare.text
    assert "jupyterhub-session-id" not in bare.headers.get("Set-Cookie", "")


def test_the_launchs_state_cookies_survive_a_cross_site_post(hub: production.Production) -> None:
    """Are the state and nonce cookies `SameSite=None; Secure; HttpOnly`, so a browser sends
    them with the LMS's cross-site form POST (a default Lax cookie is not sent on it)?"""
    query = urlencode(
        {
            "iss": "x",
            "login_hint": "h",
            "target_link_uri": f"{hub.url}/hub/home",
            "client_id": CLIENT,
        }
    )
    answer = requests.get(
        f"{hub.url}/hub/lti13/oauth_login?{query}",
        verify=str(hub.ca),
        allow_redirects=False,
        timeout=30,
    )
    assert answer.status_code == 302
    cookies = [c for c in answer.raw.headers.getlist("Set-Cookie") if "lti13authenticator" in c]
    assert len(cookies) == 2, cookies
    for cookie in cookies:
        assert "SameSite=None" in cookie, cookie
        assert "Secure" in cookie, cookie
        assert "HttpOnly" in cookie, cookie

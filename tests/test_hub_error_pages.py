"""Errors in words (issue 23, point 5): every error the check service, the exchange and the hub's
proxy answer a browser with says what happened and what to do; never tornado's bare
"400: Bad Request" or "404: Not Found", nor the hub's "Your server appears to be down" for a
course service. Programs get the same words as JSON. Real requests through the real hub's proxy.
"""

from __future__ import annotations

import os
import re
import signal
import time

import pytest
import requests

from introdl.hub.local import Hub
from tests.hub import SCREENSHOTS, CheckApi, chromium
from tests.test_hub_check import service_pid

LAB = "lab1_tensorflow"
STUDENT = "st-ada"
# What Chromium asks for when it opens a page.
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8"
SHOTS = SCREENSHOTS.parent / "errors"
BARE = re.compile(r"<body>\s*\d{3}: [A-Za-z ]+\s*</body>")  # tornado's default error page


def browser(hub: Hub, user: str | None = None) -> requests.Session:
    """A session that asks for pages as a browser does; logged in to the hub as USER (straight to
    the check service, so no server is started) when given."""
    session = requests.Session()
    session.headers["Accept"] = BROWSER
    if user is None:
        return session
    url = hub.settings.url
    session.get(f"{url}/hub/login", timeout=30)
    password = next(a.password for a in hub.accounts if a.name == user)
    landed = session.post(
        f"{url}/hub/login?next=/services/check/",
        data={"username": user, "password": password, "_xsrf": xsrf(session, "/hub/")},
        timeout=60,
    )
    assert landed.status_code == 200, landed.text[:500]
    assert "Check my work" in landed.text
    return session


def xsrf(session: requests.Session, path: str) -> str:
    token = session.cookies.get("_xsrf", path=path)
    assert token, f"no _xsrf cookie for {path}: {session.cookies}"
    return str(token)


def form_token(session: requests.Session, hub: Hub) -> str:
    home = session.get(f"{hub.settings.url}/services/check/", timeout=30)
    found = re.search(r"name='_xsrf' value='([^']+)'", home.text)
    assert found, home.text[:500]
    return found.group(1)


def in_words(answer: requests.Response, status: int) -> str:
    """The page of ANSWER, checked to be a page in words with what to do; its text."""
    assert answer.status_code == status, (answer.status_code, answer.text[:800])
    assert answer.headers["Content-Type"].startswith("text/html"), answer.headers
    assert not BARE.search(answer.text), answer.text
    assert "id='what-to-do'" in answer.text, answer.text
    assert "<script" not in answer.text.lower()
    return answer.text


def test_an_address_the_services_do_not_have_is_answered_in_words(hub: Hub) -> None:
    """A mistyped or outdated address under the check service or the exchange: a page saying so
    and where to start again for a browser, JSON in words for a program (POST included)."""
    url, web = hub.settings.url, browser(hub)
    page = in_words(web.get(f"{url}/services/check/no/such/page", timeout=30), 404)
    assert "There is no such page here" in page
    assert "href='/services/check/'>the check service&#x27;s home page</a>" in page
    in_words(web.post(f"{url}/services/check/no/such/page", timeout=30), 404)  # not a refusal
    api = requests.get(f"{url}/services/check/api/no/such", timeout=30)
    assert api.status_code == 404
    assert api.json()["what_to_do"].startswith("The address may be mistyped")

    exchange = in_words(web.get(f"{url}/services/exchange/", timeout=30), 404)
    assert "it is what the Assignment List in JupyterLab talks to" in exchange
    program = requests.get(f"{url}/services/exchange/nothing", timeout=30)
    assert program.status_code == 404
    assert "has no pages" in program.json()["message"]


def test_the_exchange_api_opened_in_a_browser_is_a_page_and_stays_json_for_nbgrader(
    hub: Hub,
) -> None:
    url = hub.settings.url
    page = in_words(browser(hub).get(f"{url}/services/exchange/api/assignments", timeout=30), 403)
    assert "no hub token: run nbgrader from your JupyterHub server" in page
    program = requests.get(f"{url}/services/exchange/api/assignments", timeout=30)
    assert program.status_code == 403
    assert program.json()["message"] == "no hub token: run nbgrader from your JupyterHub server"


def test_a_login_link_gone_wrong_says_to_open_the_service_again(hub: Hub) -> None:
    """The end of the hub login without its code, with a state of another browser, or carrying
    an error text of the link's own: a page saying what to do, never the link's words."""
    callback, web = f"{hub.settings.url}/services/check/oauth_callback", browser(hub)
    for query, status in (("", 400), ("?code=abc&state=xyz", 403)):
        page = in_words(web.get(callback + query, timeout=30), status)
        assert "Your login to the check service did not complete" in page
    lure = "Your account is locked: call 555-0100 <b>now</b>"
    forged = web.get(callback, params={"error": "x", "error_description": lure}, timeout=30)
    page = in_words(forged, 400)
    assert "call 555-0100" not in page
    assert "<b>now" not in page


def test_a_form_without_its_token_is_refused_in_words(hub: Hub) -> None:
    """A check asked without the page's form token (logged in or not): refused, saying why and
    what to do, as a page of the service."""
    url = hub.settings.url
    for web in (browser(hub), browser(hub, STUDENT)):
        page = in_words(web.post(f"{url}/services/check/labs/{LAB}", timeout=30), 403)
        assert "the form token (_xsrf) is missing or wrong" in page
        assert "Reload <a href='/services/check/'>the check service&#x27;s home page</a>" in page


def test_a_lab_that_does_not_exist_and_a_form_address_opened_as_a_page(hub: Hub) -> None:
    """Asking to check a lab the course does not have is a page naming it (as text); the form's
    address opened in the browser (a reload, a bookmark) leads home instead of failing."""
    url, web = hub.settings.url, browser(hub, STUDENT)
    token = form_token(web, hub)
    for lab, shown in (
        ("lab9_magic", "lab9_magic is not a released lab of this course"),
        ("<img src=x onerror=alert(1)>", "&lt;img src=x onerror=alert(1)&gt; is not a released"),
    ):
        asked = web.post(f"{url}/services/check/labs/{lab}", data={"_xsrf": token}, timeout=60)
        page = in_words(asked, 404)
        assert shown in page
        assert "<img" not in page
    opened = web.get(f"{url}/services/check/labs/{LAB}", allow_redirects=False, timeout=30)
    assert opened.status_code == 302, opened.text[:500]
    assert opened.headers["Location"] == "/services/check/"


def test_a_request_of_the_wrong_kind_is_answered_in_words(hub: Hub) -> None:
    """A method an address does not take: a page to a browser, JSON in words to a program."""
    url, web = hub.settings.url, browser(hub, STUDENT)
    put = web.put(
        f"{url}/services/check/", headers={"X-XSRFToken": form_token(web, hub)}, timeout=30
    )
    assert "This address does not take that kind of request" in in_words(put, 405)
    token = hub.token_for(STUDENT, "test: error pages")
    api = CheckApi(hub, token)
    program = api.call("GET", f"labs/{LAB}/checks")
    assert program.status_code == 405
    assert program.json()["message"] == "This address does not take that kind of request"
    opened = requests.get(
        f"{api.base}/labs/{LAB}/checks",
        headers={"Authorization": f"token {token}", "Accept": BROWSER},
        timeout=30,
    )
    in_words(opened, 405)


def test_an_unexpected_error_is_a_page_without_its_internals(hub: Hub) -> None:
    """A request the service did not expect to fail (staff granting 'many' checks): a page
    saying it is logged for staff, with no exception text or traceback."""
    url, web = hub.settings.url, browser(hub, hub.settings.instructor)
    granted = web.post(
        f"{url}/services/check/staff/limits",
        data={"_xsrf": form_token(web, hub), "student": STUDENT, "lab": LAB, "extra": "many"},
        timeout=30,
    )
    page = in_words(granted, 500)
    assert "It is in the service&#x27;s log for course staff" in page
    assert "ValueError" not in page
    assert "invalid literal" not in page
    assert "Traceback" not in page


def test_the_check_service_down_is_not_your_server_down(hub: Hub) -> None:
    """With the check service stopped (the hub restarts it within its poll interval), does the
    proxy's page say that the course's service is restarting, not that the student's server is
    down? (JupyterHub's own page says "Your server appears to be down".)"""
    url = hub.settings.url
    pid = service_pid(hub)
    os.killpg(os.getpgid(pid), signal.SIGKILL)
    try:
        down = browser(hub).get(f"{url}/services/check/", timeout=30)
        assert down.status_code == 503, down.text[:500]
        assert "Your server appears to be down" not in down.text
        assert 'id="proxy-error"' in down.text
        assert "Check my work" in down.text
        assert "the hub starts it again by itself within a minute" in down.text
    finally:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # later tests need the service back
            back = requests.get(f"{url}/services/check/api/checks", timeout=30)
            if back.status_code == 403:  # its own answer to a call without a token
                break
            time.sleep(1)
        else:
            pytest.fail("the hub did not restart the check service within 120 s")


def test_the_error_pages_in_chromium(hub: Hub) -> None:
    """The pages as a student's browser shows them (the service's CSP lets its style through and
    no script run); screenshots in build/screenshots/errors/."""
    url = hub.settings.url
    with chromium(SHOTS) as launched:
        page = launched.new_context(viewport={"width": 1100, "height": 600}).new_page()
        for name, path in (
            ("01-no-such-page", "/services/check/no/such/page"),
            ("02-old-login-link", "/services/check/oauth_callback?code=abc&state=xyz"),
            ("03-exchange-opened-in-a-browser", "/services/exchange/"),
        ):
            answer = page.goto(f"{url}{path}")
            assert answer is not None
            assert answer.status in (403, 404), (name, answer.status)
            assert page.locator("#what-to-do").inner_text().strip(), name
            page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)

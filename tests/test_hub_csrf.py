"""Cross-site requests cannot spend a student's checks (issue 21, case 4), in Debian's Chromium
through the real hub.

A student logs in and opens 'check my work' (so their browser holds the service's login cookie
and its `_xsrf` cookie). Then they visit a page served from another port of the same host: cookies
ignore ports, so that page is sent the student's cookies and can even read the `_xsrf` cookie of
the service's path. It posts the lab's form with the stolen token and calls the API with the
cookie. Nothing may be queued, and each refusal must be in the staff's log with whose cookie it was.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from introdl.hub.local import Hub
from introdl.hub.prepare import free_port
from tests.hub import SCREENSHOTS, CheckApi, Exchange, chromium, log_in
from tests.test_hub_check_browser import fill_in_func

LAB = "lab1_tensorflow"
STUDENT = "st-cy"
SHOTS = SCREENSHOTS / "csrf"

FORM_ATTACK = """<!doctype html><title>free GPU hours</title>
<iframe name="sink" width="600" height="200"></iframe>
<form id="f" method="post" action="{hub}/services/check/labs/{lab}" target="sink">
<input type="hidden" name="_xsrf" id="x"></form>
<script>
const m = document.cookie.match(/(?:^|; )_xsrf=([^;]+)/);
document.getElementById('x').value = m ? decodeURIComponent(m[1]) : '';
document.title = m ? 'stole-xsrf' : 'no-xsrf';
document.getElementById('f').submit();
</script>"""
API_ATTACK = """<!doctype html><title>free GPU hours</title><script>
fetch('{hub}/services/check/api/labs/{lab}/checks',
      {{method: 'POST', mode: 'no-cors', credentials: 'include'}})
  .then(() => {{ document.title = 'sent'; }}, () => {{ document.title = 'sent'; }});
</script>"""


@contextlib.contextmanager
def attacker_site(pages: dict[str, str], hits: list[str] | None = None) -> Iterator[str]:
    """A web server on another port of 127.0.0.1 serving PAGES (path -> HTML); its base URL.
    Every request's path is appended to HITS (a sentinel that payloads would call home to)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if hits is not None:
                hits.append(self.path)
            body = pages.get(self.path, "not here").encode()
            self.send_response(200 if self.path in pages else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            self.do_GET()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def browser():  # type: ignore[no-untyped-def]
    with chromium(SHOTS) as launched:
        yield launched


def refusals_of(hub: Hub) -> list[dict[str, object]]:
    staff = CheckApi(hub, hub.token_for(hub.settings.instructor))
    answer = staff.call("GET", "refusals")
    assert answer.status_code == 200, answer.text
    return list(answer.json())


def test_a_page_on_another_port_cannot_start_a_check(browser, hub: Hub) -> None:  # type: ignore[no-untyped-def]
    """Can a page on another origin, with the student's cookies (and their stolen form token),
    queue a check in the student's name? Is each attempt in the staff's log, with whose it was?"""
    fill_in_func(hub, STUDENT)
    api = CheckApi(hub, hub.token_for(STUDENT))
    before = len(api.call("GET", "checks").json())
    page = log_in(browser, hub, STUDENT)
    page.goto(f"{hub.settings.url}/services/check/")
    page.wait_for_selector(f"#check-{LAB}")
    hub_origin = hub.settings.url.rstrip("/")
    # Served under the service's path, so that the page can read the service's _xsrf cookie.
    paths = {
        "/services/check/form.html": FORM_ATTACK.format(hub=hub_origin, lab=LAB),
        "/services/check/api.html": API_ATTACK.format(hub=hub_origin, lab=LAB),
    }
    with attacker_site(paths) as evil:
        page.goto(f"{evil}/services/check/form.html")
        page.wait_for_timeout(3000)
        assert page.title() == "stole-xsrf"  # the form token did leak: it must not be enough
        page.screenshot(path=str(SHOTS / "01-form-from-another-port.png"), full_page=True)
        page.goto(f"{evil}/services/check/api.html")
        page.wait_for_function("document.title === 'sent'")
        page.wait_for_timeout(2000)

    # The student's own cookies, sent to the API from the hub's origin: still not enough (a
    # script of the service's pages could not even try: their CSP forbids script and fetch).
    answer = page.context.request.post(
        f"{hub.settings.url}/services/check/api/labs/{LAB}/checks",
        headers={"Origin": hub.settings.url.rstrip("/")},
    )
    assert answer.status == 403, answer.text()

    mine = api.call("GET", "checks").json()
    assert len(mine) == before, f"a check was queued by another page: {mine}"
    refused = [r for r in refusals_of(hub) if STUDENT in str(r["who"])]
    form = [r for r in refused if str(r["action"]).endswith(f"/labs/{LAB}")]
    cross_api = [r for r in refused if "Sec-Fetch-Site: same-site" in str(r["reason"])]
    cookie_only = [r for r in refused if "login cookie" in str(r["reason"])]
    assert form, refused
    assert "same-site" in str(form[-1]["reason"])
    assert any(f"/api/labs/{LAB}/checks" in str(r["action"]) for r in cross_api), refused
    assert cookie_only, refused

    teacher = log_in(browser, hub, hub.settings.instructor)
    teacher.goto(f"{hub.settings.url}/services/check/staff")
    table = teacher.locator("#refusals").inner_text()
    assert STUDENT in table
    assert "same-site" in table
    teacher.screenshot(path=str(SHOTS / "02-staff-sees-the-refusals.png"), full_page=True)


def test_a_repeated_student_parameter_is_refused_and_logged(hub: Hub) -> None:
    """Is a request that names `student` twice refused by both services and logged for staff?"""
    token = hub.token_for("st-ben")
    check = CheckApi(hub, token).call(
        "POST", f"labs/{LAB}/checks", params=[("student", "st-ben"), ("student", "st-ben")]
    )
    assert check.status_code == 400, check.text
    assert "given 2 times" in check.json()["message"]
    assert any(
        "st-ben" in str(r["who"]) and "given 2 times" in str(r["reason"]) for r in refusals_of(hub)
    )

    exchange = Exchange(hub, token).call(
        "GET", "submissions", params=[("student", "st-ben"), ("student", "st-ada")]
    )
    assert exchange.status_code == 403, exchange.text
    staff = Exchange(hub, hub.token_for(hub.settings.instructor)).call("GET", "refusals")
    assert any(
        r["hub_user"] == "st-ben" and "given 2 times" in r["reason"] for r in staff.json()
    ), staff.json()


def test_services_send_a_script_free_csp(hub: Hub) -> None:
    """Do the check service's pages and both services' APIs forbid every script by CSP?"""
    for url in (
        f"{hub.settings.url}/services/check/api/checks",
        f"{hub.settings.url}/services/exchange/api/submissions",
    ):
        answer = requests.get(url, timeout=30, allow_redirects=False)
        csp = answer.headers.get("Content-Security-Policy", "")
        assert "default-src 'none'" in csp, (url, answer.status_code, csp)
        assert "script-src" not in csp

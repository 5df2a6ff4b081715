"""The production hub config, started for real without a container engine (part of `make test`).

docker/hub/jupyterhub_config.py runs as a deployment runs it (tests/production.py): TLS on the
public port, PAM logins, the rosters' groups, and its four services (the exchange, the course's
formgrader as grader-introdl, check-my-work, the idle culler) started by the hub. Only spawning a
student's container needs an engine: tests/test_production_hub.py (make test-docker) does that.
"""

from __future__ import annotations

import ssl
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests import production
from tests.dockerhub import free_port
from tests.hub import skip_reason


@pytest.fixture(scope="module")
def hub() -> Iterator[production.Production]:
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    base = Path(tempfile.mkdtemp(prefix="introdl-production-", dir="/tmp"))
    made = production.prepare(
        base, public_host="127.0.0.1", subnet="127.77.0.0/24", port=free_port()
    )
    with production.running(made) as started:
        yield started


def test_the_hub_answers_over_tls_only_with_its_certificate(hub: production.Production) -> None:
    """Is the public port TLS with the configured certificate (and nothing in plain HTTP)?"""
    assert requests.get(f"{hub.url}/hub/api", verify=str(hub.ca), timeout=10).ok
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"{hub.url}/hub/api", timeout=10)  # the public CAs do not vouch for it
    plain = hub.url.replace("https://", "http://")
    with pytest.raises(requests.RequestException):
        requests.get(f"{plain}/hub/api", timeout=10)
    context = ssl.create_default_context(cafile=str(hub.ca))
    assert context  # the same file a student server trusts (INTRODL_CA_FILE)


def test_people_log_in_with_the_rosters_groups(hub: production.Production) -> None:
    """PAM logins work; staff and students are in nbgrader's groups from the rosters."""
    token = hub.token("pr-teacher")
    answer = requests.get(
        f"{hub.url}/hub/api/users/pr-ada",
        headers={"Authorization": f"token {token}"},
        verify=str(hub.ca),
        timeout=10,
    )
    # Staff are not hub admins: they read no one's record through the API.
    assert answer.status_code in (403, 404), answer.text[:300]
    me = requests.get(
        f"{hub.url}/hub/api/user",
        headers={"Authorization": f"token {hub.token('pr-ada')}"},
        verify=str(hub.ca),
        timeout=10,
    ).json()
    assert me["name"] == "pr-ada"
    assert me["groups"] == ["nbgrader-introdl"]
    bad = requests.Session()
    bad.verify = str(hub.ca)
    bad.trust_env = False
    bad.get(f"{hub.url}/hub/login", timeout=10)
    refused = bad.post(
        f"{hub.url}/hub/login",
        data={"username": "pr-ada", "password": "wrong", "_xsrf": bad.cookies.get("_xsrf") or ""},
        allow_redirects=False,
        timeout=30,
    )
    assert refused.status_code != 302


def test_every_service_runs_and_answers_only_its_people(hub: production.Production) -> None:
    """The exchange, the formgrader and check-my-work answer; each refuses who it should."""
    ada = {"Authorization": f"token {hub.token('pr-ada')}"}
    teacher = {"Authorization": f"token {hub.token('pr-teacher')}"}
    get = lambda path, headers: requests.get(  # noqa: E731
        f"{hub.url}{path}", headers=headers, verify=str(hub.ca), timeout=30, allow_redirects=False
    )
    # The exchange: a student lists released labs; without a token, nothing.
    assert get("/services/exchange/api/assignments", ada).status_code == 200
    assert get("/services/exchange/api/assignments", {}).status_code in (401, 403)
    # The formgrader runs as grader-introdl over the course: staff in, students out.
    staff_page = get("/services/introdl/api/status", teacher)
    assert staff_page.status_code == 200, staff_page.text[:300]
    assert get("/services/introdl/api/status", ada).status_code == 403
    # Check my work: a student's own page; its staff page is staff only.
    assert get("/services/check/api/checks", ada).status_code == 200
    assert get("/services/check/api/queue", ada).status_code == 403
    assert get("/services/check/api/queue", teacher).status_code == 200
    log = hub.tail(200_000)
    assert "jupyterhub-idle-culler" in log
    assert "Traceback" not in log, log[-4000:]

"""The LMS over HTTP: an access token, AGS line items and scores, the NRPS roster.

The token comes from OAuth2 client credentials with a signed JWT assertion (RFC 7523; the LTI
Advantage security framework). A request that fails with 429, a 5xx or no answer is retried with
exponential backoff (a Retry-After header wins, up to `max_wait`); a 401 gets a fresh token once.
What still fails reaches the caller as the LMS's last answer or an `LMSError`, never half-handled.

The bearer token is sent only to the origins the course configured: a line item id or a `next`
link on another host (a misconfigured or hostile LMS) is refused rather than handed the token.
Log lines carry methods, URLs and statuses, never a header, a token or an assertion.
"""

from __future__ import annotations

import email.utils
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import requests
from cryptography.hazmat.primitives.asymmetric import rsa

from introdl.lms.keys import client_assertion
from introdl.lms.settings import Settings

log = logging.getLogger("introdl.lms")

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
SCOPES = (
    "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
    "https://purl.imsglobal.org/spec/lti-ags/scope/score",
    "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly",
)
LINEITEM = "application/vnd.ims.lis.v2.lineitem+json"
LINEITEMS = "application/vnd.ims.lis.v2.lineitemcontainer+json"
SCORE = "application/vnd.ims.lis.v1.score+json"
MEMBERS = "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"
RETRIED = frozenset({429, 500, 502, 503, 504})
MAX_PAGES = 1000


class LMSError(Exception):
    """A request the LMS did not accept, after retries; the message says which and what it said."""

    def __init__(self, message: str, *, status: int | None = None, answer: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.answer = answer


def answer_of(resp: requests.Response) -> str:
    """What the LMS said, short enough to store and print (never a token: not used on /token)."""
    return f"{resp.status_code} {resp.text.strip()[:500]}".strip()


class Client:
    """One push's conversation with the platform (one token, refreshed once on 401)."""

    def __init__(
        self,
        settings: Settings,
        key: rsa.RSAPrivateKey,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self._key = key
        self._token: str | None = None
        self._sleep = sleep
        self.session = requests.Session()
        self.session.trust_env = False  # no proxy from the environment sees the bearer token
        self.waits: list[float] = []
        self.origins = {_origin(settings.lineitems_url), _origin(settings.memberships_url)}

    # --- the token -------------------------------------------------------------------------
    def _access_token(self) -> str:
        if self._token is None:
            s = self.settings
            form = {
                "grant_type": "client_credentials",
                "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": client_assertion(
                    self._key, client_id=s.client_id, audience=s.token_audience
                ),
                "scope": " ".join(SCOPES),
            }
            resp = self._send("POST", s.token_url, {"Accept": "application/json"}, data=form)
            try:
                token = resp.json().get("access_token") if resp.status_code == 200 else None
            except ValueError:
                token = None
            if not isinstance(token, str) or not token:
                error = _token_error(resp)
                raise LMSError(
                    f"the LMS's token endpoint {s.token_url} gave no access token ({error}); check "
                    "c.LTI.client_id and that the LMS holds the tool's public key (introdl lms jwks)",
                    status=resp.status_code,
                    answer=error,
                )
            self._token = token
        return self._token

    # --- requests with retries ----------------------------------------------------------------
    def _send(
        self, method: str, url: str, headers: dict[str, str], *, auth: bool = False, **body: Any
    ) -> requests.Response:
        attempt, refreshed = 0, False
        while True:
            sent = dict(headers)
            if auth:
                sent["Authorization"] = f"Bearer {self._access_token()}"
            resp: requests.Response | None
            try:
                resp = self.session.request(
                    method,
                    url,
                    headers=sent,
                    timeout=self.settings.timeout,
                    allow_redirects=False,
                    **body,
                )
                log.debug("%s %s -> %s", method, url, resp.status_code)
            except requests.RequestException as err:
                resp = None
                log.debug("%s %s -> no answer (%s)", method, url, type(err).__name__)
                problem = f"no answer: {type(err).__name__}"
            if resp is not None:
                if resp.status_code == 401 and auth and not refreshed:
                    refreshed, self._token = True, None  # expired: one fresh token, then judge
                    continue
                if resp.status_code not in RETRIED:
                    return resp
                problem = f"answered {resp.status_code}"
            wait = _retry_after(resp) if resp is not None else None
            wait = self.settings.backoff * 2**attempt if wait is None else wait
            if attempt >= self.settings.retries or wait > self.settings.max_wait:
                tries = f"{attempt + 1} tries"
                if resp is None:
                    raise LMSError(f"{method} {url}: {problem} after {tries}")
                if wait > self.settings.max_wait:
                    log.debug("%s %s: Retry-After %.0f s is past c.LTI.max_wait", method, url, wait)
                return resp
            log.debug("%s %s: %s; retry in %.1f s", method, url, problem, wait)
            self.waits.append(wait)
            self._sleep(wait)
            attempt += 1

    def _api(
        self, method: str, url: str, accept: str, *, content_type: str = "", json: Any = None
    ) -> requests.Response:
        if _origin(url) not in self.origins:
            raise LMSError(
                f"the LMS pointed the tool at {url}, outside the configured c.LTI.lineitems_url and "
                "c.LTI.memberships_url hosts; refused (the access token goes only to those)"
            )
        headers = {"Accept": accept}
        if content_type:
            headers["Content-Type"] = content_type
        return self._send(method, url, headers, auth=True, json=json)

    # --- AGS ------------------------------------------------------------------------------------
    def find_line_item(self, resource_id: str) -> dict[str, Any] | None:
        url = _with_query(
            self.settings.lineitems_url, {"resource_id": resource_id, "tag": resource_id}
        )
        resp = self._api("GET", url, LINEITEMS)
        if resp.status_code != 200:
            raise LMSError(
                f"GET {url}: the LMS answered {answer_of(resp)}",
                status=resp.status_code,
                answer=answer_of(resp),
            )
        items = [i for i in _json_list(resp) if i.get("resourceId") == resource_id]
        return items[0] if items else None

    def create_line_item(
        self, resource_id: str, label: str, score_maximum: float
    ) -> dict[str, Any]:
        body = {
            "label": label,
            "scoreMaximum": score_maximum,
            "resourceId": resource_id,
            "tag": resource_id,
        }
        url = self.settings.lineitems_url
        resp = self._api("POST", url, LINEITEM, content_type=LINEITEM, json=body)
        if resp.status_code not in (200, 201):
            raise LMSError(
                f"POST {url}: the LMS did not create the line item: {answer_of(resp)}",
                status=resp.status_code,
                answer=answer_of(resp),
            )
        item: dict[str, Any] = resp.json()
        if not isinstance(item.get("id"), str):
            raise LMSError(f"POST {url}: the LMS's new line item has no id: {answer_of(resp)}")
        return item

    def post_score(
        self,
        line_item: str,
        user_id: str,
        given: float,
        maximum: float,
        when: datetime | None = None,
    ) -> requests.Response:
        """POST one score (the LMS's answer is the caller's to judge and record)."""
        score = {
            "userId": user_id,
            "scoreGiven": given,
            "scoreMaximum": maximum,
            "activityProgress": "Completed",
            "gradingProgress": "FullyGraded",
            "timestamp": (when or datetime.now(UTC)).isoformat(timespec="milliseconds"),
        }
        return self._api(
            "POST", _scores_url(line_item), "application/json", content_type=SCORE, json=score
        )

    # --- NRPS -----------------------------------------------------------------------------------
    def members(self) -> list[dict[str, Any]]:
        url: str | None = self.settings.memberships_url
        found: list[dict[str, Any]] = []
        for _ in range(MAX_PAGES):
            if url is None:
                return found
            resp = self._api("GET", url, MEMBERS)
            if resp.status_code != 200:
                raise LMSError(
                    f"GET {url}: the LMS did not give the roster: {answer_of(resp)}",
                    status=resp.status_code,
                    answer=answer_of(resp),
                )
            members = resp.json().get("members", [])
            found.extend(m for m in members if isinstance(m, dict))
            link = resp.links.get("next", {}).get("url")
            url = str(link) if link else None
        raise LMSError(
            f"the roster at {self.settings.memberships_url} has more than {MAX_PAGES} pages"
        )


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc


def _with_query(url: str, extra: dict[str, str]) -> str:
    parts = urlsplit(url)
    query = "&".join(q for q in (parts.query, urlencode(extra)) if q)
    return urlunsplit(parts._replace(query=query))


def _scores_url(line_item: str) -> str:
    """The line item's URL with /scores on its path (its query string kept, as AGS says)."""
    parts = urlsplit(line_item)
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/scores"))


def _retry_after(resp: requests.Response | None) -> float | None:
    value = resp.headers.get("Retry-After") if resp is not None else None
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _json_list(resp: requests.Response) -> list[dict[str, Any]]:
    try:
        data = resp.json()
    except ValueError:
        return []
    return [i for i in data if isinstance(i, dict)] if isinstance(data, list) else []


def _token_error(resp: requests.Response) -> str:
    """The OAuth2 error of a refused token request (error and description only)."""
    try:
        data = resp.json()
    except ValueError:
        return f"{resp.status_code}"
    if not isinstance(data, dict):
        return f"{resp.status_code}"
    parts = [str(data.get(k)) for k in ("error", "error_description") if data.get(k)]
    return f"{resp.status_code} {': '.join(parts)}".strip()

"""A small LTI 1.3 platform of the project's own, on loopback, for the tests (PyJWT + cryptography).

It plays the LMS side of LTI Advantage with real RSA keys and signatures:

- `/jwks`: the platform's public keys (a tool verifies launch id_tokens with them);
- `/token`: OAuth2 client credentials with a signed JWT client assertion (RFC 7523), verified
  against the public key the tool registered; gives opaque bearer tokens with the granted scopes;
- `/contexts/<id>/lineitems`: AGS line items (GET with `resource_id`/`tag` filters, POST), one line
  item's `/scores` (POST, `application/vnd.ims.lis.v1.score+json`) and `/results` (GET);
- `/contexts/<id>/memberships`: the NRPS roster, paged with a `Link: <...>; rel="next"` header.

It can be told to fail: `fail_next(401, times=2)` answers the next two AGS/NRPS calls with an
expired-token 401, `fail_next(429, retry_after=1)` with a rate limit, `fail_next(500)` with an
error. Every request is kept in `calls` (method, path, status), so a test can count what was sent.

It also launches a tool, as the LTI 1.3 core spec and the IMS security framework say
(third-party-initiated login, then OIDC's implicit flow with `response_mode=form_post`):

- `/launch/<login_hint>`: what the LMS page of a course link does: an auto-submitting form that
  POSTs `iss`, `login_hint`, `target_link_uri`, `client_id` and `lti_deployment_id` to the tool's
  login initiation URL (`register_launch`);
- `/auth`: the OIDC authorization endpoint the tool sends the browser to: it checks the
  `client_id`, the registered `redirect_uri`, `response_type=id_token`, `scope=openid`,
  `response_mode=form_post`, `prompt=none` and the `login_hint`, signs an id_token for that person
  (`add_person`) with the tool's `nonce`, and answers with an auto-submitting form that POSTs
  `id_token` and `state` to the `redirect_uri`.

`next_launch(how)` makes the next id_token differently, once (`how(claims) -> token`), so a test
can send a forged, expired, wrong-audience, wrong-key or replayed one; `issued` keeps every
id_token sent. `id_token(...)` signs with the same key the JWKS publishes.
"""

from __future__ import annotations

import html
import json
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
SCOPE_LINEITEM = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem"
SCOPE_LINEITEM_READ = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly"
SCOPE_SCORE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"
SCOPE_NRPS = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
LEARNER = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"
INSTRUCTOR = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"
MEDIA = {
    "lineitem": "application/vnd.ims.lis.v2.lineitem+json",
    "lineitems": "application/vnd.ims.lis.v2.lineitemcontainer+json",
    "score": "application/vnd.ims.lis.v1.score+json",
    "results": "application/vnd.ims.lis.v2.resultcontainer+json",
    "members": "application/vnd.ims.lti-nrps.v2.membershipcontainer+json",
}


def new_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def private_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def public_jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    jwk: dict[str, Any] = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    return {**jwk, "kid": kid, "alg": "RS256", "use": "sig"}


@dataclass
class Fault:
    status: int
    times: int
    retry_after: str | None = None
    only: str = ""  # fail only requests whose path contains this ("/scores")
    after: int = 0  # let this many matching requests through first


@dataclass
class Context:
    """One course on the platform: its line items, their scores, its roster."""

    members: list[dict[str, Any]] = field(default_factory=list)
    lineitems: dict[int, dict[str, Any]] = field(default_factory=dict)
    scores: dict[int, list[dict[str, Any]]] = field(default_factory=dict)


class Platform:
    """The platform; start it with `with Platform() as platform:` (a thread serves it)."""

    def __init__(
        self,
        *,
        page_size: int = 100,
        private_key: rsa.RSAPrivateKey | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.private_key = private_key or new_rsa_key()
        self.kid = "platform-key-1"
        self.page_size = page_size
        self.deployment_id = "deployment-1"
        self.contexts: dict[str, Context] = {}
        self.tools: dict[str, dict[str, Any]] = {}  # client_id -> the tool's public JWK
        self.tokens: dict[str, tuple[float, set[str]]] = {}  # token -> (expires at, scopes)
        self.seen_jti: set[str] = set()
        self.faults: list[Fault] = []
        self.calls: list[tuple[str, str, int]] = []
        self.refused_assertions: list[str] = []
        self.assertions: list[
            str
        ] = []  # every client assertion received (a test greps logs for them)
        self._lock = threading.Lock()
        # launches: client_id -> (login initiation URL, redirect URI); people by login_hint
        self.launch_tools: dict[str, tuple[str, str]] = {}
        self.people: dict[str, dict[str, Any]] = {}
        self.issued: list[str] = []
        self._next_launch: Callable[[dict[str, Any]], str] | None = None
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        # HOST: the name the browser and the tool use (another site than the tool's, if wanted)
        self.url = f"http://{host}:{self._server.server_address[1]}"
        self.issuer = self.url
        self.token_url = f"{self.url}/token"
        self.jwks_url = f"{self.url}/jwks"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> Platform:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    # --- set-up by the test ---------------------------------------------------------------
    def register_tool(self, client_id: str, public_jwk: dict[str, Any]) -> None:
        self.tools[client_id] = public_jwk

    def context(self, context_id: str) -> Context:
        return self.contexts.setdefault(context_id, Context())

    def lineitems_url(self, context_id: str) -> str:
        self.context(context_id)
        return f"{self.url}/contexts/{context_id}/lineitems"

    def memberships_url(self, context_id: str) -> str:
        self.context(context_id)
        return f"{self.url}/contexts/{context_id}/memberships"

    def add_member(
        self, context_id: str, user_id: str, *, role: str = LEARNER, **extra: Any
    ) -> None:
        self.context(context_id).members.append(
            {"user_id": user_id, "roles": [role], "status": "Active", **extra}
        )

    def fail_next(
        self,
        status: int,
        times: int = 1,
        *,
        retry_after: str | None = None,
        only: str = "",
        after: int = 0,
    ) -> None:
        """Answer the next TIMES AGS/NRPS calls (those whose path holds ONLY, after the first
        AFTER of them) with STATUS.

        The token endpoint keeps working: a 401 here is an access token the platform expired.
        """
        with self._lock:
            self.faults.append(Fault(status, times, retry_after, only, after))

    def expire_tokens(self) -> None:
        with self._lock:
            self.tokens = {t: (0.0, scopes) for t, (_, scopes) in self.tokens.items()}

    def jwks(self) -> dict[str, Any]:
        return {"keys": [public_jwk(self.private_key, self.kid)]}

    def id_token(self, claims: dict[str, Any], *, key: Any = None, kid: str | None = None) -> str:
        """A launch id_token signed by the platform (or by KEY, to forge one)."""
        now = int(time.time())
        body = {"iss": self.issuer, "iat": now, "exp": now + 300, "nonce": uuid.uuid4().hex}
        body.update(claims)
        return jwt.encode(
            body, key or self.private_key, algorithm="RS256", headers={"kid": kid or self.kid}
        )

    # --- launches ---------------------------------------------------------------------------
    def register_launch(self, client_id: str, *, login_url: str, redirect_uri: str) -> None:
        """The tool as the LMS admin registers it: login initiation URL and redirect URI."""
        self.launch_tools[client_id] = (login_url, redirect_uri)

    def add_person(
        self,
        login_hint: str,
        *,
        sub: str,
        role: str,
        context_id: str,
        **claims: Any,
    ) -> None:
        """Someone who can launch the tool from course CONTEXT_ID with ROLE (a full role URI)."""
        self.people[login_hint] = {
            "sub": sub,
            "https://purl.imsglobal.org/spec/lti/claim/roles": [role],
            "https://purl.imsglobal.org/spec/lti/claim/context": {
                "id": context_id,
                "label": context_id.upper(),
                "title": f"Course {context_id}",
            },
            **claims,
        }

    def launch_url(self, login_hint: str, client_id: str, target_link_uri: str) -> str:
        query = urlencode({"client_id": client_id, "target_link_uri": target_link_uri})
        return f"{self.url}/launch/{login_hint}?{query}"

    def next_launch(self, how: Callable[[dict[str, Any]], str]) -> None:
        """Make the next id_token with HOW(claims) instead of signing CLAIMS (once)."""
        self._next_launch = how

    def launch_claims(
        self, client_id: str, person: dict[str, Any], nonce: str, target: str
    ) -> dict[str, Any]:
        return {
            "aud": client_id,
            "azp": client_id,
            "nonce": nonce,
            "https://purl.imsglobal.org/spec/lti/claim/message_type": "LtiResourceLinkRequest",
            "https://purl.imsglobal.org/spec/lti/claim/version": "1.3.0",
            "https://purl.imsglobal.org/spec/lti/claim/deployment_id": self.deployment_id,
            "https://purl.imsglobal.org/spec/lti/claim/target_link_uri": target,
            "https://purl.imsglobal.org/spec/lti/claim/resource_link": {"id": "link-1"},
            **person,
        }

    def authorize(self, query: dict[str, str]) -> tuple[int, str]:
        """The OIDC authorization request: (status, an HTML page) - a form_post or an error."""
        client_id = query.get("client_id", "")
        if client_id not in self.launch_tools:
            return 400, "unknown client_id"
        redirect_uri = self.launch_tools[client_id][1]
        expected = {
            "response_type": "id_token",
            "scope": "openid",
            "response_mode": "form_post",
            "prompt": "none",
            "redirect_uri": redirect_uri,
        }
        wrong = [k for k, v in expected.items() if query.get(k) != v]
        person = self.people.get(query.get("login_hint", ""))
        if wrong or person is None or not query.get("nonce") or not query.get("state"):
            return 400, f"bad authorization request: {wrong or 'login_hint, nonce or state'}"
        target = urlsplit(query.get("lti_message_hint", "")).geturl() or redirect_uri
        claims = self.launch_claims(client_id, person, query["nonce"], target)
        how, self._next_launch = self._next_launch, None
        token = how(claims) if how else self.id_token(claims)
        self.issued.append(token)
        return 200, auto_post(redirect_uri, {"id_token": token, "state": query["state"]})

    # --- what a test reads back -----------------------------------------------------------
    def scores(self, context_id: str, lineitem: int) -> list[dict[str, Any]]:
        return list(self.context(context_id).scores.get(lineitem, []))

    def posts(self, path_part: str) -> int:
        return sum(1 for m, p, s in self.calls if m == "POST" and path_part in p and s < 300)

    # --- serving ------------------------------------------------------------------------
    def take_fault(self, path: str) -> Fault | None:
        with self._lock:
            self.faults = [f for f in self.faults if f.times > 0]
            for fault in self.faults:
                if fault.only in path:
                    if fault.after > 0:
                        fault.after -= 1
                        return None
                    fault.times -= 1
                    return fault
            return None

    def grant(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if form.get("grant_type") != "client_credentials":
            return 400, {"error": "unsupported_grant_type"}
        if form.get("client_assertion_type") != ASSERTION_TYPE:
            return 400, {"error": "invalid_request", "error_description": "assertion type"}
        assertion = form.get("client_assertion", "")
        self.assertions.append(assertion)
        try:
            unverified = jwt.decode(assertion, options={"verify_signature": False})
            client_id = str(unverified.get("iss", ""))
            tool = self.tools[client_id]
            claims = jwt.decode(
                assertion,
                jwt.PyJWK(tool).key,
                algorithms=["RS256"],
                audience=self.token_url,
                issuer=client_id,
                options={"require": ["exp", "iat", "jti", "sub", "aud", "iss"]},
            )
            if claims["sub"] != client_id:
                raise jwt.InvalidTokenError("sub is not the client id")
            if jwt.get_unverified_header(assertion).get("kid") != tool.get("kid"):
                raise jwt.InvalidTokenError("unknown kid")
            with self._lock:
                if claims["jti"] in self.seen_jti:
                    raise jwt.InvalidTokenError("jti replayed")
                self.seen_jti.add(claims["jti"])
        except (jwt.InvalidTokenError, KeyError) as err:
            self.refused_assertions.append(str(err))
            return 401, {"error": "invalid_client", "error_description": str(err)}
        known = {SCOPE_LINEITEM, SCOPE_LINEITEM_READ, SCOPE_SCORE, SCOPE_NRPS}
        scopes = set(form.get("scope", "").split()) & known
        token = secrets.token_urlsafe(24)
        with self._lock:
            self.tokens[token] = (time.time() + 3600, scopes)
        return 200, {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": 3600,
            "scope": " ".join(sorted(scopes)),
        }

    def scopes_of(self, authorization: str) -> set[str] | None:
        if not authorization.startswith("Bearer "):
            return None
        with self._lock:
            found = self.tokens.get(authorization[len("Bearer ") :])
        if found is None or found[0] < time.time():
            return None
        return found[1]


def auto_post(action: str, fields: dict[str, str]) -> str:
    """An HTML page that POSTs FIELDS to ACTION as soon as it loads (LTI's form_post)."""
    inputs = "".join(
        f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
        for k, v in fields.items()
    )
    return (
        f'<!doctype html><html><body><form id="post" method="post" action="{html.escape(action)}">'
        f"{inputs}<noscript><button>Continue</button></noscript></form>"
        "<script>document.getElementById('post').submit()</script></body></html>"
    )


def _handler(platform: Platform) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def _reply(
            self,
            status: int,
            body: Any = None,
            media: str = "application/json",
            headers: dict[str, str] | None = None,
        ) -> None:
            data = b"" if body is None else json.dumps(body).encode()
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            if data:
                self.send_header("Content-Type", media)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            platform.calls.append((self.command, self.path, status))

        def _page(self, status: int, text: str) -> None:
            data = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            platform.calls.append((self.command, self.path.split("?")[0], status))

        def _serve(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            url = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            parts = [p for p in url.path.split("/") if p]
            if parts == ["jwks"] and method == "GET":
                return self._reply(200, platform.jwks())
            if len(parts) == 2 and parts[0] == "launch" and method == "GET":
                client_id = query.get("client_id", "")
                if parts[1] not in platform.people or client_id not in platform.launch_tools:
                    return self._page(404, "no such person or tool")
                target = query.get("target_link_uri", "")
                return self._page(
                    200,
                    auto_post(
                        platform.launch_tools[client_id][0],
                        {
                            "iss": platform.issuer,
                            "login_hint": parts[1],
                            "target_link_uri": target,
                            "lti_message_hint": target,
                            "client_id": client_id,
                            "lti_deployment_id": platform.deployment_id,
                        },
                    ),
                )
            if parts == ["auth"]:
                if method == "POST":
                    query.update({k: v[0] for k, v in parse_qs(raw.decode()).items()})
                return self._page(*platform.authorize(query))
            if parts == ["token"] and method == "POST":
                form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
                status, body = platform.grant(form)
                return self._reply(status, body)
            if len(parts) < 3 or parts[0] != "contexts" or parts[1] not in platform.contexts:
                return self._reply(404, {"error": "not found"})
            fault = platform.take_fault(url.path)
            if fault is not None:
                headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
                if fault.status == 401:
                    headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
                return self._reply(
                    fault.status, {"error": f"told to fail ({fault.status})"}, headers=headers
                )
            scopes = platform.scopes_of(self.headers.get("Authorization", ""))
            if scopes is None:
                return self._reply(
                    401, {"error": "invalid_token"}, headers={"WWW-Authenticate": "Bearer"}
                )
            ctx = platform.contexts[parts[1]]
            base = f"{platform.url}/contexts/{parts[1]}"
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                return self._reply(400, {"error": "body is not JSON"})
            return self._route(method, parts[2:], query, body, ctx, base, scopes)

        def _route(
            self,
            method: str,
            rest: list[str],
            query: dict[str, str],
            body: Any,
            ctx: Context,
            base: str,
            scopes: set[str],
        ) -> None:
            content_type = self.headers.get("Content-Type", "")
            if rest == ["memberships"] and method == "GET":
                if SCOPE_NRPS not in scopes:
                    return self._reply(403, {"error": "scope"})
                start = int(query.get("page", "0"))
                page = ctx.members[start : start + platform.page_size]
                headers = {}
                if start + platform.page_size < len(ctx.members):
                    headers["Link"] = (
                        f'<{base}/memberships?page={start + platform.page_size}>; rel="next"'
                    )
                doc = {"id": f"{base}/memberships", "context": {"id": base}, "members": page}
                return self._reply(200, doc, MEDIA["members"], headers)
            if rest == ["lineitems"] and method == "GET":
                if not scopes & {SCOPE_LINEITEM, SCOPE_LINEITEM_READ}:
                    return self._reply(403, {"error": "scope"})
                items = [
                    item
                    for item in ctx.lineitems.values()
                    if all(
                        item.get(key) == query[arg]
                        for arg, key in (("resource_id", "resourceId"), ("tag", "tag"))
                        if arg in query
                    )
                ]
                return self._reply(200, items, MEDIA["lineitems"])
            if rest == ["lineitems"] and method == "POST":
                if SCOPE_LINEITEM not in scopes:
                    return self._reply(403, {"error": "scope"})
                if content_type != MEDIA["lineitem"] or not isinstance(body, dict):
                    return self._reply(415, {"error": f"expected {MEDIA['lineitem']}"})
                if not isinstance(body.get("scoreMaximum"), int | float) or not body.get("label"):
                    return self._reply(400, {"error": "label and scoreMaximum are required"})
                number = len(ctx.lineitems) + 1
                item = {**body, "id": f"{base}/lineitems/{number}"}
                ctx.lineitems[number] = item
                return self._reply(201, item, MEDIA["lineitem"])
            if len(rest) >= 2 and rest[0] == "lineitems" and rest[1].isdigit():
                number = int(rest[1])
                if number not in ctx.lineitems:
                    return self._reply(404, {"error": "no such line item"})
                if rest[2:] == ["scores"] and method == "POST":
                    return self._score(ctx, number, body, content_type, scopes)
                if rest[2:] == ["results"] and method == "GET":
                    latest = {s["userId"]: s for s in ctx.scores.get(number, [])}
                    results = [
                        {
                            "userId": u,
                            "resultScore": s["scoreGiven"],
                            "resultMaximum": s["scoreMaximum"],
                        }
                        for u, s in latest.items()
                    ]
                    return self._reply(200, results, MEDIA["results"])
                if not rest[2:] and method == "GET":
                    return self._reply(200, ctx.lineitems[number], MEDIA["lineitem"])
            return self._reply(404, {"error": "not found"})

        def _score(
            self, ctx: Context, number: int, body: Any, content_type: str, scopes: set[str]
        ) -> None:
            if SCOPE_SCORE not in scopes:
                return self._reply(403, {"error": "scope"})
            if content_type != MEDIA["score"] or not isinstance(body, dict):
                return self._reply(415, {"error": f"expected {MEDIA['score']}"})
            required = ("userId", "activityProgress", "gradingProgress", "timestamp")
            missing = [k for k in required if k not in body]
            if missing:
                return self._reply(400, {"error": f"missing {missing}"})
            if body["userId"] not in {m["user_id"] for m in ctx.members}:
                return self._reply(422, {"error": f"user {body['userId']} is not in this course"})
            ctx.scores.setdefault(number, []).append(body)
            return self._reply(204)

    return Handler

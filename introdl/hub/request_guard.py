"""What the course's hub services refuse before they look at a request (issue 21, case 4).

A browser sends the hub's login cookie with any request to the hub's host, whichever page asked:
a page on another site, and (cookies ignore ports) a page on another port of the same host.
So a state-changing request (anything but GET/HEAD/OPTIONS) must come from the hub's own origin:

- `Sec-Fetch-Site`, which browsers set and pages cannot, must be `same-origin` (or `none`: the
  person typed the URL); `same-site` is another port or subdomain and is refused;
- `Origin`, when sent (every browser sends it on a POST), must be the origin the request was
  addressed to (its Host), never `null` (sandboxed frames, data: pages).

Programs (nbgrader's exchange client, curl) send neither header and authenticate with a hub
token in `Authorization`, which no cross-site page can add without a CORS preflight that the
services never grant. The services also refuse a `student` parameter given more than once:
which copy a framework reads is an accident, so a request that repeats it is a forgery.

Content-Security-Policy headers for the services' pages live here too.
"""

from __future__ import annotations

from urllib.parse import urlparse

from tornado.httputil import HTTPServerRequest

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# Pages that need no script at all: nothing runs, nothing is fetched from elsewhere, no frames.
NO_SCRIPT_CSP = (
    "default-src 'none'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)


def page_csp(style_hash: str) -> str:
    """NO_SCRIPT_CSP plus one inline stylesheet, allowed by its sha256 (base64) hash."""
    return f"{NO_SCRIPT_CSP}; style-src 'sha256-{style_hash}'"


def cross_origin_reason(request: HTTPServerRequest) -> str | None:
    """Why a state-changing REQUEST is cross-origin, in words; None when it is not."""
    if request.method in SAFE_METHODS:
        return None
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None and site not in ("same-origin", "none"):
        return (
            f"the request was sent by a page of another site or port (Sec-Fetch-Site: {site}); "
            "only the course's own pages may change anything"
        )
    origin = request.headers.get("Origin")
    if origin is None:
        return None
    expected = request.headers.get("Host", request.host)
    if origin == "null" or urlparse(origin).netloc.lower() != expected.lower():
        return (
            f"the request was sent by a page on {origin[:200]}, not on {expected[:200]}; "
            "only the course's own pages may change anything"
        )
    return None


def repeated_student(request: HTTPServerRequest) -> str | None:
    """Why REQUEST's `student` parameters are refused (given more than once), or None."""
    values = request.query_arguments.get("student", []) + request.body_arguments.get("student", [])
    if len(values) > 1:
        names = ", ".join(repr(v.decode("utf-8", "replace")[:64]) for v in values[:5])
        return f"the `student` parameter was given {len(values)} times ({names}); give it once"
    return None


def address(request: HTTPServerRequest) -> str:
    """Where a request came from, for the refusal log (the proxy's forwarded-for when present)."""
    forwarded = request.headers.get("X-Forwarded-For", "")
    first = forwarded.split(",")[0].strip()[:64]
    return f"{request.remote_ip} (forwarded for {first})" if first else str(request.remote_ip)

"""The course's LTI settings, read from the `c.LTI` section of its nbgrader_config.py.

    c.LTI.issuer = "https://canvas.instructure.com"          # the platform's iss
    c.LTI.client_id_file = "/etc/introdl/lti/client_id"      # the client id the LMS gave the tool
    c.LTI.deployment_id = "1:abc..."                         # the deployment in the course's account
    c.LTI.token_url = "https://lms.example.edu/login/oauth2/token"
    c.LTI.platform_jwks_url = "https://lms.example.edu/api/lti/security/jwks"
    c.LTI.lineitems_url = "https://lms.example.edu/api/lti/courses/42/line_items"   # AGS, per course
    c.LTI.memberships_url = "https://lms.example.edu/api/lti/courses/42/names_and_roles"  # NRPS
    c.LTI.private_key_file = "/etc/introdl/lti/tool.pem"     # mode 0600, owned by the hub's user
    c.LTI.state = "/srv/introdl/state"                       # where lms.sqlite (the push records) lives

nbgrader ignores the section. `c.LTI.client_id` may hold the id itself instead of a file. URLs
must be https, except on loopback (the tests' platform): a client assertion or a token sent in
clear could be replayed by anyone on the path.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from traitlets import Float, Int, Unicode
from traitlets.config import Configurable

from introdl.grading.api import BadInput, course_config
from introdl.lms.keys import read_secret


class LTI(Configurable):
    """The tool's registration with the course's LMS (LTI 1.3 / LTI Advantage)."""

    issuer = Unicode("", help="the platform's issuer (iss of its id_tokens)").tag(config=True)
    client_id = Unicode("", help="the client id the LMS gave the tool").tag(config=True)
    client_id_file = Unicode("", help="a file holding the client id (owner-only)").tag(config=True)
    deployment_id = Unicode("", help="the tool's deployment id in the LMS").tag(config=True)
    token_url = Unicode("", help="the platform's OAuth2 token endpoint").tag(config=True)
    token_audience = Unicode(
        "", help="aud of the client assertion (empty: the token URL, as Canvas and Moodle expect)"
    ).tag(config=True)
    platform_jwks_url = Unicode("", help="the platform's public keys (JWKS)").tag(config=True)
    lineitems_url = Unicode("", help="the course context's AGS line items URL").tag(config=True)
    memberships_url = Unicode("", help="the course context's NRPS memberships URL").tag(config=True)
    private_key_file = Unicode("", help="the tool's RSA private key, PEM (owner-only)").tag(
        config=True
    )
    state = Unicode("", help="folder of lms.sqlite (empty: the course folder)").tag(config=True)
    timeout = Float(30.0, help="seconds one HTTP request to the LMS may take").tag(config=True)
    retries = Int(4, help="retries of a failed request (429, 5xx, no answer)").tag(config=True)
    backoff = Float(1.0, help="seconds before the first retry; doubles each time").tag(config=True)
    max_wait = Float(120.0, help="the longest Retry-After the push waits out").tag(config=True)


REQUIRED_URLS = ("token_url", "platform_jwks_url", "lineitems_url", "memberships_url")


@dataclass(frozen=True)
class Settings:
    """The checked settings; `client_id` is read from its file. Holds no key material."""

    issuer: str
    client_id: str
    deployment_id: str
    token_url: str
    token_audience: str
    platform_jwks_url: str
    lineitems_url: str
    memberships_url: str
    private_key_file: Path
    state: Path
    timeout: float
    retries: int
    backoff: float
    max_wait: float


def load(course: Path) -> Settings:
    """The course's LTI settings; BadInput naming nbgrader_config.py and the setting when unusable."""
    where = course / "nbgrader_config.py"
    lti = LTI(config=course_config(course))
    missing = [
        name
        for name in ("issuer", "deployment_id", *REQUIRED_URLS, "private_key_file")
        if not getattr(lti, name)
    ]
    if not (lti.client_id or lti.client_id_file):
        missing.append("client_id_file")
    if missing:
        raise BadInput(
            f"{where}: set {', '.join('c.LTI.' + m for m in missing)} (docs/lms.md says where "
            "each comes from in Canvas and Moodle)"
        )
    for name in REQUIRED_URLS:
        check_url(where, name, getattr(lti, name))
    client_id = lti.client_id
    if lti.client_id_file:
        client_id = read_secret(Path(lti.client_id_file), "client id").decode().strip()
        if not client_id:
            raise BadInput(f"{lti.client_id_file}: the client id file is empty")
    if lti.retries < 0 or lti.backoff < 0 or lti.timeout <= 0:
        raise BadInput(f"{where}: c.LTI.retries and c.LTI.backoff must be >= 0, c.LTI.timeout > 0")
    return Settings(
        issuer=lti.issuer,
        client_id=client_id,
        deployment_id=lti.deployment_id,
        token_url=lti.token_url,
        token_audience=lti.token_audience or lti.token_url,
        platform_jwks_url=lti.platform_jwks_url,
        lineitems_url=lti.lineitems_url,
        memberships_url=lti.memberships_url,
        private_key_file=Path(lti.private_key_file),
        state=Path(lti.state) if lti.state else course,
        timeout=lti.timeout,
        retries=lti.retries,
        backoff=lti.backoff,
        max_wait=lti.max_wait,
    )


def check_url(where: Path, name: str, url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname and _loopback(parts.hostname):
        return
    raise BadInput(
        f"{where}: c.LTI.{name} = {url!r} must be an https:// URL (plain http only on loopback): "
        "tokens and signed assertions travel on it"
    )


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def state_dir(course: Path) -> Path:
    """Where lms.sqlite lives (c.LTI.state, else the course folder); needs no other setting."""
    lti = LTI(config=course_config(course))
    return Path(lti.state) if lti.state else course

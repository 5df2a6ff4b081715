"""The tool's keys, the push records' schema, and the loopback platform's own checks.

The platform (tests/lti_platform.py) stands in for Canvas or Moodle in every LMS test, so it must
refuse what they refuse: an assertion replayed, for another audience, expired or signed by another
key. A later launch test reuses its JWKS and id_tokens; the last test shows that works with
PyJWT's own JWKS client.
"""

from __future__ import annotations

import functools
import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests

from introdl.cli import main
from introdl.grading.errors import BadInput
from introdl.lms import records as records_module
from introdl.lms.keys import client_assertion, load_private_key, public_jwk, thumbprint
from introdl.lms.records import MIGRATIONS, Records
from tests.lms_course import LAB, make_course, tool_key
from tests.lti_platform import ASSERTION_TYPE, SCOPE_SCORE, Platform, new_rsa_key

# RFC 7638, section 3.1: the example RSA key and its thumbprint.
RFC7638_N = (
    "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPeb"
    "WKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQ"
    "MicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2Nc"
    "Rwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
)


@functools.cache
def platform_key() -> Any:
    return new_rsa_key()


@pytest.fixture
def platform() -> Iterator[Platform]:
    with Platform(private_key=platform_key()) as running:
        running.register_tool("tool", public_jwk(tool_key()))
        yield running


def test_the_key_id_is_the_rfc7638_thumbprint() -> None:
    """Is the kid the tool publishes computed as RFC 7638 says (its own example)?"""
    jwk = {"kty": "RSA", "e": "AQAB", "n": RFC7638_N}
    assert thumbprint(jwk) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    published = public_jwk(tool_key())
    assert published["kid"] == thumbprint(published)
    assert set(published) == {"kty", "e", "n", "kid", "alg", "use"}  # no private member


def test_jwks_prints_the_public_key_only(
    tmp_path: Path,
    platform: Platform,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Does `introdl lms jwks` give what the LMS admin registers, and nothing private?"""
    course = make_course(tmp_path / "course", platform)
    monkeypatch.setenv("INTRODL_COURSE_ROOT", str(course.root))
    assert main(["lms", "jwks"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == {"keys": [public_jwk(tool_key())]}
    assert not {"d", "p", "q", "dp", "dq", "qi"} & set(printed["keys"][0])


def test_a_key_that_is_not_a_pem_is_named_without_its_contents(tmp_path: Path) -> None:
    """Does a broken key file give an error that names the file and shows none of it?"""
    path = tmp_path / "tool.pem"
    path.write_text(
        "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWJ1dC1icm9rZW4=\n-----END PRIVATE KEY-----\n"
    )
    path.chmod(0o600)
    with pytest.raises(BadInput) as err:
        load_private_key(path)
    assert str(path) in str(err.value)
    assert "c2VjcmV0" not in str(err.value)


def token_request(platform: Platform, assertion: str) -> requests.Response:
    return requests.post(
        platform.token_url,
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion,
            "scope": SCOPE_SCORE,
        },
        timeout=10,
    )


def test_the_platform_refuses_what_an_lms_refuses(platform: Platform) -> None:
    """Is an assertion replayed, for another audience, expired, or signed by another key refused
    by the test platform, while a fresh good one gets a token?"""
    good = client_assertion(tool_key(), client_id="tool", audience=platform.token_url)
    assert token_request(platform, good).status_code == 200
    assert token_request(platform, good).status_code == 401  # the same jti again
    wrong_aud = client_assertion(
        tool_key(), client_id="tool", audience="https://other.example/token"
    )
    expired = client_assertion(
        tool_key(), client_id="tool", audience=platform.token_url, now=time.time() - 3600
    )
    forged = client_assertion(new_rsa_key(), client_id="tool", audience=platform.token_url)
    for bad in (wrong_aud, expired, forged):
        resp = token_request(platform, bad)
        assert resp.status_code == 401
        assert resp.json()["error"] == "invalid_client"
    assert len(platform.refused_assertions) == 4


def test_a_launch_test_can_verify_the_platforms_id_tokens(platform: Platform) -> None:
    """Does an id_token from the platform verify against its JWKS URL with PyJWT's JWKS client,
    and one signed with another key fail?"""
    client = jwt.PyJWKClient(platform.jwks_url)
    token = platform.id_token({"aud": "tool", "sub": "u-alice"})
    key = client.get_signing_key_from_jwt(token).key
    claims = jwt.decode(token, key, algorithms=["RS256"], audience="tool", issuer=platform.issuer)
    assert claims["sub"] == "u-alice"
    forged = platform.id_token({"aud": "tool", "sub": "u-alice"}, key=new_rsa_key())
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(forged, key, algorithms=["RS256"], audience="tool")


def test_records_from_a_newer_introdl_are_refused(tmp_path: Path) -> None:
    """Is a records file of a newer schema refused rather than written with the wrong columns?"""
    store = Records.beside(tmp_path)
    assert store.version == len(MIGRATIONS)
    store.close()
    with sqlite3.connect(tmp_path / records_module.FILE_NAME) as db:
        db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(BadInput, match="newer introdl"):
        Records.beside(tmp_path)


def test_status_says_which_scores_the_next_push_sends(
    tmp_path: Path,
    platform: Platform,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """After a regrade, does `introdl lms status` show the pushed score beside the gradebook's?"""
    from tests.lms_course import regrade

    course = make_course(tmp_path / "course", platform)
    monkeypatch.setenv("INTRODL_COURSE_ROOT", str(course.root))
    assert main(["lms", "push", LAB]) == 0
    regrade(course, "alice", (1.0, 1.0))
    capsys.readouterr()
    assert main(["lms", "status", LAB]) == 0
    out = capsys.readouterr().out
    assert "alice (u-alice): 8 sent" in out
    assert "(gradebook now 2: the next push sends it)" in out
    assert "bob (u-bob): 7 sent" in out
    assert "gradebook now 7" not in out

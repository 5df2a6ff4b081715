"""The tool's secrets: files only their owner can read, and the signed client assertion.

A private key or a client id named in the course's settings is read only when its file belongs to
the user running the command and no one else can read it: a group- or world-readable key is
refused, naming the file and the chmod that fixes it. Nothing here logs or prints a secret; the
errors name files, never their contents.
"""

from __future__ import annotations

import json
import os
import stat
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from introdl.grading.api import BadInput

ASSERTION_LIFETIME = 300  # seconds: long enough for a slow token endpoint, short if it leaks


def read_secret(path: Path, what: str) -> bytes:
    """The bytes of PATH, a secret (WHAT names it in errors), after checking who can read it."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise BadInput(
            f"{path}: the {what} file does not exist; set its path in nbgrader_config.py"
        ) from None
    except PermissionError:
        raise BadInput(f"{path}: cannot read the {what} file (permission denied)") from None
    if not stat.S_ISREG(info.st_mode):
        raise BadInput(f"{path}: the {what} must be a regular file")
    if info.st_uid != os.geteuid():
        raise BadInput(
            f"{path}: the {what} belongs to uid {info.st_uid}, not to the user running this "
            f"(uid {os.geteuid()}); run as its owner, or `chown $(id -u) {path}`"
        )
    loose = stat.S_IMODE(info.st_mode) & 0o077
    if loose:
        raise BadInput(
            f"{path}: the {what} is readable or writable by others (mode "
            f"{stat.S_IMODE(info.st_mode):04o}); only its owner may read it: run `chmod 600 {path}`"
        )
    return path.read_bytes()


def load_private_key(path: Path) -> rsa.RSAPrivateKey:
    data = read_secret(path, "tool's private key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        # The parser's message can quote the file; say only what is wrong.
        raise BadInput(
            f"{path}: not an unencrypted PEM private key; make one with "
            f"`openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out {path}`"
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey) or key.key_size < 2048:
        raise BadInput(f"{path}: LTI 1.3 signs with RS256: the key must be RSA, 2048 bits or more")
    return key


def public_jwk(key: rsa.RSAPrivateKey) -> dict[str, Any]:
    """The tool's public key as a JWK, its kid the RFC 7638 thumbprint (stable for one key)."""
    jwk: dict[str, Any] = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    public = {"kty": "RSA", "e": jwk["e"], "n": jwk["n"]}
    return {**public, "kid": thumbprint(public), "alg": "RS256", "use": "sig"}


def thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638: SHA-256 of the required members (e, kty, n), sorted, no spaces; base64url."""
    canonical = json.dumps(
        {"e": jwk["e"], "kty": jwk["kty"], "n": jwk["n"]}, separators=(",", ":"), sort_keys=True
    )
    digest = hashes.Hash(hashes.SHA256())
    digest.update(canonical.encode())
    return jwt.utils.base64url_encode(digest.finalize()).decode()


def client_assertion(
    key: rsa.RSAPrivateKey, *, client_id: str, audience: str, now: float | None = None
) -> str:
    """A signed JWT that proves to the token endpoint that this tool holds KEY (RFC 7523)."""
    issued = int(now if now is not None else time.time())
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "iat": issued,
        "exp": issued + ASSERTION_LIFETIME,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": public_jwk(key)["kid"]})

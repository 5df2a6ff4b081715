"""LTI 1.3 launches from the course's LMS log people into the hub (jupyterhub-ltiauthenticator).

`CourseLTI13Authenticator` is jupyterhub-ltiauthenticator's `LTI13Authenticator` (the OIDC
third-party-initiated login, the id_token's signature against the LMS's JWKS, its issuer, audience,
expiry and nonce) with what a course needs on top:

- the launch must come from this course: a known deployment (`deployment_ids`) and the LMS course
  (`context_ids`); an instructor of ANOTHER course where the tool is installed is not our staff;
- the hub name is the LMS's stable user id, `sub` (or a custom claim the LMS admin fills with a
  stable id, `custom_<name>`); never an e-mail address or a display name, which people can change;
- the person's role IN THE COURSE (the `.../membership` roles of the roles claim; institution roles
  such as "faculty somewhere" do not count) sets the hub groups (`manage_groups`): Instructor and
  its sub-roles (TeachingAssistant, Grader...) -> the staff group (formgrade-<course>), Learner ->
  the student group (nbgrader-<course>); anyone else (Mentor, observer...) is refused;
- a Learner's `sub` goes into nbgrader's gradebook as their `lms_user_id` (introdl/lms/enrol.py,
  run as the course's owner after the login), so `introdl lms push` matches people;
- every refused launch gets a page that says in words what was wrong and what to do, not a bare
  "400: Bad Request" (the technical reason goes to the hub's log);
- the state and nonce cookies are `SameSite=None; Secure` on https, so the LMS's cross-site form
  POST brings them back (browsers send default `Lax` cookies on it only for two minutes, if at all).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from typing import Any

import jwt
from ltiauthenticator.lti13.auth import LTI13Authenticator
from ltiauthenticator.lti13.error import InvalidAudienceError, ValidationError
from ltiauthenticator.lti13.handlers import LTI13CallbackHandler, LTI13LoginInitHandler
from ltiauthenticator.lti13.validator import LTI13LaunchValidator
from ltiauthenticator.utils import convert_request_to_dict
from tornado import web
from traitlets import Set, Unicode, default, validate

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
ROLES, CONTEXT, DEPLOYMENT = CLAIM + "roles", CLAIM + "context", CLAIM + "deployment_id"
MEMBERSHIP = "http://purl.imsglobal.org/vocab/lis/v2/membership"
NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
AGAIN = (
    " Open the tool again from your course in the LMS (Canvas, Moodle); "
    "if you see this page again, tell course staff."
)


def course_role(roles: list[str]) -> str | None:
    """ "staff", "student" or None, from the LTI context (membership) roles of a launch."""

    def has(role: str) -> bool:
        # The role, or a sub-role of it (both spellings occur: membership/Role#Sub, membership#Role#Sub)
        return any(
            r == f"{MEMBERSHIP}#{role}"
            or r.startswith((f"{MEMBERSHIP}/{role}#", f"{MEMBERSHIP}#{role}#"))
            for r in roles
            if isinstance(r, str)
        )

    if has("Instructor"):
        return "staff"
    if has("Learner"):
        return "student"
    return None


def refused(status: int, words: str, reason: str) -> web.HTTPError:
    """An error whose page says WORDS (and what to do); REASON goes to the hub's log only."""
    error = web.HTTPError(status, "LTI launch refused: %s", reason, reason="Launch refused")
    error.jupyterhub_message = words + AGAIN  # type: ignore[attr-defined]
    return error


def launch_refusal(error: Exception) -> web.HTTPError:
    """The page for a launch whose id_token or OIDC state did not verify (ltiauthenticator's
    errors keep PyJWT's as their context)."""
    cause = error.__context__
    if isinstance(error, web.HTTPError):
        text = error.log_message or ""
        if "nonce" in text:
            words = "This launch was refused: it was already used, or it was not started from here (its nonce does not match)."
        elif "state" in text:
            words = (
                "This launch was refused: it did not start in this browser, or it was already used."
            )
        else:
            words = "This launch was refused: the LMS's request was incomplete."
        return refused(error.status_code, words, text)
    if isinstance(error, InvalidAudienceError) or isinstance(cause, jwt.InvalidAudienceError):
        words = "This launch was refused: it was meant for another tool (its audience is not this hub's client id)."
        return refused(401, words, str(error))
    if isinstance(cause, jwt.PyJWKClientConnectionError):
        words = "This launch could not be checked: the hub could not reach the LMS for its keys. Wait a minute."
        return refused(503, words, f"{type(cause).__name__}: {error}")
    if isinstance(cause, jwt.ExpiredSignatureError) or "too long ago" in str(error):
        words = "This launch has expired: the LMS's message is only valid for a few minutes."
    elif isinstance(cause, jwt.PyJWKClientError):
        words = "This launch was refused: it is signed with a key the LMS does not publish."
    elif isinstance(cause, jwt.InvalidSignatureError):
        words = "This launch was refused: its signature does not match the LMS's keys (it may be forged)."
    elif isinstance(cause, jwt.InvalidIssuerError):
        words = "This launch was refused: it comes from an LMS this hub does not trust."
    else:
        words = "This launch was refused: the LMS's message could not be verified."
    return refused(400, words, f"{type(cause or error).__name__}: {error}")


class LoginInitHandler(LTI13LoginInitHandler):  # type: ignore[misc]
    """Step 1 of the launch: the LMS's login initiation; sends the browser to its auth endpoint."""

    def _set_oauth_cookie(self, key: str, value: str) -> None:
        secure = self.authenticator.get_uri_scheme(self.request) == "https"
        extra = {"secure": True, "samesite": "None"} if secure else {}
        self._set_cookie(key, value, expires_days=1, httponly=True, encrypted=True, **extra)

    def post(self) -> None:
        try:
            super().post()
        except web.HTTPError as error:
            words = "This launch was refused: the LMS's login request was incomplete."
            raise refused(400, words, error.log_message or "") from None

    get = post


class CallbackHandler(LTI13CallbackHandler):  # type: ignore[misc]
    """Step 3: the LMS's form POST of the id_token; verified, then the person is logged in."""

    def decode_and_validate_launch_request(self) -> dict[str, Any]:
        """ltiauthenticator's checks, in its order, minus its debug log of the request's
        arguments (the id_token itself): no token is written to the hub's log at any level."""
        validator = LTI13LaunchValidator(parent=self.app)
        args = convert_request_to_dict(self.request.arguments)
        validator.validate_auth_response(args)
        self.check_state()
        auth = self.authenticator
        id_token: dict[str, Any] = validator.verify_and_decode_jwt(
            encoded_jwt=args.get("id_token"),
            issuer=auth.issuer,
            audience=auth.client_id,
            jwks_endpoint=auth.jwks_endpoint,
            jwks_algorithms=auth.jwks_algorithms,
        )
        validator.validate_id_token(id_token)
        validator.validate_azp_claim(id_token, auth.client_id)
        self.check_nonce(id_token)
        return id_token

    async def post(self) -> None:
        try:
            id_token = self.decode_and_validate_launch_request()
        except (ValidationError, web.HTTPError) as error:
            raise launch_refusal(error) from None
        user = await self.login_user(id_token)
        if user is None:
            raise refused(403, "This launch was refused: this hub does not let you in.", "no user")
        await self.redirect_to_next_url(user)


class CourseLTI13Authenticator(LTI13Authenticator):  # type: ignore[misc]
    """LTI 1.3 for one course: names from `sub`, groups from course roles, lms_user_id recorded."""

    login_handler = LoginInitHandler
    callback_handler = CallbackHandler

    context_ids = Set(
        Unicode(), config=True, help="The LMS course(s) (context claim `id`) this hub serves."
    )
    deployment_ids = Set(
        Unicode(), config=True, help="The tool's deployment id(s) in the LMS (deployment_id claim)."
    )
    staff_group = Unicode("formgrade-introdl", config=True, help="Instructors' and TAs' group.")
    student_group = Unicode("nbgrader-introdl", config=True, help="Learners' group.")
    gradebook_course = Unicode(
        "", config=True, help="The course directory whose gradebook gets lms_user_id ('' = none)."
    )
    gradebook_user = Unicode(
        "", config=True, help="The Unix account that owns the course ('' = the hub's own)."
    )

    @default("username_key")
    def _sub(self) -> str:
        return "sub"

    @default("manage_groups")
    def _groups_from_roles(self) -> bool:
        return True

    @validate("username_key")
    def _stable_key(self, proposal: Any) -> str:
        key = str(proposal["value"])
        if key != "sub" and not key.startswith("custom_"):
            raise ValueError(
                f"username_key={key!r}: use 'sub' (the LMS's stable user id) or a custom claim "
                "'custom_<name>' holding a stable id; never an e-mail address or a display name"
            )
        return key

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        missing = [
            name
            for name in ("issuer", "jwks_endpoint", "authorize_url", "client_id", "context_ids")
            if not getattr(self, name)
        ]
        if missing:
            raise ValueError(f"CourseLTI13Authenticator: set {', '.join(missing)}")
        self._recording: set[asyncio.Task[None]] = set()

    def hub_name(self, claims: dict[str, Any]) -> str:
        if self.username_key == "sub":
            value = claims.get("sub")
        else:
            value = (claims.get(CLAIM + "custom") or {}).get(self.username_key[len("custom_") :])
        name = str(value or "").strip().lower()
        if not NAME.match(name):
            raise refused(
                403,
                "This launch was refused: the LMS did not send a user id this hub can use as your "
                "name (the tool may be set up for anonymous launches).",
                f"{self.username_key}={value!r} is not a hub name",
            )
        return name

    async def authenticate(
        self, handler: Any, data: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        claims = data or {}
        deployment = str(claims.get(DEPLOYMENT, ""))
        if self.deployment_ids and deployment not in self.deployment_ids:
            raise refused(
                403,
                "This launch was refused: it comes from an installation of the tool in the LMS "
                "that this hub does not serve.",
                f"deployment_id {deployment!r}",
            )
        context = str((claims.get(CONTEXT) or {}).get("id", ""))
        if context not in self.context_ids:
            raise refused(
                403,
                "This launch was refused: it comes from an LMS course that this hub does not serve.",
                f"context {context!r}",
            )
        role = course_role(list(claims.get(ROLES) or []))
        if role is None:
            raise refused(
                403,
                "This launch was refused: only the course's instructors, teaching assistants and "
                "students can use this hub, and the LMS did not say you are one of them.",
                f"roles {claims.get(ROLES)!r}",
            )
        name = self.hub_name(claims)
        group = self.staff_group if role == "staff" else self.student_group
        state = {
            "lms_user_id": str(claims.get("sub", "")),
            "role": role,
            "context_id": context,
            "first_name": str(claims.get("given_name") or ""),
            "last_name": str(claims.get("family_name") or ""),
            "email": str(claims.get("email") or ""),
        }
        return {"name": name, "groups": [group], "auth_state": state}

    def check_allowed(self, username: str, authentication: Any = None) -> bool:
        # authenticate() let in only the course's people, each with exactly one course group
        return bool(authentication and authentication.get("groups"))

    async def run_post_auth_hook(self, handler: Any, authentication: Any) -> Any:
        authentication = await super().run_post_auth_hook(handler, authentication)
        state = authentication.get("auth_state") or {}
        if self.gradebook_course and state.get("role") == "student":
            task = asyncio.ensure_future(self.record(authentication["name"], state))
            self._recording.add(task)  # kept until done (the loop holds tasks weakly)
            task.add_done_callback(self._recording.discard)
        return authentication

    async def record(self, name: str, state: dict[str, Any], timeout: float = 120.0) -> None:
        """Write NAME's lms_user_id into the gradebook, as the course's owner (not the hub)."""
        launch = {
            "student": name,
            **{k: state[k] for k in ("lms_user_id", "first_name", "last_name", "email")},
        }
        command = [sys.executable, "-m", "introdl.lms.enrol", self.gradebook_course]
        if self.gradebook_user:
            command = ["/usr/sbin/runuser", "-u", self.gradebook_user, "--", *command]
        env = {
            # nbgrader runs alembic from PATH when it makes a new gradebook: the hub's venv first
            "PATH": f"{os.path.dirname(sys.executable)}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "LANG": "C.UTF-8",
            "HOME": self.gradebook_course,
            **{k: os.environ[k] for k in ("PYTHONPATH",) if k in os.environ},
        }
        try:
            process = await asyncio.create_subprocess_exec(
                *command,
                cwd=self.gradebook_course,
                env=env,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
        except OSError as error:
            self.log.warning("lti: %s's lms_user_id not recorded in the gradebook: %s", name, error)
            return
        try:
            out, _ = await asyncio.wait_for(
                process.communicate(json.dumps(launch).encode()), timeout
            )
        except TimeoutError:
            process.kill()
            self.log.warning("lti: %s's lms_user_id not recorded: no answer in %ss", name, timeout)
            return
        said = out.decode(errors="replace").strip()[-1000:]
        if process.returncode == 0:
            self.log.info("lti: %s", said)
        else:
            self.log.warning(
                "lti: %s's lms_user_id not recorded (exit %s): %s", name, process.returncode, said
            )

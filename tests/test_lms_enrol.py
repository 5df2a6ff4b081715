"""Who gets which hub group and name from an LTI launch, and what lands in the gradebook.

The launch itself runs in a real hub and browser in tests/test_hub_lti.py; these are the rules it
applies, checked on their own: course roles, hub names, and the gradebook's `lms_user_id`.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
from ltiauthenticator.lti13.error import TokenError
from tornado import web

from introdl.hub.lti import CLAIM, CourseLTI13Authenticator, course_role, launch_refusal
from introdl.lms.enrol import main, record_student
from introdl.lms.finals import lab_finals
from tests.lms_course import LAB, make_course
from tests.lti_platform import Platform

MEMBER = "http://purl.imsglobal.org/vocab/lis/v2/membership"
PERSON = "http://purl.imsglobal.org/vocab/lis/v2/institution/person"


@pytest.mark.parametrize(
    ("roles", "expected"),
    [
        ([f"{MEMBER}#Learner"], "student"),
        ([f"{MEMBER}/Learner#NonCreditLearner"], "student"),
        ([f"{MEMBER}#Instructor"], "staff"),
        ([f"{MEMBER}/Instructor#TeachingAssistant"], "staff"),  # Canvas's TA
        ([f"{MEMBER}#Instructor#TeachingAssistant"], "staff"),
        ([f"{PERSON}#Student", f"{MEMBER}/Instructor#TeachingAssistant"], "staff"),
        ([f"{MEMBER}#Learner", f"{MEMBER}#Instructor"], "staff"),
        # Roles outside the course do not count: faculty somewhere, a site admin, a mentor.
        ([f"{PERSON}#Faculty", f"{PERSON}#Instructor"], None),
        ([f"{PERSON}#Administrator"], None),
        ([f"{MEMBER}#Mentor"], None),
        (["Instructor", "Learner"], None),  # LTI 1.1 short names: not what LTI 1.3 sends
        ([], None),
    ],
)
def test_course_roles_map_to_one_group(roles: list[str], expected: str | None) -> None:
    """Does only a role IN THE COURSE (membership) give a group, staff winning over student?"""
    assert course_role(roles) == expected


def authenticator(**settings: object) -> CourseLTI13Authenticator:
    base: dict[str, object] = {
        "issuer": "https://lms.example.edu",
        "client_id": {"tool"},
        "authorize_url": "https://lms.example.edu/auth",
        "jwks_endpoint": "https://lms.example.edu/jwks",
        "context_ids": {"course-1"},
    }
    return CourseLTI13Authenticator(**{**base, **settings})


def test_hub_names_come_from_a_stable_id_never_an_e_mail() -> None:
    """Is the hub name the LMS's `sub` by default, is an e-mail claim refused as a name source
    at start-up, and is a custom claim that holds an e-mail refused at launch?"""
    claims = {"sub": "6B1C-42", "email": "ada@example.edu", CLAIM + "custom": {"login": "a@b.c"}}
    assert authenticator().hub_name(claims) == "6b1c-42"
    for key in ("email", "name", "given_name"):
        with pytest.raises(Exception, match="never an e-mail"):
            authenticator(username_key=key)
    with pytest.raises(web.HTTPError) as refused:
        authenticator(username_key="custom_login").hub_name(claims)
    assert "did not send a user id" in refused.value.jupyterhub_message  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="context_ids"):
        authenticator(context_ids=set())


@pytest.fixture
def platform() -> Iterator[Platform]:
    with Platform() as running:
        yield running


def test_a_launch_puts_the_lms_user_id_in_the_gradebook(tmp_path: Path, platform: Platform) -> None:
    """Does a Learner's launch add them (or fill in their empty lms_user_id) so that the push
    finds them, and leave a row that holds ANOTHER lms_user_id alone (exit 1, said why)?"""
    course = make_course(tmp_path / "course", platform).root
    new = record_student(
        course, student="6b1c-42", lms_user_id="6b1c-42", first_name="Ada", last_name="L"
    )
    assert new.changed
    assert record_student(course, student="6b1c-42", lms_user_id="6b1c-42").changed is False
    assert record_student(course, student="dave", lms_user_id="u-dave").changed
    clash = record_student(course, student="alice", lms_user_id="u-mallory")
    assert (clash.changed, clash.conflict) == (False, "u-alice")
    finals = {f.student: f for f in lab_finals(course, LAB).students}
    assert (finals["6b1c-42"].lms_user_id, finals["6b1c-42"].first_name) == ("6b1c-42", "Ada")
    assert finals["dave"].lms_user_id == "u-dave"
    assert finals["alice"].lms_user_id == "u-alice"


def test_the_hub_runs_the_gradebook_step_with_the_launch_on_stdin(
    tmp_path: Path,
    platform: Platform,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Does `python -m introdl.lms.enrol COURSE` take the launch as JSON on stdin (nothing on the
    command line, where `ps` shows it) and exit 1 on a clash?"""
    course = make_course(tmp_path / "course", platform).root
    monkeypatch.setattr("sys.stdin", io.StringIO('{"student": "erin", "lms_user_id": "u-erin"}'))
    assert main([str(course)]) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO('{"student": "bob", "lms_user_id": "u-eve"}'))
    assert main([str(course)]) == 1
    assert "already has lms_user_id 'u-bob'" in capsys.readouterr().err


def test_an_lms_that_cannot_be_reached_is_not_called_a_forgery() -> None:
    """When the LMS's JWKS cannot be fetched, does the page say so (503, try again) rather than
    blame the launch's key?"""
    try:
        try:
            raise jwt.PyJWKClientConnectionError("Fail to fetch data from the url")
        except jwt.PyJWKClientError as error:
            raise TokenError(str(error))  # noqa: B904 (as ltiauthenticator raises it)
    except TokenError as error:
        page = launch_refusal(error)
    assert page.status_code == 503
    assert "could not reach the LMS" in page.jupyterhub_message  # type: ignore[attr-defined]

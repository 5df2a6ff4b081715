"""`introdl lms push` against a real LTI 1.3 platform on loopback (tests/lti_platform.py).

The gradebook is real (nbgrader's Gradebook API, tests/lms_course.py); the platform verifies the
tool's signed client assertion against its registered public key, hands out bearer tokens, keeps
line items and scores, and can be told to answer 401, 429 and 500.
"""

from __future__ import annotations

import functools
import io
import logging
import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from introdl.cli import main
from tests.lms_course import CONTEXT, FINALS, LAB, Course, make_course, regrade
from tests.lti_platform import Platform, new_rsa_key


@functools.cache
def platform_key() -> Any:
    return new_rsa_key()


@pytest.fixture
def platform() -> Iterator[Platform]:
    with Platform(page_size=2, private_key=platform_key()) as running:  # roster: three pages
        yield running


@pytest.fixture
def course(tmp_path: Path, platform: Platform, monkeypatch: pytest.MonkeyPatch) -> Course:
    made = make_course(tmp_path / "course", platform)
    monkeypatch.setenv("INTRODL_COURSE_ROOT", str(made.root))
    return made


def lms(*args: str) -> int:
    return main(["lms", *args])


def line_item_scores(platform: Platform) -> dict[str, tuple[float, float]]:
    """userId -> (scoreGiven, scoreMaximum) of the newest score on the lab's line item."""
    items = platform.context(CONTEXT).lineitems
    (number,) = [n for n, item in items.items() if item["resourceId"] == LAB]
    return {
        s["userId"]: (s["scoreGiven"], s["scoreMaximum"]) for s in platform.scores(CONTEXT, number)
    }


def recorded(course: Course) -> list[tuple[str, float, str, int | None]]:
    with sqlite3.connect(course.root / "state" / "lms.sqlite") as db:
        rows = db.execute("SELECT student, score, outcome, http_status FROM pushes ORDER BY id")
        return [tuple(r) for r in rows]  # type: ignore[misc]


def test_push_puts_every_final_score_on_the_line_item(
    course: Course, platform: Platform, capsys: pytest.CaptureFixture[str]
) -> None:
    """Does a push create the lab's line item, send each final score (late penalty taken off),
    and name who is missing on either side?"""
    assert lms("push", LAB) == 0
    out = capsys.readouterr().out
    (item,) = platform.context(CONTEXT).lineitems.values()
    assert (item["resourceId"], item["tag"], item["scoreMaximum"]) == (LAB, LAB, 10.0)
    assert line_item_scores(platform) == {
        "u-alice": (8.0, 10.0),
        "u-bob": (7.0, 10.0),  # 9 points, 2 off for lateness
        "u-carol": (5.0, 10.0),
    }
    assert "no lms_user_id in the gradebook: dave" in out
    assert "in the gradebook but not in the LMS course: erin (u-erin)" in out
    assert "in the LMS course but not in the gradebook: u-zoe (Name of u-zoe)" in out
    assert "no submission, nothing sent: frank" in out
    assert "u-teacher" not in out  # instructors are not students
    assert sorted(recorded(course)) == [
        (s, score, "sent", 204) for s, score in sorted(FINALS.items())
    ]
    stat = os.stat(course.root / "state" / "lms.sqlite")
    assert stat.st_mode & 0o077 == 0


def test_a_second_push_sends_nothing_and_a_regrade_sends_one(
    course: Course, platform: Platform, capsys: pytest.CaptureFixture[str]
) -> None:
    """Is a re-push of unchanged grades silent on the LMS, and does a changed grade go alone?"""
    assert lms("push", LAB) == 0
    scores_before = platform.posts("/scores")
    assert lms("push", LAB) == 0
    assert platform.posts("/scores") == scores_before == 3
    assert platform.posts("/lineitems") == 4  # the one creation, then three score posts; no more
    assert "0 sent, 3 unchanged" in capsys.readouterr().out
    regrade(course, "carol", (5.0, 4.0))
    assert lms("push", LAB) == 0
    assert platform.posts("/scores") == 4
    assert line_item_scores(platform)["u-carol"] == (9.0, 10.0)
    assert lms("status", LAB) == 0
    status = capsys.readouterr().out
    assert "4 recorded pushes" in status
    assert "carol (u-carol): 9 sent" in status


def test_dry_run_shows_what_would_be_sent_and_sends_nothing(
    course: Course, platform: Platform, capsys: pytest.CaptureFixture[str]
) -> None:
    """Does --dry-run list the scores, create no line item, post no score, record nothing?"""
    assert lms("push", LAB, "--dry-run") == 0
    out = capsys.readouterr().out
    assert "would send: bob (u-bob) 7" in out
    assert "a new line item" in out
    assert not [c for c in platform.calls if c[0] == "POST" and c[1] != "/token"]
    assert platform.context(CONTEXT).lineitems == {}
    assert recorded(course) == []


def test_an_expired_token_is_refreshed_once(course: Course, platform: Platform) -> None:
    """Does a 401 in the middle of a push get one fresh token and carry on?"""
    assert lms("push", LAB, "--dry-run") == 0  # the line item does not exist yet: no POSTs
    platform.fail_next(401, only="/scores")
    tokens_before = sum(1 for c in platform.calls if c[1] == "/token")
    assert lms("push", LAB) == 0
    assert sum(1 for c in platform.calls if c[1] == "/token") == tokens_before + 2
    assert line_item_scores(platform) == {f"u-{s}": (v, 10.0) for s, v in FINALS.items()}


def test_a_token_refused_twice_stops_the_push_and_records_no_sent_score(
    course: Course, platform: Platform, capsys: pytest.CaptureFixture[str]
) -> None:
    """Does a 401 that a fresh token does not cure stop the push, say so, and record the failure
    only; and does the next push then send everything?"""
    platform.fail_next(401, times=2, only="/scores")
    assert lms("push", LAB) == 1
    out = capsys.readouterr().out
    assert "FAILED: alice (u-alice) 8: 401" in out
    assert "not tried (the LMS stopped answering; push again): bob, carol" in out
    assert recorded(course) == [("alice", 8.0, "failed", 401)]
    assert platform.posts("/scores") == 0
    assert lms("push", LAB) == 0
    assert line_item_scores(platform) == {f"u-{s}": (v, 10.0) for s, v in FINALS.items()}


def test_rate_limits_are_waited_out_as_retry_after_says(
    course: Course, platform: Platform, caplog: pytest.LogCaptureFixture
) -> None:
    """Does a 429 with Retry-After make the push wait that long, then succeed?"""
    platform.fail_next(429, times=2, retry_after="1", only="/scores")
    started = time.monotonic()
    with caplog.at_level(logging.DEBUG, logger="introdl.lms"):
        assert lms("push", LAB) == 0
    assert time.monotonic() - started >= 2.0
    assert [r.getMessage() for r in caplog.records].count(
        f"POST {platform.url}/contexts/{CONTEXT}/lineitems/1/scores: answered 429; retry in 1.0 s"
    ) == 2
    assert len(line_item_scores(platform)) == 3


def test_an_lms_that_keeps_failing_is_reported_and_nothing_is_half_recorded(
    course: Course, platform: Platform, capsys: pytest.CaptureFixture[str]
) -> None:
    """After a 500 that outlasts the retries, are the sent scores recorded, the failed one marked
    failed with the LMS's answer, the rest named as not tried, and the exit code 1?"""
    # alice goes through; bob's score meets 1 + 3 retries of 500; carol is never tried.
    platform.fail_next(500, times=4, only="/scores", after=1)
    assert lms("push", LAB) == 1
    out = capsys.readouterr().out
    assert "sent: alice (u-alice) 8" in out
    assert "FAILED: bob (u-bob) 7: 500" in out
    assert "not tried (the LMS stopped answering; push again): carol" in out
    assert [c[2] for c in platform.calls if c[1].endswith("/scores")] == [204, 500, 500, 500, 500]
    assert recorded(course) == [("alice", 8.0, "sent", 204), ("bob", 7.0, "failed", 500)]
    assert lms("push", LAB) == 0
    assert "sent: bob (u-bob) 7" in capsys.readouterr().out
    assert [r[0] for r in recorded(course) if r[2] == "sent"] == ["alice", "bob", "carol"]


def test_a_roster_the_lms_will_not_give_stops_before_any_score(
    course: Course, platform: Platform, capsys: pytest.CaptureFixture[str]
) -> None:
    """When NRPS fails past the retries, is the push refused (exit 2) with nothing sent?"""
    platform.fail_next(503, times=10, only="/memberships")
    assert lms("push", LAB) == 2
    err = capsys.readouterr().err
    assert "did not give the roster: 503" in err
    assert "nothing was sent" in err
    assert platform.posts("/lineitems") == 0


def test_no_token_assertion_or_key_reaches_the_logs(
    course: Course, platform: Platform, capsys: pytest.CaptureFixture[str]
) -> None:
    """With every logger at DEBUG (requests and urllib3 included), through a refreshed token and
    a retry, does the output hold no access token, client assertion or private key?"""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        platform.fail_next(401, only="/scores")
        platform.fail_next(500, only="/scores")
        assert lms("push", LAB) == 0
        assert lms("status", LAB) == 0
        assert lms("push", LAB, "--json") == 0
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    captured = capsys.readouterr()
    text = stream.getvalue() + captured.out + captured.err
    assert "lineitems/1/scores -> 500" in text  # the log did run at DEBUG
    tokens = list(platform.tokens)
    assert len(tokens) >= 3
    assert len(platform.assertions) >= 3
    key_lines = [
        line for line in course.key_file.read_text().splitlines() if not line.startswith("-----")
    ]
    for secret in [*tokens, *platform.assertions, *key_lines]:
        assert secret not in text
    db = (course.root / "state" / "lms.sqlite").read_bytes()
    for secret in [*tokens, *platform.assertions]:
        assert secret.encode() not in db


def test_a_key_others_can_read_is_refused_with_the_chmod_to_run(
    course: Course, platform: Platform, capsys: pytest.CaptureFixture[str]
) -> None:
    """Is a group-readable private key (or client id file) refused before any request?"""
    os.chmod(course.key_file, 0o640)
    assert lms("push", LAB) == 2
    err = capsys.readouterr().err
    assert str(course.key_file) in err
    assert f"chmod 600 {course.key_file}" in err
    os.chmod(course.key_file, 0o600)
    os.chmod(course.client_id_file, 0o604)
    assert lms("push", LAB) == 2
    assert f"chmod 600 {course.client_id_file}" in capsys.readouterr().err
    assert platform.calls == []


def test_a_key_owned_by_someone_else_is_refused(
    course: Course, platform: Platform, capsys: pytest.CaptureFixture[str]
) -> None:
    """Is a 0600 key that belongs to another user (who could swap it) refused?"""
    if os.geteuid() != 0:
        pytest.skip("chown to another user needs root")
    os.chown(course.key_file, 65534, 65534)
    assert lms("push", LAB) == 2
    assert "belongs to uid 65534" in capsys.readouterr().err
    assert platform.calls == []


def test_a_key_the_lms_does_not_know_gets_no_token(
    tmp_path: Path, course: Course, platform: Platform, capsys: pytest.CaptureFixture[str]
) -> None:
    """Does the platform refuse an assertion signed with another key, and does the push say why?"""
    from tests.lms_course import secret_file
    from tests.lti_platform import new_rsa_key, private_pem

    secret_file(course.key_file, private_pem(new_rsa_key()))
    assert lms("push", LAB) == 2
    err = capsys.readouterr().err
    assert "gave no access token (401 invalid_client" in err
    assert platform.refused_assertions
    assert platform.posts("/lineitems") == 0


def test_plain_http_to_a_real_host_is_refused(
    tmp_path: Path,
    platform: Platform,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Would a token URL in clear on the network be used? (It must be https off loopback.)"""
    made = make_course(tmp_path / "c2", platform, token_url="http://lms.example.edu/token")
    monkeypatch.setenv("INTRODL_COURSE_ROOT", str(made.root))
    assert lms("push", LAB) == 2
    assert "c.LTI.token_url = 'http://lms.example.edu/token' must be an https:// URL" in (
        capsys.readouterr().err
    )


def test_a_line_item_on_another_host_never_gets_the_token(
    course: Course, platform: Platform, capsys: pytest.CaptureFixture[str]
) -> None:
    """If the LMS names a line item on another host, is the score (and the bearer token) kept home?"""
    platform.context(CONTEXT).lineitems[1] = {
        "id": "https://elsewhere.example/lineitems/1",
        "resourceId": LAB,
        "tag": LAB,
        "label": LAB,
        "scoreMaximum": 10,
    }
    assert lms("push", LAB) == 1
    out = capsys.readouterr().out
    assert "outside the configured c.LTI.lineitems_url" in out
    assert [r[2] for r in recorded(course)] == ["failed"]


def test_missing_settings_are_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Does a course without c.LTI get told which settings to write, and where?"""
    root = tmp_path / "bare"
    root.mkdir()
    (root / "nbgrader_config.py").write_text("c = get_config()  # noqa: F821\n")
    monkeypatch.setenv("INTRODL_COURSE_ROOT", str(root))
    assert lms("push", LAB) == 2
    err = capsys.readouterr().err
    assert f"{root / 'nbgrader_config.py'}: set c.LTI.issuer" in err
    assert "c.LTI.private_key_file" in err


def test_a_score_refused_for_one_student_does_not_stop_the_others(
    course: Course, platform: Platform, capsys: pytest.CaptureFixture[str]
) -> None:
    """Is a 422 for one student recorded as failed while the rest are sent (exit 1)?"""
    platform.fail_next(422, only="/scores")
    assert lms("push", LAB) == 1
    out = capsys.readouterr().out
    assert "FAILED: alice (u-alice) 8: 422" in out
    assert "not tried" not in out
    assert sorted(line_item_scores(platform)) == ["u-bob", "u-carol"]
    assert recorded(course) == [
        ("alice", 8.0, "failed", 422),
        ("bob", 7.0, "sent", 204),
        ("carol", 5.0, "sent", 204),
    ]


def test_the_record_names_the_unix_user_not_what_usr_says(
    course: Course, platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Is `who` in the records the process's own user, whatever $USER and $LOGNAME claim?"""
    import pwd

    monkeypatch.setenv("USER", "mallory")
    monkeypatch.setenv("LOGNAME", "mallory")
    assert lms("push", LAB) == 0
    with sqlite3.connect(course.root / "state" / "lms.sqlite") as db:
        who = {row[0] for row in db.execute("SELECT who FROM pushes")}
    assert who == {pwd.getpwuid(os.geteuid()).pw_name}

"""Nobody can hand in work as anybody else: the exchange files it under the hub's name for the token.

Each forgery nbgrader's own exchange accepts (FACTS.md: `--student OTHER`, `JUPYTERHUB_USER=OTHER`)
is tried here as the real Unix user with their own real hub token, plus the requests a student
could craft by hand. Every one is refused with a message, logged for staff, and files nothing.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from introdl.hub.local import Hub
from tests.hub import Exchange, tarball

LAB = "lab1_tensorflow"


@pytest.fixture(scope="module")
def ada(hub: Hub) -> str:
    return hub.token_for("st-ada", "test: ada")


@pytest.fixture(scope="module")
def teacher(hub: Hub) -> str:
    return hub.token_for("st-teacher", "test: teacher")


def home(user: str) -> Path:
    return Path(f"~{user}").expanduser()


def fetched(hub: Hub, user: str, token: str) -> Path:
    """The student's own copy of the lab, fetched with nbgrader as that Unix user."""
    folder = home(user) / LAB
    if not folder.exists():
        done = hub.nbgrader(user, "fetch_assignment", LAB, cwd=home(user), token=token)
        assert done.returncode == 0, done.stdout + done.stderr
    assert (folder / f"{LAB}.ipynb").is_file()
    return folder


def submissions_of(hub: Hub, teacher: str, student: str) -> list[dict[str, object]]:
    rows = Exchange(hub, teacher).call("GET", f"collect/{LAB}").json()
    return [r for r in rows if r["student"] == student]


def test_a_student_submits_under_their_own_hub_name(hub: Hub, ada: str, teacher: str) -> None:
    """Does `nbgrader submit` from a student's account land under that student, once?"""
    fetched(hub, "st-ada", ada)
    before = len(submissions_of(hub, teacher, "st-ada"))
    done = hub.nbgrader("st-ada", "submit", LAB, cwd=home("st-ada"), token=ada)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "by the hub's name for your login: st-ada" in done.stdout + done.stderr
    assert len(submissions_of(hub, teacher, "st-ada")) == before + 1


@pytest.mark.parametrize(
    ("how", "extra_args", "extra_env"),
    [
        ("the --student flag", ["--student", "st-ben"], {}),
        ("the JUPYTERHUB_USER variable", [], {"JUPYTERHUB_USER": "st-ben"}),
    ],
)
def test_nbgrader_submit_as_another_student_is_refused(
    hub: Hub, ada: str, teacher: str, how: str, extra_args: list[str], extra_env: dict[str, str]
) -> None:
    """Can st-ada file work under st-ben with nbgrader's own ways of naming a student?"""
    fetched(hub, "st-ada", ada)
    ben_before = submissions_of(hub, teacher, "st-ben")
    ada_before = submissions_of(hub, teacher, "st-ada")
    env_prefix = [f"{k}={v}" for k, v in extra_env.items()]
    done = hub.as_user(
        "st-ada",
        "env",
        *env_prefix,
        str(hub.config["python"]),
        "-m",
        "nbgrader",
        "submit",
        LAB,
        *extra_args,
        cwd=home("st-ada"),
        token=ada,
    )
    said = done.stdout + done.stderr
    assert "st-ada cannot submit as st-ben" in said, f"{how}: {said}"
    assert submissions_of(hub, teacher, "st-ben") == ben_before, f"{how} filed work under st-ben"
    assert submissions_of(hub, teacher, "st-ada") == ada_before, f"{how} filed work anyway"
    refusals = Exchange(hub, teacher).call("GET", "refusals").json()
    assert any(r["hub_user"] == "st-ada" and r["claimed"] == "st-ben" for r in refusals)


def test_a_crafted_request_naming_another_student_is_refused(
    hub: Hub, ada: str, teacher: str
) -> None:
    """Does a hand-made POST with ?student=st-ben file anything under st-ben?"""
    before = submissions_of(hub, teacher, "st-ben")
    nb = {f"{LAB}.ipynb": b"{}"}
    answer = Exchange(hub, ada).call(
        "POST", f"submissions/{LAB}", params={"student": "st-ben"}, data=tarball(nb)
    )
    assert answer.status_code == 403
    assert "st-ada cannot submit as st-ben" in answer.json()["message"]
    assert submissions_of(hub, teacher, "st-ben") == before


def test_a_submission_keeps_the_exchange_clock_not_the_senders(
    hub: Hub, ada: str, teacher: str
) -> None:
    """Can a student backdate a hand-in (a timestamp field, or timestamp.txt in the archive)?"""
    student = Exchange(hub, ada)
    forged = "2020-01-01 00:00:00.000000 UTC"
    answer = student.call(
        "POST",
        f"submissions/{LAB}",
        params={"timestamp": forged},
        data=tarball({f"{LAB}.ipynb": b"{}"}),
    )
    assert answer.status_code == 400
    assert "exchange's clock" in answer.json()["message"]
    answer = student.call(
        "POST",
        f"submissions/{LAB}",
        data=tarball({f"{LAB}.ipynb": b"{}", "timestamp.txt": forged.encode()}),
    )
    assert answer.status_code == 200
    stamp = answer.json()["timestamp"]
    assert stamp > "2026"
    # Collected, the hand-in carries the exchange's time, never the archive's.
    course = Path(f"~{hub.settings.instructor}").expanduser() / "course"
    done = hub.nbgrader(
        hub.settings.instructor,
        "collect",
        LAB,
        "--update",
        "--student",
        "st-ada",
        cwd=course,
        token=teacher,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    collected = course / "submitted" / "st-ada" / LAB / "timestamp.txt"
    assert collected.read_text() == stamp


def test_requests_without_a_valid_hub_token_are_refused(hub: Hub) -> None:
    """Does the exchange answer anybody who is not logged in to the hub?"""
    for token in (None, "not-a-token", "0" * 32):
        for method, path in (("GET", "assignments"), ("POST", f"submissions/{LAB}")):
            answer = Exchange(hub, token).call(method, path, data=tarball({"x": b""}))
            assert answer.status_code == 403, (token, path, answer.text)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", f"collect/{LAB}"),
        ("GET", f"collect/{LAB}/st-ben"),
        ("POST", f"assignments/{LAB}"),
        ("DELETE", f"assignments/{LAB}"),
        ("POST", f"feedback/{LAB}/st-ben"),
        ("GET", "refusals"),
    ],
)
def test_staff_actions_are_refused_to_students(hub: Hub, ada: str, method: str, path: str) -> None:
    """Can a student collect, release, withdraw, write feedback or read the refusal log?"""
    answer = Exchange(hub, ada).call(method, path, data=tarball({"x": b""}))
    assert answer.status_code == 403, answer.text
    assert "not course staff" in answer.json()["message"]


def test_a_student_never_gets_another_students_feedback(hub: Hub, ada: str, teacher: str) -> None:
    """With ben's submission time in hand, can ada fetch ben's feedback?"""
    ben = hub.token_for("st-ben", "test: ben")
    stamp = (
        Exchange(hub, ben)
        .call("POST", f"submissions/{LAB}", data=tarball({f"{LAB}.ipynb": b"{}"}))
        .json()["timestamp"]
    )
    feedback = tarball({f"{LAB}.html": b"<html>ben's score: 7</html>"})
    staff = Exchange(hub, teacher)
    assert staff.call(
        "POST", f"feedback/{LAB}/st-ben", params={"timestamp": stamp}, data=feedback
    ).ok
    mine = Exchange(hub, ben).call("GET", f"feedback/{LAB}", params={"timestamp": stamp})
    assert mine.status_code == 200
    theirs = Exchange(hub, ada).call("GET", f"feedback/{LAB}", params={"timestamp": stamp})
    assert theirs.status_code == 404
    assert b"ben's score" not in theirs.content
    # ada's own list shows only ada's hand-ins.
    listed = Exchange(hub, ada).call("GET", "submissions").json()
    assert listed
    assert {row["student"] for row in listed} == {"st-ada"}


def test_collect_files_each_hand_in_under_its_hub_name(hub: Hub, teacher: str) -> None:
    """After all the attempts above, is every collected folder the work of the named student?"""
    course = Path(f"~{hub.settings.instructor}").expanduser() / "course"
    shutil.rmtree(course / "submitted", ignore_errors=True)
    done = hub.nbgrader(hub.settings.instructor, "collect", LAB, cwd=course, token=teacher)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = Exchange(hub, teacher).call("GET", f"collect/{LAB}").json()
    newest = {r["student"]: r["timestamp"] for r in rows}
    collected = {p.parent.name: p for p in (course / "submitted").glob(f"*/{LAB}")}
    assert set(collected) == set(newest)
    for student, folder in collected.items():
        assert (folder / "timestamp.txt").read_text() == newest[student]

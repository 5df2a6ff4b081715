"""`nbgrader collect` survives any archive, and the exchange follows the course's limits.

Issue 21 case 3, through the real hub, the real exchange service (as its own Unix user) and the
real `nbgrader collect` in the instructor's course: a name over 255 bytes stopped collect at one
student with a traceback, left the students after them uncollected, and the retry left that
student's folder without `timestamp.txt` (graded as on time). The hostile archives are put in the
exchange's store directly: the service now refuses them at upload, but archives stored before the
fix, or by another version, may be bad. Uses lab2_mnist, which the other hub tests leave alone,
and removes what it injected.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import os
import shutil
import sqlite3
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from introdl.hub.archive import MIB
from introdl.hub.exchange_store import TIMESTAMP_FORMAT
from introdl.hub.local import Hub
from tests.hub import Exchange, tarball
from tests.test_exchange_archives import Zeros

LAB = "lab2_mnist"
NOTEBOOK = f"{LAB}.ipynb"


def deep_tree() -> bytes:
    return tarball({NOTEBOOK: b"{}", "/".join(["d"] * 40) + "/leaf.txt": b"x"})


def bomb() -> bytes:
    """600 MiB of zeros declared in one member, about 0.6 MB packed (the course allows 500)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=1) as tar:
        member = tarfile.TarInfo("model.weights.h5")
        member.size = 600 * MIB
        tar.addfile(member, Zeros(member.size))
    return buffer.getvalue()


HOSTILE = {
    "st-load00": ("a long name", lambda: tarball({NOTEBOOK: b"{}", "n" * 300 + ".txt": b"x"})),
    "st-load01": ("a bomb", bomb),
    "st-load02": ("a deep tree", deep_tree),
}
FIRST_ONLY_HOSTILE = "st-load05"  # never handed in anything good: nothing to keep
GOOD = ["st-load03", "st-load04"]


class Injector:
    """Puts archives in the exchange's store as its service would have stored them."""

    def __init__(self, hub: Hub) -> None:
        self.root = Path(str(hub.config["exchange_root"]))
        self.owner = str(hub.config["exchange_user"])
        self.ids: list[int] = []

    def put(self, student: str, blob: bytes) -> str:
        stamp = dt.datetime.now(dt.UTC).strftime(TIMESTAMP_FORMAT)
        with sqlite3.connect(self.root / "exchange.sqlite", isolation_level=None) as db:
            cur = db.execute(
                "INSERT INTO submissions (student, lab, timestamp, sha256, size, files)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (student, LAB, stamp, hashlib.sha256(blob).hexdigest(), len(blob), NOTEBOOK),
            )
            sid = int(cur.lastrowid or 0)
        self.ids.append(sid)
        path = self.root / "submissions" / student / LAB / f"{sid}.tar.gz"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(blob)
        for made in (path, path.parent, path.parent.parent):
            shutil.chown(made, self.owner, self.owner)
        return stamp

    def remove(self) -> None:
        with sqlite3.connect(self.root / "exchange.sqlite", isolation_level=None) as db:
            for sid in self.ids:
                db.execute("DELETE FROM submissions WHERE id = ?", (sid,))
        for path in (self.root / "submissions").glob(f"*/{LAB}/*.tar.gz"):
            if int(path.name.split(".")[0]) in self.ids:
                path.unlink()


@pytest.fixture
def injector(hub: Hub) -> Iterator[Injector]:
    injected = Injector(hub)
    try:
        yield injected
    finally:
        injected.remove()


def hand_in(hub: Hub, student: str, text: bytes) -> str:
    answer = Exchange(hub, hub.token_for(student)).call(
        "POST", f"submissions/{LAB}", data=tarball({NOTEBOOK: text})
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["timestamp"])


def test_collect_over_a_hostile_class_collects_everyone_else_and_dates_every_hand_in(
    hub: Hub, injector: Injector
) -> None:
    """With a long name, a bomb and a deep tree among the hand-ins, does `collect --update`
    collect every other student, keep each earlier hand-in with its time stamp, and say which
    students failed and why?"""
    course = Path(f"~{hub.settings.instructor}").expanduser() / "course"
    teacher = hub.token_for(hub.settings.instructor)
    submitted = course / "submitted"
    everyone = [*HOSTILE, *GOOD]
    first = {student: hand_in(hub, student, f"first {student}".encode()) for student in everyone}
    done = hub.nbgrader(
        hub.settings.instructor, "collect", LAB, "--update", cwd=course, token=teacher
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for student in everyone:
        assert (submitted / student / LAB / "timestamp.txt").read_text() == first[student]

    for student, (_, make) in HOSTILE.items():
        injector.put(student, make())
    injector.put(FIRST_ONLY_HOSTILE, HOSTILE["st-load00"][1]())
    second = {student: hand_in(hub, student, f"second {student}".encode()) for student in GOOD}

    done = hub.nbgrader(
        hub.settings.instructor, "collect", LAB, "--update", cwd=course, token=teacher
    )
    said = done.stdout + done.stderr
    assert done.returncode != 0, "collect said nothing went wrong:\n" + said
    assert "Traceback" not in said, said
    assert f"4 of 6 hand-in(s) of {LAB} could not be collected" in said, said
    assert "304 bytes long; a file system holds at most 255 bytes" in said, said
    assert "more than 500 MiB (the course's limit)" in said
    assert "41 folders deep; the limit is 16" in said
    for student in GOOD:  # collected after the hostile ones, each with its own time stamp
        folder = submitted / student / LAB
        assert (folder / "timestamp.txt").read_text() == second[student]
        assert (folder / NOTEBOOK).read_bytes() == f"second {student}".encode()
    for student in HOSTILE:  # the earlier hand-in stays whole, dated
        folder = submitted / student / LAB
        assert (folder / "timestamp.txt").read_text() == first[student], student
        assert (folder / NOTEBOOK).read_bytes() == f"first {student}".encode()
        assert f"{folder} keeps the hand-in collected before" in said
    assert not (submitted / FIRST_ONLY_HOSTILE / LAB).exists()
    left = [p for p in submitted.glob("*/.*")]
    assert not left, f"temporary folders left behind: {left}"
    for folder in submitted.glob(f"*/{LAB}"):  # no undated folder anywhere
        assert (folder / "timestamp.txt").is_file(), folder


def test_submit_tells_the_student_each_file_left_out_and_why(hub: Hub) -> None:
    """Does `nbgrader submit` follow the course's ignore list and file-size limit (not nbgrader's
    own), and name each file it leaves out, with the reason, where the student reads it?"""
    student = "st-load06"
    token = hub.token_for(student)
    home = Path(f"~{student}").expanduser()
    done = hub.nbgrader(student, "fetch_assignment", LAB, cwd=home, token=token)
    assert done.returncode == 0, done.stdout + done.stderr
    lab = home / LAB
    (lab / "data").mkdir()
    (lab / "data" / "mnist.npz").write_bytes(b"x" * 100)
    with (lab / "big.weights.h5").open("wb") as big:  # sparse: 101 MB long, nothing on disk
        big.truncate(101 * 1000 * 1000)
    shutil.chown(lab / "big.weights.h5", student, student)
    done = hub.nbgrader(student, "submit", LAB, cwd=home, token=token)
    said = done.stdout + done.stderr
    assert done.returncode == 0, said
    assert (
        "Left out of your submission: 'big.weights.h5': it is 101.0 MB; the course takes files "
        "up to 100.0 MB (CourseDirectory.max_file_size)" in said
    )
    assert "Left out of your submission: 'data': the course's ignore list leaves it out" in said
    rows = Exchange(hub, token).call("GET", "submissions", params={"lab": LAB}).json()
    assert NOTEBOOK in rows[-1]["files"]
    assert "big.weights.h5" not in rows[-1]["files"]


def test_the_exchange_takes_an_upload_as_large_as_the_course_allows(hub: Hub) -> None:
    """Is a 120 MiB hand-in (past tornado's default 100 MiB, within the course's 200) taken,
    and does the exchange say what its limits are?"""
    student = "st-load07"
    exchange = Exchange(hub, hub.token_for(student))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=0) as tar:
        for name, size in ((NOTEBOOK, 2), ("a.weights.h5", 60 * MIB), ("b.weights.h5", 60 * MIB)):
            member = tarfile.TarInfo(name)
            member.size = size
            tar.addfile(member, io.BytesIO(os.urandom(size)))
    blob = buffer.getvalue()
    assert len(blob) > 120 * MIB
    answer = exchange.call("POST", f"submissions/{LAB}", data=blob)
    assert answer.status_code == 200, answer.text
    assert answer.json()["size"] == len(blob)
    limits = exchange.call("GET", "limits").json()
    assert limits["max_upload_mb"] == 200
    assert limits["max_unpacked_mb"] == 500

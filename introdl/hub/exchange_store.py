"""The exchange's state: an SQLite file and the archives beside it, owned by the service alone.

Layout under the service's root (mode 0700, the service's own user):

    exchange.sqlite                          releases, submissions, feedback, refusals
    releases/<lab>.tar.gz                    the release students fetch
    submissions/<student>/<lab>/<id>.tar.gz  every hand-in, kept (collect takes the newest)
    feedback/<student>/<lab>/<id>.tar.gz     feedback for the hand-in with that id

Names (students, labs) come from the hub and the staff's release; both are checked against a
strict pattern before they become a path. Time stamps are the service's clock, never a sender's.
A hand-in is written to `incoming/` first (`stage`, off the service's event loop), then checked
against the student's quota and hand-in rate and filed in one step on the loop (`commit`), so two
uploads at once cannot both slip under a limit.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import sqlite3
import uuid
from dataclasses import dataclass
from pathlib import Path

from introdl.hub.archive import MIB, Limits

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}$")
# nbgrader's own format (Exchange.timestamp_format), always UTC here.
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S.%f UTC"

SCHEMA = """
CREATE TABLE IF NOT EXISTS releases (
    lab TEXT PRIMARY KEY, released_at TEXT NOT NULL, released_by TEXT NOT NULL,
    sha256 TEXT NOT NULL, files TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS submissions (
    id INTEGER PRIMARY KEY AUTOINCREMENT, student TEXT NOT NULL, lab TEXT NOT NULL,
    timestamp TEXT NOT NULL, sha256 TEXT NOT NULL, size INTEGER NOT NULL, files TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS submissions_by_lab ON submissions (lab, student);
CREATE TABLE IF NOT EXISTS feedback (
    submission INTEGER PRIMARY KEY REFERENCES submissions (id), released_at TEXT NOT NULL,
    sha256 TEXT NOT NULL, files TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS refusals (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, hub_user TEXT NOT NULL,
    action TEXT NOT NULL, lab TEXT NOT NULL, claimed TEXT NOT NULL, reason TEXT NOT NULL);
"""

KEEP_REFUSALS = 10_000  # newest refusals kept (as the check service keeps its own)


class StoreError(ValueError):
    """A request the store cannot serve, with the reason in words."""


class OverLimit(StoreError):
    """A hand-in past the student's quota or hand-in rate; `status` is the HTTP answer."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Staged:
    """An upload written to incoming/, not yet filed."""

    path: Path
    sha256: str
    size: int


def checked_name(value: str, what: str) -> str:
    if not NAME.match(value):
        raise StoreError(f"{what} {value!r} is not a valid name (letters, digits, _ . @ -)")
    return value


@dataclass(frozen=True)
class Submission:
    id: int
    student: str
    lab: str
    timestamp: str
    sha256: str
    size: int
    files: tuple[str, ...]
    has_feedback: bool
    feedback_sha256: str | None


class ExchangeStore:
    """Releases, hand-ins and feedback of one course, on disk under `root`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        os.chmod(root, 0o700)
        self.db = sqlite3.connect(root / "exchange.sqlite", isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.executescript(SCHEMA)
        self._last_stamp = ""

    # --- time ------------------------------------------------------------------------------
    def now(self) -> str:
        """The service's UTC clock in nbgrader's format, strictly increasing within a process."""
        stamp = dt.datetime.now(dt.UTC).strftime(TIMESTAMP_FORMAT)
        while stamp <= self._last_stamp:
            later = dt.datetime.strptime(self._last_stamp, TIMESTAMP_FORMAT)
            stamp = (later + dt.timedelta(microseconds=1)).strftime(TIMESTAMP_FORMAT)
        self._last_stamp = stamp
        return stamp

    def _write(self, path: Path, blob: bytes) -> str:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".part")
        tmp.write_bytes(blob)
        os.replace(tmp, path)
        return hashlib.sha256(blob).hexdigest()

    # --- releases --------------------------------------------------------------------------
    def release(self, lab: str, blob: bytes, files: list[str], by: str) -> str:
        checked_name(lab, "lab")
        sha = self._write(self.root / "releases" / f"{lab}.tar.gz", blob)
        at = self.now()
        self.db.execute(
            "INSERT OR REPLACE INTO releases VALUES (?, ?, ?, ?, ?)",
            (lab, at, by, sha, "\n".join(files)),
        )
        return at

    def unrelease(self, lab: str) -> bool:
        checked_name(lab, "lab")
        (self.root / "releases" / f"{lab}.tar.gz").unlink(missing_ok=True)
        return self.db.execute("DELETE FROM releases WHERE lab = ?", (lab,)).rowcount > 0

    def releases(self) -> list[dict[str, object]]:
        rows = self.db.execute("SELECT lab, released_at, files FROM releases ORDER BY lab")
        return [
            {"assignment_id": lab, "released_at": at, "files": files.split("\n") if files else []}
            for lab, at, files in rows
        ]

    def release_blob(self, lab: str) -> bytes:
        path = self.root / "releases" / f"{checked_name(lab, 'lab')}.tar.gz"
        if not self.is_released(lab) or not path.is_file():
            raise StoreError(f"{lab} is not released")
        return path.read_bytes()

    def is_released(self, lab: str) -> bool:
        row = self.db.execute("SELECT 1 FROM releases WHERE lab = ?", (lab,)).fetchone()
        return row is not None

    # --- submissions -----------------------------------------------------------------------
    def stage(self, blob: bytes) -> Staged:
        """Write an upload under incoming/ (slow for a large one: run it off the event loop)."""
        path = self.root / "incoming" / f"{uuid.uuid4().hex}.part"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(blob)
        return Staged(path, hashlib.sha256(blob).hexdigest(), len(blob))

    def admit(self, student: str, size: int, limits: Limits) -> None:
        """OverLimit if one more hand-in of SIZE bytes passes the student's quota or rate."""
        hour_ago = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).strftime(TIMESTAMP_FORMAT)
        (recent,) = self.db.execute(
            "SELECT COUNT(*) FROM submissions WHERE student = ? AND timestamp > ?",
            (student, hour_ago),
        ).fetchone()
        if recent >= limits.submissions_per_hour:
            raise OverLimit(
                f"{student} has handed in {recent} times in the last hour, the course's limit "
                f"(c.ExchangeService.submissions_per_hour = {limits.submissions_per_hour}): "
                "wait a while and submit again; your last hand-in is kept",
                429,
            )
        (stored,) = self.db.execute(
            "SELECT COALESCE(SUM(size), 0) FROM submissions WHERE student = ?", (student,)
        ).fetchone()
        if stored + size > limits.quota_bytes:
            raise OverLimit(
                f"{student}'s hand-ins already take {stored // MIB} MiB of the exchange and this "
                f"one is {size // MIB} MiB; the course's quota per student is "
                f"{limits.quota_bytes // MIB} MiB (c.ExchangeService.quota_mb): leave large "
                "files out, or ask the course staff to raise the quota",
                413,
            )

    def commit(
        self, student: str, lab: str, staged: Staged, files: list[str], limits: Limits
    ) -> Submission:
        """File a staged upload as a hand-in stamped now, if the quota and rate allow it."""
        try:
            checked_name(student, "student")
            checked_name(lab, "lab")
            if not self.is_released(lab):
                raise StoreError(f"{lab} is not released, so it cannot be submitted")
            self.admit(student, staged.size, limits)
        except StoreError:
            staged.path.unlink(missing_ok=True)
            raise
        stamp = self.now()
        cur = self.db.execute(
            "INSERT INTO submissions (student, lab, timestamp, sha256, size, files)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (student, lab, stamp, staged.sha256, staged.size, "\n".join(files)),
        )
        sid = int(cur.lastrowid or 0)
        path = self._submission_path(student, lab, sid)
        path.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staged.path, path)
        return self.submission(sid)

    def submit(
        self, student: str, lab: str, blob: bytes, files: list[str], limits: Limits | None = None
    ) -> Submission:
        """stage + commit in one call (tests, tools)."""
        return self.commit(student, lab, self.stage(blob), files, limits or Limits())

    def _submission_path(self, student: str, lab: str, sid: int) -> Path:
        return self.root / "submissions" / student / lab / f"{sid}.tar.gz"

    def _feedback_path(self, student: str, lab: str, sid: int) -> Path:
        return self.root / "feedback" / student / lab / f"{sid}.tar.gz"

    def submission(self, sid: int) -> Submission:
        row = self.db.execute(
            "SELECT s.id, s.student, s.lab, s.timestamp, s.sha256, s.size, s.files, f.sha256"
            " FROM submissions s LEFT JOIN feedback f ON f.submission = s.id WHERE s.id = ?",
            (sid,),
        ).fetchone()
        if row is None:
            raise StoreError(f"no submission {sid}")
        return _submission(row)

    def submissions(
        self, *, lab: str | None = None, student: str | None = None
    ) -> list[Submission]:
        query = (
            "SELECT s.id, s.student, s.lab, s.timestamp, s.sha256, s.size, s.files, f.sha256"
            " FROM submissions s LEFT JOIN feedback f ON f.submission = s.id WHERE 1=1"
        )
        args: list[str] = []
        if lab is not None:
            query += " AND s.lab = ?"
            args.append(lab)
        if student is not None:
            query += " AND s.student = ?"
            args.append(student)
        rows = self.db.execute(query + " ORDER BY s.student, s.lab, s.id", args)
        return [_submission(row) for row in rows]

    def find(self, student: str, lab: str, timestamp: str) -> Submission:
        row = self.db.execute(
            "SELECT id FROM submissions WHERE student = ? AND lab = ? AND timestamp = ?",
            (student, lab, timestamp),
        ).fetchone()
        if row is None:
            raise StoreError(f"{student} has no submission of {lab} at {timestamp}")
        return self.submission(int(row[0]))

    def submission_blob(self, sub: Submission) -> bytes:
        return self._submission_path(sub.student, sub.lab, sub.id).read_bytes()

    # --- feedback --------------------------------------------------------------------------
    def put_feedback(self, sub: Submission, blob: bytes, files: list[str]) -> None:
        sha = self._write(self._feedback_path(sub.student, sub.lab, sub.id), blob)
        self.db.execute(
            "INSERT OR REPLACE INTO feedback VALUES (?, ?, ?, ?)",
            (sub.id, self.now(), sha, "\n".join(files)),
        )

    def feedback_blob(self, sub: Submission) -> bytes:
        if not sub.has_feedback:
            raise StoreError(f"no feedback yet for {sub.lab} submitted at {sub.timestamp}")
        return self._feedback_path(sub.student, sub.lab, sub.id).read_bytes()

    # --- refusals --------------------------------------------------------------------------
    def refuse(self, *, hub_user: str, action: str, lab: str, claimed: str, reason: str) -> None:
        self.db.execute(
            "INSERT INTO refusals (at, hub_user, action, lab, claimed, reason)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (self.now(), hub_user[:200], action[:200], lab[:200], claimed[:200], reason[:1000]),
        )
        # the newest KEEP_REFUSALS only: a flood of token-less requests cannot fill the disk
        self.db.execute(
            "DELETE FROM refusals WHERE id <= (SELECT MAX(id) FROM refusals) - ?", (KEEP_REFUSALS,)
        )

    def refusals(self) -> list[dict[str, str]]:
        rows = self.db.execute(
            "SELECT at, hub_user, action, lab, claimed, reason FROM refusals ORDER BY id"
        )
        keys = ("at", "hub_user", "action", "lab", "claimed", "reason")
        return [dict(zip(keys, row, strict=True)) for row in rows]


def _submission(row: tuple[object, ...]) -> Submission:
    sid, student, lab, stamp, sha, size, files, feedback_sha = row
    return Submission(
        id=int(str(sid)),
        student=str(student),
        lab=str(lab),
        timestamp=str(stamp),
        sha256=str(sha),
        size=int(str(size)),
        files=tuple(str(files).split("\n")) if files else (),
        has_feedback=feedback_sha is not None,
        feedback_sha256=None if feedback_sha is None else str(feedback_sha),
    )

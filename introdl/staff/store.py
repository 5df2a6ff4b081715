"""The course staff's records: extensions, regrade requests and the audit trail, in one SQLite file.

The file lives beside the check service's queue (`<state>/staff.sqlite`, mode 0600): the check
service's pages write it, and `introdl extension` / `introdl report` open it on the same host.
Every change a person makes goes through `StaffStore.change`, which writes the row and its audit
line in one transaction, so the trail can never miss a change nor record one that did not happen.

The schema is versioned with SQLite's `user_version`: `MIGRATIONS[i]` takes a file from version i
to i + 1, each in its own transaction, so an old file is brought up to date when it is opened and
a file written by a newer version is refused (rather than written with the wrong columns).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from introdl.grading.api import BadInput

FILE_NAME = "staff.sqlite"

# Append only: never edit a migration that has shipped; add the next one.
MIGRATIONS: tuple[str, ...] = (
    # 1: extensions, regrade requests, the audit trail.
    """
    CREATE TABLE extensions (
        student TEXT NOT NULL,
        lab TEXT NOT NULL,
        until TEXT NOT NULL,              -- ISO 8601, UTC: the student's own due date
        reason TEXT NOT NULL DEFAULT '',
        granted_by TEXT NOT NULL,
        granted_at REAL NOT NULL,
        PRIMARY KEY (student, lab)
    );
    CREATE TABLE regrades (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        student TEXT NOT NULL,
        lab TEXT NOT NULL,
        item TEXT NOT NULL,               -- a hidden test's name or a manually graded cell's id
        kind TEXT NOT NULL,               -- 'test' or 'cell'
        reason TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'open',
        escalated INTEGER NOT NULL DEFAULT 0,
        filed_at REAL NOT NULL,
        answered_by TEXT,
        answered_at REAL,
        answer TEXT,
        old_score REAL,
        new_score REAL,
        UNIQUE (student, lab, item)
    );
    CREATE INDEX regrades_by_state ON regrades (state, filed_at);
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at REAL NOT NULL,
        who TEXT NOT NULL,                -- the hub user (or the Unix user of a CLI command)
        action TEXT NOT NULL,             -- e.g. 'extension.grant', 'regrade.answer'
        student TEXT NOT NULL DEFAULT '',
        lab TEXT NOT NULL DEFAULT '',
        detail TEXT NOT NULL DEFAULT '{}' -- JSON: what changed, old and new values
    );
    CREATE INDEX audit_by_student ON audit (student, lab, at);
    """,
)


def open_versioned(
    path: Path, migrations: tuple[str, ...], *, what: str, wal: bool = False
) -> sqlite3.Connection:
    """PATH opened (created mode 0600 in a 0700 folder) and brought to the newest of MIGRATIONS
    (`MIGRATIONS[i]` takes a file from `user_version` i to i + 1, each in one transaction). A file
    written by a newer version is refused, naming WHAT it holds. Also used by introdl/lms."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fresh = not path.exists()
    try:
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA busy_timeout=5000")
        if wal:
            db.execute("PRAGMA journal_mode=WAL")
    except sqlite3.Error as err:
        raise BadInput(f"{path}: cannot open {what} ({err}); check its owner") from err
    if fresh:
        os.chmod(path, 0o600)
    current = int(db.execute("PRAGMA user_version").fetchone()[0])
    if current > len(migrations):
        db.close()
        raise BadInput(
            f"{path} was written by a newer introdl (schema {current}, this one knows "
            f"{len(migrations)}): upgrade introdl on this host before opening {what}"
        )
    for number in range(current, len(migrations)):
        # executescript commits first; the migration and its version bump are one unit.
        db.executescript(
            f"BEGIN IMMEDIATE;\n{migrations[number]}\nPRAGMA user_version = {number + 1};\nCOMMIT;"
        )
    return db


@dataclass(frozen=True)
class AuditLine:
    id: int
    at: float
    who: str
    action: str
    student: str
    lab: str
    detail: dict[str, Any]


class StaffStore:
    """One course's staff records (one writer process at a time; SQLite serialises the rest)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.db = open_versioned(path, MIGRATIONS, what="the staff records", wal=True)
        self._lock = threading.RLock()

    @classmethod
    def beside(cls, state: Path) -> StaffStore:
        """The store in the check service's state folder STATE."""
        return cls(Path(state) / FILE_NAME)

    def close(self) -> None:
        self.db.close()

    @property
    def version(self) -> int:
        return int(self.db.execute("PRAGMA user_version").fetchone()[0])

    @contextmanager
    def change(
        self, *, who: str, action: str, student: str = "", lab: str = "", **detail: Any
    ) -> Iterator[sqlite3.Connection]:
        """A transaction that writes its audit line too: `with store.change(...) as db: ...`.

        The audit line is written after the body, with DETAIL as JSON: a value the body fills in
        (a dict or list the caller passed in DETAIL and still holds) is recorded as it is then. If
        the body raises, neither the change nor the line lands.
        """
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
                self.db.execute(
                    "INSERT INTO audit (at, who, action, student, lab, detail) VALUES (?, ?, ?, ?, ?, ?)",
                    (time.time(), who, action, student, lab, json.dumps(detail, default=str)),
                )
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")

    def read(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return list(self.db.execute(sql, params).fetchall())

    def audit_trail(
        self, *, student: str | None = None, lab: str | None = None, limit: int = 500
    ) -> list[AuditLine]:
        """Newest first; filtered by STUDENT and/or LAB when given."""
        where, params = [], []
        if student is not None:
            where.append("student = ?")
            params.append(student)
        if lab is not None:
            where.append("lab = ?")
            params.append(lab)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        rows = self.read(f"SELECT * FROM audit {clause} ORDER BY id DESC LIMIT ?", (*params, limit))
        return [
            AuditLine(
                id=row["id"],
                at=row["at"],
                who=row["who"],
                action=row["action"],
                student=row["student"],
                lab=row["lab"],
                detail=json.loads(row["detail"]),
            )
            for row in rows
        ]

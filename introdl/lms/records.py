"""Every grade push, in SQLite: who ran it, which student and score, when, and what the LMS said.

`<state>/lms.sqlite` (mode 0600), beside the check service's and the staff's records. A row says
`sent` only after the LMS accepted the score (a 2xx answer), one row per request, written in its
own transaction: a crash between the LMS's answer and the write leaves the score unrecorded, so the
next push sends it again (AGS replaces a user's score, so sending twice is harmless), never a
score recorded as sent that the LMS did not take. `last_sent` is what makes a re-push send nothing.

The schema is versioned with `PRAGMA user_version`, in the style of introdl/staff/store.py.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from introdl.staff.store import open_versioned

FILE_NAME = "lms.sqlite"

# Append only: never edit a migration that has shipped; add the next one.
MIGRATIONS: tuple[str, ...] = (
    # 1: the pushes.
    """
    CREATE TABLE pushes (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at REAL NOT NULL,                 -- when the LMS answered (Unix time)
        who TEXT NOT NULL,                -- the Unix user who ran `introdl lms push`
        lab TEXT NOT NULL,
        student TEXT NOT NULL,            -- the gradebook's student id
        lms_user_id TEXT NOT NULL,
        line_item TEXT NOT NULL,          -- the AGS line item's URL
        score REAL NOT NULL,              -- final score sent (late penalty taken off)
        max_score REAL NOT NULL,
        outcome TEXT NOT NULL,            -- 'sent' (the LMS accepted it) or 'failed'
        http_status INTEGER,              -- the LMS's last status (NULL: no answer)
        answer TEXT NOT NULL DEFAULT ''   -- what the LMS said, shortened
    );
    CREATE INDEX pushes_by_lab ON pushes (lab, student, id);
    """,
)


@dataclass(frozen=True)
class Push:
    id: int
    at: float
    who: str
    lab: str
    student: str
    lms_user_id: str
    line_item: str
    score: float
    max_score: float
    outcome: str
    http_status: int | None
    answer: str


class Records:
    """The push records of one course (SQLite serialises writers)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.db = open_versioned(path, MIGRATIONS, what="the LMS push records")

    @classmethod
    def beside(cls, state: Path) -> Records:
        return cls(Path(state) / FILE_NAME)

    def close(self) -> None:
        self.db.close()

    @property
    def version(self) -> int:
        return int(self.db.execute("PRAGMA user_version").fetchone()[0])

    def record(
        self,
        *,
        who: str,
        lab: str,
        student: str,
        lms_user_id: str,
        line_item: str,
        score: float,
        max_score: float,
        outcome: str,
        http_status: int | None,
        answer: str,
    ) -> None:
        if outcome not in ("sent", "failed"):
            raise ValueError(outcome)
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute(
                "INSERT INTO pushes (at, who, lab, student, lms_user_id, line_item, score, "
                "max_score, outcome, http_status, answer) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    time.time(),
                    who,
                    lab,
                    student,
                    lms_user_id,
                    line_item,
                    score,
                    max_score,
                    outcome,
                    http_status,
                    answer[:2000],
                ),
            )

    def last_sent(self, lab: str) -> dict[str, Push]:
        """Student -> the newest push of LAB that the LMS accepted."""
        rows = self.db.execute(
            "SELECT * FROM pushes WHERE lab = ? AND outcome = 'sent' ORDER BY id", (lab,)
        ).fetchall()
        return {row["student"]: _push(row) for row in rows}

    def history(self, lab: str) -> list[Push]:
        rows = self.db.execute("SELECT * FROM pushes WHERE lab = ? ORDER BY id", (lab,)).fetchall()
        return [_push(row) for row in rows]


def _push(row: sqlite3.Row) -> Push:
    return Push(**dict(zip(row.keys(), tuple(row), strict=True)))

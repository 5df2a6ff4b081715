"""The check service's state: requests, the fair queue, verdicts and limits, in one SQLite file.

Every request is a row the moment it is accepted (with a copy of the notebook as it was when the
student asked), so a restart of the service loses nothing: rows that were being graded when it
stopped go back to the queue (`recover`). The queue is served round-robin across students: the next
check is the oldest request of the student who was served least recently, so one student's burst
cannot starve the others. Limits are per student and lab: at most `checks_per_day` requests in any
24 hours (plus what staff granted) and `cooldown_seconds` between two requests. Only this module
reads the clock for the queue, so the time stamps are the service's own.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DAY = 24 * 3600.0
STATES = ("queued", "running", "done")

SCHEMA = """
CREATE TABLE IF NOT EXISTS checks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    student TEXT NOT NULL,
    lab TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'queued',
    requested_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    notebook BLOB,
    results TEXT
);
CREATE INDEX IF NOT EXISTS checks_by_student ON checks (student, lab, requested_at);
CREATE INDEX IF NOT EXISTS checks_by_state ON checks (state, requested_at);
CREATE TABLE IF NOT EXISTS extra_checks (
    student TEXT NOT NULL,
    lab TEXT NOT NULL,
    extra INTEGER NOT NULL,
    granted_by TEXT NOT NULL,
    granted_at REAL NOT NULL,
    PRIMARY KEY (student, lab)
);
"""


# Every column but the notebook copy (up to the notebook size limit each): pages of a long queue
# read the queue every second, and must not read every waiting notebook to do it.
COLUMNS = "id, student, lab, state, requested_at, started_at, finished_at, attempts, results"


@dataclass(frozen=True)
class Limits:
    """A course's check limits (nbgrader_config.py: `c.CheckService.*`, see settings.py)."""

    checks_per_day: int = 5
    cooldown_seconds: float = 60.0


@dataclass(frozen=True)
class Check:
    id: int
    student: str
    lab: str
    state: str
    requested_at: float
    started_at: float | None
    finished_at: float | None
    results: dict[str, Any] | None
    attempts: int = 0

    @property
    def wait(self) -> float | None:
        """Seconds from request to verdict (None until done)."""
        return None if self.finished_at is None else self.finished_at - self.requested_at


class OverLimit(Exception):
    """A request over the student's limit; `next_allowed` is when the next one will be accepted."""

    def __init__(self, reason: str, next_allowed: float) -> None:
        super().__init__(reason)
        self.reason = reason
        self.next_allowed = next_allowed


class CheckQueue:
    """The SQLite file of the check service (one writer: the service's own process)."""

    def __init__(self, path: Path, limits: Limits = Limits()) -> None:
        self.path = path
        self.limits = limits
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(SCHEMA)
        path.chmod(0o600)

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def close(self) -> None:
        self._db.close()

    # --- requests ---------------------------------------------------------------------------
    def allowance(self, student: str, lab: str) -> int:
        row = self._db.execute(
            "SELECT extra FROM extra_checks WHERE student=? AND lab=?", (student, lab)
        ).fetchone()
        return self.limits.checks_per_day + (int(row["extra"]) if row else 0)

    def next_allowed(self, student: str, lab: str, now: float | None = None) -> float:
        """When STUDENT may next ask to check LAB (NOW or earlier: right away)."""
        now = time.time() if now is None else now
        times = [
            float(r["requested_at"])
            for r in self._db.execute(
                "SELECT requested_at FROM checks WHERE student=? AND lab=? AND requested_at>?"
                " ORDER BY requested_at",
                (student, lab, now - DAY),
            )
        ]
        allowed = now
        if times:
            allowed = max(allowed, times[-1] + self.limits.cooldown_seconds)
        over = len(times) - self.allowance(student, lab) + 1
        if over > 0:
            allowed = max(allowed, times[over - 1] + DAY)
        return allowed

    def refuse_over_limit(self, student: str, lab: str, now: float | None = None) -> None:
        """OverLimit, saying when to come back, when STUDENT may not check LAB at NOW."""
        now = time.time() if now is None else now
        allowed = self.next_allowed(student, lab, now)
        if allowed <= now:
            return
        used = self._db.execute(
            "SELECT COUNT(*) FROM checks WHERE student=? AND lab=? AND requested_at>?",
            (student, lab, now - DAY),
        ).fetchone()[0]
        allowance = self.allowance(student, lab)
        reason = (
            f"you have used your {allowance} checks of {lab} for the last 24 hours"
            if used >= allowance
            else f"checks of {lab} are at least {self.limits.cooldown_seconds:.0f} s apart"
        )
        raise OverLimit(reason, allowed)

    def request(self, student: str, lab: str, notebook: bytes, now: float | None = None) -> Check:
        """Queue a check of NOTEBOOK for STUDENT, or raise OverLimit saying when to come back."""
        now = time.time() if now is None else now
        with self._tx() as db:
            self.refuse_over_limit(student, lab, now)
            cursor = db.execute(
                "INSERT INTO checks (student, lab, requested_at, notebook) VALUES (?, ?, ?, ?)",
                (student, lab, now, notebook),
            )
            check_id = int(cursor.lastrowid or 0)
        return self.get(check_id)

    def get(self, check_id: int) -> Check:
        row = self._db.execute(f"SELECT {COLUMNS} FROM checks WHERE id=?", (check_id,)).fetchone()
        if row is None:
            raise KeyError(check_id)
        return _check(row)

    def history(self, *, student: str | None = None, lab: str | None = None) -> list[Check]:
        sql = f"SELECT {COLUMNS} FROM checks WHERE 1=1"
        args: list[Any] = []
        if student is not None:
            sql += " AND student=?"
            args.append(student)
        if lab is not None:
            sql += " AND lab=?"
            args.append(lab)
        return [_check(r) for r in self._db.execute(sql + " ORDER BY id", args)]

    # --- the fair queue ---------------------------------------------------------------------
    def order(self) -> list[Check]:
        """The queued checks in the order they will be served (round-robin across students)."""
        queued = [_check(r) for r in self._db.execute(self._QUEUED)]
        last: dict[str, float] = {
            str(r["student"]): float(r["t"])
            for r in self._db.execute(
                "SELECT student, MAX(started_at) AS t FROM checks"
                " WHERE started_at IS NOT NULL GROUP BY student"
            )
        }
        by_student: dict[str, list[Check]] = {}
        for check in queued:
            by_student.setdefault(check.student, []).append(check)
        out: list[Check] = []
        # A simulated clock: each pick marks its student as served after everyone served so far.
        tick = max(last.values(), default=0.0)
        while by_student:
            student = min(
                by_student, key=lambda s: (last.get(s, float("-inf")), by_student[s][0].id)
            )
            out.append(by_student[student].pop(0))
            if not by_student[student]:
                del by_student[student]
            tick += 1.0
            last[student] = tick
        return out

    _QUEUED = f"SELECT {COLUMNS} FROM checks WHERE state='queued' ORDER BY id"

    def take(self, now: float | None = None) -> Check | None:
        """The next check to grade (marked running), or None when the queue is empty."""
        now = time.time() if now is None else now
        with self._tx() as db:
            order = self.order()
            if not order:
                return None
            check = order[0]
            db.execute(
                "UPDATE checks SET state='running', started_at=?, attempts=attempts+1 WHERE id=?",
                (now, check.id),
            )
        return self.get(check.id)

    def notebook(self, check_id: int) -> bytes:
        row = self._db.execute("SELECT notebook FROM checks WHERE id=?", (check_id,)).fetchone()
        return bytes(row["notebook"])

    def finish(self, check_id: int, results: dict[str, Any], now: float | None = None) -> None:
        """Store the verdict (the engine's results.json); the notebook copy is no longer kept."""
        now = time.time() if now is None else now
        with self._tx() as db:
            db.execute(
                "UPDATE checks SET state='done', finished_at=?, results=?, notebook=NULL WHERE id=?",
                (now, json.dumps(results), check_id),
            )

    def recover(self) -> int:
        """After a restart: checks that were being graded go back to the queue. Returns how many."""
        with self._tx() as db:
            cursor = db.execute(
                "UPDATE checks SET state='queued', started_at=NULL WHERE state='running'"
            )
        return int(cursor.rowcount)

    def requeue(self, check_id: int) -> None:
        """A running check goes back to the queue (its grading was lost, not finished); its
        attempts stay counted."""
        with self._tx() as db:
            db.execute(
                "UPDATE checks SET state='queued', started_at=NULL WHERE id=? AND state='running'",
                (check_id,),
            )

    def position(self, check_id: int) -> int | None:
        """1 for the next to be graded; None when not waiting."""
        for index, check in enumerate(self.order()):
            if check.id == check_id:
                return index + 1
        return None

    def mean_seconds(self, lab: str, last: int = 20) -> float | None:
        """How long the last gradings of LAB took (for the ETA), or None before the first."""
        rows = self._db.execute(
            "SELECT finished_at - started_at AS d FROM checks WHERE lab=? AND state='done'"
            " AND started_at IS NOT NULL ORDER BY id DESC LIMIT ?",
            (lab, last),
        ).fetchall()
        return sum(float(r["d"]) for r in rows) / len(rows) if rows else None

    def arrivals_ahead(self, student: str, since: float) -> int:
        """How many requests came since SINCE from students the fair queue serves before STUDENT
        (served less recently, or never): the checks that will still overtake STUDENT's."""
        row = self._db.execute(
            "WITH last AS (SELECT student, MAX(started_at) AS t FROM checks"
            " WHERE started_at IS NOT NULL GROUP BY student)"
            " SELECT COUNT(*) FROM checks c LEFT JOIN last l ON l.student = c.student"
            " WHERE c.requested_at > ? AND c.student != ? AND COALESCE(l.t, -1) <"
            " COALESCE((SELECT t FROM last WHERE student = ?), -1)",
            (since, student, student),
        ).fetchone()
        return int(row[0])

    def running(self) -> list[Check]:
        return [
            _check(r)
            for r in self._db.execute(f"SELECT {COLUMNS} FROM checks WHERE state='running'")
        ]

    # --- staff --------------------------------------------------------------------------------
    def grant(self, student: str, lab: str, extra: int, by: str) -> None:
        """Give STUDENT EXTRA more checks of LAB per 24 hours (replaces an earlier grant)."""
        with self._tx() as db:
            db.execute(
                "INSERT INTO extra_checks VALUES (?, ?, ?, ?, ?) ON CONFLICT (student, lab)"
                " DO UPDATE SET extra=excluded.extra, granted_by=excluded.granted_by,"
                " granted_at=excluded.granted_at",
                (student, lab, extra, by, time.time()),
            )

    def summary(self) -> list[dict[str, Any]]:
        """Per student and lab: checks asked, last state and score, best score (who is stuck where)."""
        out: dict[tuple[str, str], dict[str, Any]] = {}
        for check in self.history():
            row = out.setdefault(
                (check.student, check.lab),
                {"student": check.student, "lab": check.lab, "checks": 0, "best": None},
            )
            row["checks"] += 1
            row["last_state"] = check.state
            row["last_at"] = check.requested_at
            if check.results is not None:
                score = float(check.results.get("score", 0.0))
                row["last_score"] = score
                row["max_score"] = float(check.results.get("max_score", 0.0))
                row["best"] = score if row["best"] is None else max(row["best"], score)
            row["allowance"] = self.allowance(check.student, check.lab)
        return sorted(out.values(), key=lambda r: (r["lab"], r["student"]))


def _check(row: sqlite3.Row) -> Check:
    return Check(
        id=int(row["id"]),
        student=str(row["student"]),
        lab=str(row["lab"]),
        state=str(row["state"]),
        requested_at=float(row["requested_at"]),
        started_at=None if row["started_at"] is None else float(row["started_at"]),
        finished_at=None if row["finished_at"] is None else float(row["finished_at"]),
        results=None if row["results"] is None else json.loads(row["results"]),
        attempts=int(row["attempts"]),
    )

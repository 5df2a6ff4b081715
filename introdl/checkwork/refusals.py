"""The check service's refusal log: every request it turned away, who sent it and why.

Kept in the service's SQLite (beside the queue) so staff see it on the staff page and at
`GET api/refusals` after a restart too, as the exchange keeps its own. "Who" is the hub user
when the request proved one, else the address it came from.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS refusals (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, who TEXT NOT NULL,
    action TEXT NOT NULL, reason TEXT NOT NULL);
"""
KEEP = 10_000  # newest rows kept: a flood of forged requests cannot fill the disk


class RefusalLog:
    """Refusals of one check service, newest last."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(SCHEMA)
        self._lock = threading.Lock()

    def record(self, *, who: str, action: str, reason: str) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO refusals (at, who, action, reason) VALUES (?, ?, ?, ?)",
                (time.time(), who[:200], action[:200], reason[:1000]),
            )
            self._db.execute(
                "DELETE FROM refusals WHERE id <= (SELECT MAX(id) FROM refusals) - ?", (KEEP,)
            )

    def recent(self, limit: int = 200) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT at, who, action, reason FROM refusals ORDER BY id DESC LIMIT ?", (limit,)
            ).fetchall()
        return [dict(zip(("at", "who", "action", "reason"), row, strict=True)) for row in rows]

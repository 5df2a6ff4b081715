"""When a student's feedback for a lab was released: the regrade window counts from it.

Read only from places the student cannot write (an attacker's view: their home, their fetched
feedback folder and their requests are theirs to forge, so none of them is read):

- `ExchangeReleases`: the course exchange's own records (`<exchange root>/exchange.sqlite`, read
  only), the first time `nbgrader release_feedback` released feedback for any of the student's
  hand-ins of the lab. The check service uses it when given `--exchange-root`.
- `CourseReleases`: without an exchange, the course's own `feedback/<student>/<lab>/` folder
  (`nbgrader generate_feedback`, staff only): the time its notebook's HTML was written.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

EXCHANGE_FORMAT = "%Y-%m-%d %H:%M:%S.%f UTC"  # the exchange's clock (exchange_store.py)


class FeedbackReleases(Protocol):
    def released_at(self, student: str, lab: str) -> float | None:
        """The first release of STUDENT's feedback for LAB (seconds since the epoch), or None."""
        ...


class ExchangeReleases:
    """Feedback releases as the course exchange recorded them."""

    def __init__(self, root: Path) -> None:
        self.path = Path(root).resolve() / "exchange.sqlite"

    def released_at(self, student: str, lab: str) -> float | None:
        if not self.path.is_file():
            return None
        # Never create files in the exchange's folder (the check service runs as root; a root-
        # owned -shm would lock the exchange's own user out): with no -wal file there is nothing
        # unsaved, so the file is read as it is (immutable); with one, the exchange's -shm is used.
        live = self.path.with_name(self.path.name + "-wal").exists()
        mode = "mode=ro" if live else "mode=ro&immutable=1"
        db = sqlite3.connect(f"{self.path.as_uri()}?{mode}", uri=True)
        try:
            row = db.execute(
                "SELECT MIN(f.released_at) FROM feedback f JOIN submissions s "
                "ON s.id = f.submission WHERE s.student = ? AND s.lab = ?",
                (student, lab),
            ).fetchone()
        finally:
            db.close()
        if not row or row[0] is None:
            return None
        return datetime.strptime(row[0], EXCHANGE_FORMAT).replace(tzinfo=UTC).timestamp()


class CourseReleases:
    """Feedback as written to the course's feedback folder (a course without the exchange)."""

    def __init__(self, course: Path) -> None:
        self.course = Path(course)

    def released_at(self, student: str, lab: str) -> float | None:
        html = self.course / "feedback" / student / lab / f"{lab}.html"
        try:
            return html.stat().st_mtime
        except OSError:
            return None

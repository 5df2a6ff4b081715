"""What the class dashboard reads: the gradebook, each submission's results, the check queue.

Three sources, each read the cheapest way that still gives the numbers nbgrader itself would:

- scores: nbgrader's gradebook (`gradebook.db`), read with one SQL query in the same terms as
  nbgrader's `SubmittedAssignment.score` (manual score if set, else auto score, plus extra
  credit) less the late penalty, floored at 0, as `nbgrader export` writes it;
- hidden tests and grading timings: `autograded/<student>/<lab>/results.json`, written by batch
  grading (record/results.py); each file is parsed once and kept until its mtime or size changes;
- check-my-work use: the check service's `checks.sqlite` (checkwork/fair_queue.py): each finished
  check's score and phase timings are extracted once (`json_extract`, no verdict is parsed in
  Python) and kept, since a finished check's verdict never changes.

`Sources.stamp()` is a cheap fingerprint of all three (file mtimes and sizes, the queue's row
count and last change): the dashboard re-reads and re-plots only when it changes. Every file is
opened read-only; the dashboard never writes the course.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PHASES = ("sandbox_start", "notebook", "hidden_tests")


@dataclass(frozen=True)
class Score:
    student: str
    score: float  # after the late penalty, as `nbgrader export` writes it
    max_score: float
    late_penalty: float


@dataclass(frozen=True)
class Outcome:
    """One hidden test in one submission."""

    name: str
    status: str
    output: str


@dataclass(frozen=True)
class Graded:
    """What the dashboard keeps of one results.json."""

    student: str
    lab: str
    tests: tuple[Outcome, ...]
    phases: dict[str, float]  # seconds per phase that ran (PHASES)


@dataclass(frozen=True)
class CheckUse:
    """A student's checks of one lab (from the check service's queue)."""

    student: str
    lab: str
    checks: int
    last_score: float | None  # None: no check has finished yet
    best_score: float | None
    max_score: float | None
    last_at: float

    @property
    def still_failing(self) -> bool:
        """The latest finished check had less than full marks (or none has finished)."""
        return self.last_score is None or self.max_score is None or self.last_score < self.max_score


def _connect_read_only(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
    db.execute("PRAGMA busy_timeout=2000")
    return db


def _stat(path: Path) -> tuple[int, int]:
    try:
        st = path.stat()
    except OSError:
        return (0, -1)
    return (st.st_mtime_ns, st.st_size)


def gradebook_path(course: Path) -> Path:
    """The course's gradebook file (nbgrader's `db_url` as the course's nbgrader_config.py sets
    it: `sqlite:///<course>/gradebook.db`)."""
    return course / "gradebook.db"


def read_scores(gradebook: Path) -> dict[str, list[Score]]:
    """Per lab (assignment), each submission's score as `nbgrader export` computes it."""
    if not gradebook.exists():
        return {}
    sql = """
        SELECT a.name, sa.student_id,
               COALESCE(SUM(CASE WHEN g.manual_score IS NOT NULL
                                 THEN g.manual_score + COALESCE(g.extra_credit, 0)
                                 WHEN g.auto_score IS NOT NULL
                                 THEN g.auto_score + COALESCE(g.extra_credit, 0)
                                 ELSE 0 END), 0),
               (SELECT COALESCE(SUM(sn2.late_submission_penalty), 0) FROM submitted_notebook sn2
                 WHERE sn2.assignment_id = sa.id)
          FROM submitted_assignment sa
          JOIN assignment a ON a.id = sa.assignment_id
          LEFT JOIN submitted_notebook sn ON sn.assignment_id = sa.id
          LEFT JOIN grade g ON g.notebook_id = sn.id
         GROUP BY sa.id
         ORDER BY a.name, sa.student_id
    """
    maxima_sql = """
        SELECT a.name, COALESCE(SUM(c.max_score), 0) FROM assignment a
          LEFT JOIN notebook n ON n.assignment_id = a.id
          LEFT JOIN base_cell b ON b.notebook_id = n.id
          LEFT JOIN (SELECT id, max_score FROM grade_cells
                     UNION ALL SELECT id, max_score FROM task_cells) c ON c.id = b.id
         GROUP BY a.id
    """
    with _connect_read_only(gradebook) as db:
        maxima = {str(name): float(total) for name, total in db.execute(maxima_sql)}
        out: dict[str, list[Score]] = {lab: [] for lab in maxima}
        for lab, student, raw, penalty in db.execute(sql):
            penalty = float(penalty or 0.0)
            out[str(lab)].append(
                Score(str(student), max(0.0, float(raw) - penalty), maxima[str(lab)], penalty)
            )
    return out


def _graded(data: dict[str, Any], student: str, lab: str) -> Graded:
    tests = tuple(
        Outcome(str(t.get("name", "")), str(t.get("status", "")), str(t.get("output", "")))
        for t in data.get("tests", [])
    )
    phases = data.get("phases") or {}
    return Graded(
        student=student,
        lab=lab,
        tests=tests,
        phases={k: float(phases[k]) for k in PHASES if phases.get(k) is not None},
    )


@dataclass
class ResultsCache:
    """Parsed results.json files, kept while their (mtime, size) stays the same."""

    files: dict[Path, tuple[tuple[int, int], Graded | None]] = field(default_factory=dict)

    def read(self, path: Path, student: str, lab: str) -> Graded | None:
        stamp = _stat(path)
        known = self.files.get(path)
        if known is not None and known[0] == stamp:
            return known[1]
        try:
            graded: Graded | None = _graded(json.loads(path.read_bytes()), student, lab)
        except (OSError, ValueError, TypeError, AttributeError):
            graded = None  # half-written or foreign: left out (regrading rewrites it)
        self.files[path] = (stamp, graded)
        return graded


def results_files(course: Path) -> Iterator[tuple[str, str, Path]]:
    """(student, lab, path) of every results.json under autograded/ (no symlinks followed)."""
    root = course / "autograded"
    try:
        students = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError:
        return
    for student in students:
        if not student.is_dir(follow_symlinks=False) or student.name.startswith("."):
            continue
        for lab in sorted(os.scandir(student.path), key=lambda e: e.name):
            path = Path(lab.path) / "results.json"
            if lab.is_dir(follow_symlinks=False) and not path.is_symlink() and path.is_file():
                yield student.name, lab.name, path


@dataclass
class ChecksCache:
    """The check service's finished checks, each verdict's score and phases read once: a verdict
    never changes after its check is done, so a new read extracts only the checks that finished
    since (a busy queue of 5,000 checks holds about 45 MB of verdicts)."""

    done: dict[int, tuple[float | None, float | None, dict[str, float]]] = field(
        default_factory=dict
    )

    def read(self, checks_db: Path) -> tuple[list[CheckUse], list[tuple[str, dict[str, float]]]]:
        """(per student and lab: checks asked, latest and best finished score; (lab, seconds per
        phase) of every finished check)."""
        if not checks_db.exists():
            return [], []
        extract = ", ".join(f"json_extract(results, '$.phases.{p}')" for p in PHASES)
        with _connect_read_only(checks_db) as db:
            light = db.execute(
                "SELECT id, student, lab, state, requested_at FROM checks ORDER BY id"
            ).fetchall()
            missing = [r[0] for r in light if r[3] == "done" and r[0] not in self.done]
            for at in range(0, len(missing), 500):
                chunk = missing[at : at + 500]
                marks = ",".join("?" * len(chunk))
                for row in db.execute(
                    f"SELECT id, json_extract(results, '$.score'), json_extract(results,"
                    f" '$.max_score'), {extract} FROM checks WHERE id IN ({marks})",
                    chunk,
                ):
                    phases = {
                        p: float(v) for p, v in zip(PHASES, row[3:], strict=True) if v is not None
                    }
                    self.done[row[0]] = (_opt(row[1]), _opt(row[2]), phases)
        uses: dict[tuple[str, str], dict[str, Any]] = {}
        timed = []
        for check_id, student, lab, state, at in light:
            use = uses.setdefault(
                (student, lab), {"checks": 0, "last": None, "best": None, "max": None, "at": 0.0}
            )
            use["checks"] += 1
            use["at"] = max(use["at"], float(at))
            if state != "done" or check_id not in self.done:
                continue
            score, top, phases = self.done[check_id]
            timed.append((str(lab), phases))
            if score is not None:
                use["last"], use["max"] = score, top  # rows come oldest first
                use["best"] = score if use["best"] is None else max(use["best"], score)
        return [
            CheckUse(str(s), str(lab), u["checks"], u["last"], u["best"], u["max"], u["at"])
            for (s, lab), u in sorted(uses.items(), key=lambda kv: (kv[0][1], kv[0][0]))
        ], timed


def _opt(value: Any) -> float | None:
    return None if value is None else float(value)


def checks_stamp(checks_db: Path) -> tuple[Any, ...]:
    """Changes whenever a check is asked or finishes (the id and finish time only grow)."""
    if not checks_db.exists():
        return ()
    with _connect_read_only(checks_db) as db:
        return tuple(
            db.execute("SELECT COUNT(*), MAX(id), MAX(finished_at) FROM checks").fetchone()
        )


@dataclass
class Sources:
    """Where one course's dashboard reads from, with the parsed results kept between reads."""

    course: Path
    checks_db: Path | None = None
    cache: ResultsCache = field(default_factory=ResultsCache)
    checks: ChecksCache = field(default_factory=ChecksCache)
    _scores: tuple[tuple[int, int], dict[str, list[Score]]] | None = None

    def stamp(self) -> tuple[Any, ...]:
        """A fingerprint that changes when any source changes (cheap: stats and one query)."""
        files = tuple((s, lab, _stat(p)) for s, lab, p in results_files(self.course))
        checks = checks_stamp(self.checks_db) if self.checks_db else ()
        return (_stat(gradebook_path(self.course)), files, checks)

    def scores(self) -> dict[str, list[Score]]:
        """The gradebook's scores, read again only when the file changed."""
        path = gradebook_path(self.course)
        stamp = _stat(path)
        if self._scores is None or self._scores[0] != stamp:
            self._scores = (stamp, read_scores(path))
        return self._scores[1]

    def check_use(self) -> tuple[list[CheckUse], list[tuple[str, dict[str, float]]]]:
        return self.checks.read(self.checks_db) if self.checks_db else ([], [])

    def graded(self) -> list[Graded]:
        found = [self.cache.read(p, s, lab) for s, lab, p in results_files(self.course)]
        return [g for g in found if g is not None]

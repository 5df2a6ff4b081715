"""A generated class for the class dashboard: gradebook, graded results and checks.

`Submission` says everything about one student's graded lab; `write_class` puts a list of them
where the real course keeps them: nbgrader's gradebook (through nbgrader's own API, so the scores
are the ones nbgrader computes), `autograded/<student>/<lab>/results.json` (record/results.py,
with phase timings and per-cell runs, as batch grading writes it) and the check service's
`checks.sqlite` (fair_queue.py's schema; finished checks with their verdicts).
`random_class` makes a realistic one (the benchmark's 300 students x 5 labs).
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import sys
from dataclasses import dataclass, field
from pathlib import Path

from nbgrader.api import Gradebook

from introdl.checkwork.fair_queue import CheckQueue
from introdl.grading.record.results import CellRun, Phases, Results, Sandbox, TestResult

POINTS = 2.0  # per grade cell; each grade cell has two tests of 1 point


@dataclass
class Submission:
    student: str
    lab: str
    outcomes: dict[str, tuple[str, str]]  # test name -> (status, output)
    phases: dict[str, float]
    checks: list[float] = field(default_factory=list)  # each check's score, oldest first
    late_penalty: float = 0.0


def grade_cell(test: str) -> str:
    return test.rsplit("_", 1)[0]  # test_<cell>_<k> belongs to grade cell test_<cell>


def results_of(sub: Submission, tests: list[str], cells: int) -> Results:
    return Results(
        lab=sub.lab,
        student=sub.student,
        seed=1,
        max_points={grade_cell(t): POINTS for t in tests},
        sandbox=Sandbox("bwrap", True),
        tests=tuple(
            TestResult(
                name=t,
                grade_id=grade_cell(t),
                score=1.0 if sub.outcomes[t][0] == "passed" else 0.0,
                max_score=1.0,
                status=sub.outcomes[t][0],  # type: ignore[arg-type]
                output=sub.outcomes[t][1],
                duration=0.05,
            )
            for t in tests
            if t in sub.outcomes
        ),
        phases=Phases(**sub.phases, total=sum(sub.phases.values())),
        cells=tuple(
            CellRun(index=i, status="ok", duration=0.1, code_number=i + 1) for i in range(cells)
        ),
        execution_time=sum(sub.phases.values()),
        timestamp="2026-12-01 10:00:00 UTC",
    )


def write_class(root: Path, subs: list[Submission], *, cells: int = 30) -> Path:
    """ROOT becomes a course holding SUBS; returns the check service's queue file."""
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"  # alembic
    labs: dict[str, list[str]] = {}
    for sub in subs:
        names = labs.setdefault(sub.lab, [])
        names.extend(t for t in sub.outcomes if t not in names)
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}", "introdl") as gb:
        for lab, tests in labs.items():
            gb.add_assignment(lab)
            gb.add_notebook(lab, lab)
            for cell in sorted({grade_cell(t) for t in tests}):
                gb.add_grade_cell(cell, lab, lab, max_score=POINTS, cell_type="code")
        for student in dict.fromkeys(sub.student for sub in subs):
            gb.add_student(student)
        for sub in subs:
            submitted = gb.add_submission(sub.lab, sub.student)
            for nb in submitted.notebooks:
                nb.late_submission_penalty = sub.late_penalty
                for grade in nb.grades:
                    grade.auto_score = sum(
                        1.0
                        for t, (status, _) in sub.outcomes.items()
                        if grade_cell(t) == grade.name and status == "passed"
                    )
            gb.db.commit()
    for sub in subs:
        path = root / "autograded" / sub.student / sub.lab / "results.json"
        results_of(sub, labs[sub.lab], cells).write(path)
    queue_path = root / "state" / "checks.sqlite"
    CheckQueue(queue_path).close()
    rows = []
    clock = 1_790_000_000.0
    for sub in subs:
        for score in sub.checks:
            clock += 7.0
            verdict = results_of(sub, labs[sub.lab], cells).to_json()
            verdict["score"] = score
            rows.append(
                (sub.student, sub.lab, "done", clock, clock + 1, clock + 30, 1, json.dumps(verdict))
            )
    with sqlite3.connect(queue_path) as db:
        db.executemany(
            "INSERT INTO checks (student, lab, state, requested_at, started_at, finished_at,"
            " attempts, results) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
    return queue_path


MESSAGES = (
    "expected {a:.3f}, got {b:.3f}",
    "compute_loss should be the per-token cross-entropy (largest difference {a:.3f})",
    "the model's output shape should be (None, {n}), not (None, {m})",
    "func() raised NotImplementedError:",
    "Traceback: ValueError: shapes ({n},) and ({m},) not aligned",
)


def random_class(students: int, labs: int, seed: int = 0, tests: int = 12) -> list[Submission]:
    """STUDENTS x LABS submissions: each test has its own difficulty; failing students ask for
    more checks (0 to 25 per lab); phase timings as this machine measured them (BENCHMARKS.md)."""
    rng = random.Random(seed)
    subs = []
    for lab_index in range(labs):
        lab = f"lab{lab_index + 1}_generated"
        names = [f"test_part{c}_{k}" for c in range(tests // 2) for k in (1, 2)]
        difficulty = {t: rng.uniform(0.3, 0.98) for t in names}
        for s in range(students):
            outcomes = {}
            for t in names:
                if rng.random() < difficulty[t]:
                    outcomes[t] = ("passed", "")
                else:
                    message = rng.choice(MESSAGES).format(
                        a=rng.random(), b=rng.random(), n=rng.randint(1, 99), m=rng.randint(1, 99)
                    )
                    outcomes[t] = (rng.choice(("failed", "failed", "error")), message)
            failing = sum(1 for o in outcomes.values() if o[0] != "passed")
            n_checks = min(25, int(rng.expovariate(1.0) * 2 + failing * rng.random()))
            phases = {
                "sandbox_start": rng.lognormvariate(-0.5, 0.4),
                "notebook": rng.lognormvariate(1.5 + lab_index * 0.3, 0.3),
                "hidden_tests": rng.lognormvariate(1.0 + lab_index * 0.2, 0.5),
            }
            score = float(len(names) - failing)  # 1 point per test
            checks = [max(0.0, score - rng.randint(0, 4)) for _ in range(n_checks)]
            subs.append(Submission(f"student{s:03d}", lab, outcomes, phases, checks))
    return subs

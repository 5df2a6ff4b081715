"""The results file of one graded submission: `autograded/<student>/<lab>/results.json`.

Shaped like Gradescope's results file (`score`, `max_score`, `execution_time`, `tests[]` with
`name`, `score`, `max_score`, `status`, `output`, `visibility`), plus what this platform knows about
the run: the grading seed, the sandbox, phase timings, events (timeouts, memory, killed kernels),
a per-cell execution summary and grading errors. Scores come only from the hidden tests as the
grader process saw them; per-grade-cell scores are derived from the tests, never stored apart.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal, cast, get_args

Status = Literal["passed", "failed", "error", "skipped"]
Visibility = Literal["visible", "hidden", "after_due_date", "after_published"]
STATUSES: tuple[str, ...] = get_args(Status)
VISIBILITIES: tuple[str, ...] = get_args(Visibility)

FORMAT_VERSION = 1


@dataclass(frozen=True)
class TestResult:
    """One hidden test as the grader saw it. `output` is the authored message, never test source."""

    __test__: ClassVar[bool] = False  # a dataclass named Test*: keep pytest from collecting it

    name: str
    grade_id: str
    score: float
    max_score: float
    status: Status
    output: str = ""
    visibility: Visibility = "visible"
    duration: float = 0.0
    # an error because the grading host was too busy (kernel/cpu.py): graded again, not failed
    host_busy: bool = False

    def to_json(self) -> dict[str, Any]:
        busy = {"host_busy": True} if self.host_busy else {}
        return {
            "name": self.name,
            "grade_id": self.grade_id,
            "score": self.score,
            "max_score": self.max_score,
            "status": self.status,
            "output": self.output,
            "visibility": self.visibility,
            "duration": round(self.duration, 3),
            **busy,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TestResult:
        status = str(data["status"])
        visibility = str(data.get("visibility", "visible"))
        if status not in STATUSES:
            raise ValueError(f"test {data.get('name')!r}: unknown status {status!r}")
        if visibility not in VISIBILITIES:
            raise ValueError(f"test {data.get('name')!r}: unknown visibility {visibility!r}")
        return cls(
            name=str(data["name"]),
            grade_id=str(data["grade_id"]),
            score=float(data["score"]),
            max_score=float(data["max_score"]),
            status=cast(Status, status),
            output=str(data.get("output", "")),
            visibility=cast(Visibility, visibility),
            duration=float(data.get("duration", 0.0)),
            host_busy=bool(data.get("host_busy", False)),
        )


@dataclass(frozen=True)
class GradeScore:
    """The score of one grade cell: the sum over the hidden tests that carry its grade id."""

    grade_id: str
    score: float
    max_score: float
    tests: tuple[TestResult, ...]


@dataclass(frozen=True)
class Sandbox:
    """Which sandbox ran the student's notebook. `sandboxed` is False only for `--sandbox none`."""

    backend: str
    sandboxed: bool
    workdir_quota: int | None = None  # bytes the working copy could hold; None: no total quota

    def to_json(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "sandboxed": self.sandboxed,
            "workdir_quota": self.workdir_quota,
        }


@dataclass(frozen=True)
class Phases:
    """Wall-clock seconds per grading phase (None: the phase did not run)."""

    sandbox_start: float | None = None
    notebook: float | None = None
    hidden_tests: float | None = None
    total: float | None = None

    def to_json(self) -> dict[str, float | None]:
        return {
            k: (None if v is None else round(v, 3))
            for k, v in (
                ("sandbox_start", self.sandbox_start),
                ("notebook", self.notebook),
                ("hidden_tests", self.hidden_tests),
                ("total", self.total),
            )
        }


@dataclass(frozen=True)
class Event:
    """Something that happened to the sandbox or kernel while grading.

    Kinds the engine uses: `timeout` (a cell or call ran out of time), `memory` (the memory limit
    was hit), `killed` (the sandbox was killed), `kernel_died`, `output_truncated`, `interrupted`.
    """

    kind: str
    message: str = ""
    cell: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "message": self.message, "cell": self.cell}


@dataclass(frozen=True)
class CellRun:
    """How one notebook cell ran in the sandbox: `ok`, `error`, `timeout` or `not_run`."""

    index: int  # among all the notebook's cells, markdown included
    status: str
    duration: float = 0.0
    grade_id: str | None = None
    message: str = ""
    code_number: int | None = None  # 1-based among code cells (None in results before it)
    heading: str | None = None  # the nearest markdown heading above, as the student sees it

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "status": self.status,
            "duration": round(self.duration, 3),
            "grade_id": self.grade_id,
            "message": self.message,
            "code_number": self.code_number,
            "heading": self.heading,
        }


@dataclass(frozen=True)
class Results:
    """Everything known about grading one submission of one lab.

    `max_points` maps every autograded grade cell of the lab to its points (from the source
    notebook), so a submission that could not be run at all still has the right `max_score` and a
    zero on each cell.
    """

    lab: str
    student: str
    seed: int
    max_points: Mapping[str, float]
    sandbox: Sandbox
    tests: tuple[TestResult, ...] = ()
    phases: Phases = Phases()
    events: tuple[Event, ...] = ()
    cells: tuple[CellRun, ...] = ()
    errors: tuple[str, ...] = ()
    execution_time: float = 0.0
    timestamp: str | None = None
    # Why a wall-clock limit ran out on a too busy host (kernel/cpu.py): non-empty means the
    # verdict is not final (its tests are errors, 0 points for now) and batch.py grades it again.
    host_busy: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        unknown = sorted({t.grade_id for t in self.tests} - set(self.max_points))
        if unknown:
            raise ValueError(
                f"tests carry grade ids that the lab does not have: {', '.join(unknown)}"
            )

    @property
    def max_score(self) -> float:
        return float(sum(self.max_points.values()))

    @property
    def score(self) -> float:
        return float(sum(g.score for g in self.grades().values()))

    def grades(self) -> dict[str, GradeScore]:
        """Per grade cell: the sum of its tests' scores, capped at the cell's points."""
        out: dict[str, GradeScore] = {}
        for grade_id, points in self.max_points.items():
            tests = tuple(t for t in self.tests if t.grade_id == grade_id)
            # Float sums of split points can overshoot by an ulp; nbgrader rejects score > points.
            score = min(float(math.fsum(t.score for t in tests)), float(points))
            out[grade_id] = GradeScore(grade_id, score, float(points), tests)
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "lab": self.lab,
            "student": self.student,
            "timestamp": self.timestamp,
            "seed": self.seed,
            "score": self.score,
            "max_score": self.max_score,
            "execution_time": round(self.execution_time, 3),
            "grades": {
                g.grade_id: {"score": g.score, "max_score": g.max_score}
                for g in self.grades().values()
            },
            "tests": [t.to_json() for t in self.tests],
            "sandbox": self.sandbox.to_json(),
            "phases": self.phases.to_json(),
            "events": [e.to_json() for e in self.events],
            "cells": [c.to_json() for c in self.cells],
            "errors": list(self.errors),
            "host_busy": list(self.host_busy),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Results:
        phases = data.get("phases") or {}
        sandbox = data.get("sandbox") or {}
        return cls(
            lab=str(data["lab"]),
            student=str(data["student"]),
            seed=int(data["seed"]),
            max_points={str(k): float(v["max_score"]) for k, v in data["grades"].items()},
            tests=tuple(TestResult.from_json(t) for t in data.get("tests", [])),
            sandbox=Sandbox(
                backend=str(sandbox.get("backend", "none")),
                sandboxed=bool(sandbox.get("sandboxed", False)),
                workdir_quota=_opt_int(sandbox.get("workdir_quota")),
            ),
            phases=Phases(**{k: _opt_float(phases.get(k)) for k in Phases.__dataclass_fields__}),
            events=tuple(
                Event(str(e["kind"]), str(e.get("message", "")), _opt_int(e.get("cell")))
                for e in data.get("events", [])
            ),
            cells=tuple(
                CellRun(
                    index=int(c["index"]),
                    status=str(c["status"]),
                    duration=float(c.get("duration", 0.0)),
                    grade_id=None if c.get("grade_id") is None else str(c["grade_id"]),
                    message=str(c.get("message", "")),
                    code_number=_opt_int(c.get("code_number")),
                    heading=None if c.get("heading") is None else str(c["heading"]),
                )
                for c in data.get("cells", [])
            ),
            errors=tuple(str(e) for e in data.get("errors", [])),
            execution_time=float(data.get("execution_time", 0.0)),
            timestamp=None if data.get("timestamp") is None else str(data["timestamp"]),
            host_busy=tuple(str(e) for e in data.get("host_busy", [])),
        )

    def write(self, path: Path) -> Path:
        """Write results.json atomically: readers see the old file or the new one, never half."""
        write_json_atomically(path, self.to_json())
        return path

    @classmethod
    def read(cls, path: Path) -> Results:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise ValueError(
                f"{path} is not a readable results file ({err}); regrade the submission"
            ) from err
        return cls.from_json(data)


def results_path(course_root: Path, student: str, lab: str) -> Path:
    """Where the results of STUDENT's LAB live: autograded/<student>/<lab>/results.json."""
    return course_root / "autograded" / student / lab / "results.json"


def write_json_atomically(path: Path, payload: Any) -> None:
    """Write JSON to a temporary file beside PATH, flush it to disk, then rename it over PATH."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(payload, fh, indent=2, sort_keys=False, allow_nan=False)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)

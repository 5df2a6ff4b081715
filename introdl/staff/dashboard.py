"""The class dashboard: per lab, scores, hidden tests, check-my-work use and grading timings.

`Dashboard(sources).model()` reads the sources (dashboard_data.py) only when their fingerprint
changed, and `plots(model)` draws each plot only when its own inputs changed: a finished check
redraws one plot, not the whole page. Plots are kept in memory and, given a folder, on disk by
the digest of their inputs, so a restarted service draws nothing that is already drawn.
The tables (`tables`) are what the page shows and what each CSV download holds.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from introdl.staff import dashboard_plots as plots
from introdl.staff.dashboard_data import PHASES, CheckUse, Score, Sources
from introdl.staff.dashboard_stats import (
    Distribution,
    TestRate,
    Timing,
    distribution,
    stuck,
    test_rates,
    timings,
)

TABLES = ("scores", "tests", "failures", "checks", "timings")
PLOT_VERSION = "1"  # part of every plot's digest: bump when a plot's drawing changes


@dataclass(frozen=True)
class LabView:
    lab: str
    scores: tuple[Score, ...]
    distribution: Distribution | None
    tests: tuple[TestRate, ...]
    checks: tuple[CheckUse, ...]  # still failing first, then most checks


@dataclass(frozen=True)
class Model:
    labs: tuple[LabView, ...]
    timings: tuple[Timing, ...]

    def lab(self, name: str) -> LabView | None:
        return next((v for v in self.labs if v.lab == name), None)

    def only(self, name: str) -> Model:
        return Model(
            tuple(v for v in self.labs if v.lab == name),
            tuple(t for t in self.timings if t.lab == name),
        )


def build_model(sources: Sources) -> Model:
    scores = sources.scores()
    graded = sources.graded()
    uses, check_phases = sources.check_use()
    labs = sorted(set(scores) | {g.lab for g in graded} | {u.lab for u in uses})
    views = tuple(
        LabView(
            lab=lab,
            scores=tuple(scores.get(lab, ())),
            distribution=distribution(scores.get(lab, []), lab),
            tests=tuple(test_rates(graded, lab)),
            checks=tuple(stuck(uses, lab)),
        )
        for lab in labs
    )
    timed = timings("grading", [(g.lab, g.phases) for g in graded])
    timed += timings("checks", check_phases)
    return Model(views, tuple(timed))


def tables(model: Model) -> dict[str, tuple[list[str], list[list[Any]]]]:
    """Every table of the dashboard: name -> (header, rows); the CSV downloads hold these."""
    out: dict[str, tuple[list[str], list[list[Any]]]] = {
        "scores": (["lab", "student", "score", "max_score", "late_penalty"], []),
        "tests": (["lab", "test", "submissions", "passed", "pass_rate"], []),
        "failures": (["lab", "test", "message", "count"], []),
        "checks": (
            ["lab", "student", "checks", "last_score", "best_score", "max_score", "still_failing"],
            [],
        ),
        "timings": (["lab", "source", "phase", "count", "median_s", "p95_s"], []),
    }
    for v in model.labs:
        out["scores"][1].extend(
            [v.lab, s.student, s.score, s.max_score, s.late_penalty] for s in v.scores
        )
        for t in v.tests:
            out["tests"][1].append([v.lab, t.name, t.runs, t.passed, round(t.pass_rate, 4)])
            out["failures"][1].extend([v.lab, t.name, m, n] for m, n in t.failures)
        out["checks"][1].extend(
            [v.lab, u.student, u.checks, u.last_score, u.best_score, u.max_score, u.still_failing]
            for u in v.checks
        )
    out["timings"][1].extend(
        [t.lab, t.source, t.phase, t.count, round(t.median, 3), round(t.p95, 3)]
        for t in model.timings
    )
    return out


def _cell(value: Any) -> Any:
    """A CSV cell that a spreadsheet will not run: text starting with = + - @ (or a tab/CR,
    which some spreadsheets skip) is prefixed with an apostrophe (OWASP's CSV injection advice)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value


def to_csv(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([_cell(v) for v in row] for row in rows)
    return buffer.getvalue()


@dataclass
class Dashboard:
    """One course's dashboard, with its caches (thread-safe: the service may serve it from
    several requests at once)."""

    sources: Sources
    plot_dir: Path | None = None  # where drawn plots are kept across restarts (None: memory only)
    _stamp: Any = None
    _model: Model | None = None
    _plots: dict[str, bytes] = field(default_factory=dict)
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _used: set[str] = field(default_factory=set)  # plots the page being drawn shows
    drawn: int = 0  # plots drawn by this object (the benchmark and tests read it)

    def model(self) -> Model:
        with self._lock:
            stamp = self.sources.stamp()
            if self._model is None or stamp != self._stamp:
                self._model, self._stamp = build_model(self.sources), stamp
            return self._model

    def plot(self, key: str, draw: Callable[..., bytes], *args: Any) -> bytes:
        """The SVG that DRAW(*ARGS) makes, drawn only if these ARGS were never drawn before.
        One thread draws at a time (matplotlib keeps global state); a second request for the
        same plot waits and finds it drawn."""
        text = json.dumps([PLOT_VERSION, key, args], default=str)
        name = f"{hashlib.sha256(text.encode()).hexdigest()[:32]}.svg"
        with self._lock:
            self._used.add(name)
            if name in self._plots:
                return self._plots[name]
            if self.plot_dir is not None:
                try:
                    svg = plots.inert((self.plot_dir / name).read_bytes())
                except (OSError, plots.NotInert):
                    pass
                else:
                    self._plots[name] = svg
                    return svg
            svg = draw(*args)
            self.drawn += 1
            self._plots[name] = svg
            if self.plot_dir is not None:
                self._keep(name, svg)
            return svg

    def _forget_unused(self) -> None:
        """Drop the plots the last page did not show (a busy queue changes a plot per check)."""
        with self._lock:
            for name in set(self._plots) - self._used:
                del self._plots[name]
            if self.plot_dir is not None and self.plot_dir.is_dir():
                for path in self.plot_dir.glob("*.svg"):
                    if path.name not in self._used:
                        path.unlink(missing_ok=True)
            self._used = set()

    def _keep(self, name: str, svg: bytes) -> None:
        try:
            self.plot_dir.mkdir(parents=True, exist_ok=True, mode=0o700)  # type: ignore[union-attr]
            tmp = self.plot_dir / f".{name}.{os.getpid()}.tmp"  # type: ignore[operator]
            tmp.write_bytes(svg)
            os.replace(tmp, self.plot_dir / name)  # type: ignore[operator]
        except OSError:
            pass  # a read-only state folder: plots stay in memory only

    def plots(self, model: Model) -> dict[str, bytes]:
        """Every plot of MODEL by its place on the page: 'timings', 'stuck', '<lab>/scores', ..."""
        with self._lock:
            self._used = set()
            out = self._draw_all(model)
            self._forget_unused()
        return out

    def _draw_all(self, model: Model) -> dict[str, bytes]:
        out: dict[str, bytes] = {}
        labs = [v.lab for v in model.labs]
        graded = {
            (t.lab, t.phase): (t.median, t.p95) for t in model.timings if t.source == "grading"
        }
        if graded:
            # JSON has no tuple keys: the arguments travel as a list, and are rebuilt to draw.
            pairs = sorted([lab, phase, m, p] for (lab, phase), (m, p) in graded.items())
            out["timings"] = self.plot("timings", _timings_plot, labs, pairs)
        stuck_rows = [
            (u.student, v.lab, u.checks) for v in model.labs for u in v.checks if u.still_failing
        ]
        stuck_rows.sort(key=lambda r: (-r[2], r[0], r[1]))
        if stuck_rows:
            out["stuck"] = self.plot("stuck", plots.stuck_students, stuck_rows[:15])
        for v in model.labs:
            if v.distribution is not None:
                values = sorted(s.score for s in v.scores)
                out[f"{v.lab}/scores"] = self.plot(
                    "scores", plots.scores_histogram, v.lab, values, v.distribution.max_score
                )
            if v.tests:
                names = [t.name for t in v.tests[:15]]
                rates = [round(t.pass_rate, 4) for t in v.tests[:15]]
                out[f"{v.lab}/tests"] = self.plot("tests", plots.pass_rates, v.lab, names, rates)
        return out


def _timings_plot(labs: list[str], pairs: list[list[Any]]) -> bytes:
    medians = {(str(lab), str(phase)): (float(m), float(p)) for lab, phase, m, p in pairs}
    assert all(phase in PHASES for _, phase in medians)
    return plots.phase_timings(labs, medians)

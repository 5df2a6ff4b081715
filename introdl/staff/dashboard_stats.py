"""The class dashboard's numbers, from what dashboard_data.py read: plain functions, no I/O.

- each hidden test's pass rate (passed / submissions that ran it), most failed first, and its
  failure messages grouped: numbers, quoted values and addresses are masked so that
  "expected 0.731, got 0.52" and "expected 0.733, got 0.61" are one group;
- who asked for many checks and is still failing (check-my-work use);
- grading timings per phase and lab: median and 95th percentile (linear interpolation between
  the closest ranks, numpy's default `percentile`).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from introdl.staff.dashboard_data import PHASES, CheckUse, Graded, Score

MESSAGE_CHARS = 300  # a grouped message is cut here (the CSV keeps the same cut)
_MASKS = (
    (re.compile(r"0x[0-9a-fA-F]+"), "0x…"),
    (re.compile(r"'[^'\n]{0,80}'|\"[^\"\n]{0,80}\""), "'…'"),
    (re.compile(r"(?<![\w.])[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?![\w])"), "#"),
    (re.compile(r"\s+"), " "),
)


def percentile(values: Sequence[float], q: float) -> float:
    """The Q-th percentile (0-100) of VALUES, interpolating linearly between the closest ranks."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def message_group(message: str) -> str:
    """The group a failure message falls in: numbers masked as #, quoted values as '…'."""
    text = message.strip().splitlines()[0] if message.strip() else ""
    for pattern, mask in _MASKS:
        text = pattern.sub(mask, text)
    text = text.strip()
    return (text[:MESSAGE_CHARS] + "…") if len(text) > MESSAGE_CHARS else (text or "(no message)")


@dataclass(frozen=True)
class TestRate:
    __test__ = False  # not a pytest class

    lab: str
    name: str
    runs: int
    passed: int
    failures: tuple[tuple[str, int], ...]  # (message group, count), most common first

    @property
    def pass_rate(self) -> float:
        return self.passed / self.runs if self.runs else 0.0


def test_rates(graded: Iterable[Graded], lab: str) -> list[TestRate]:
    """LAB's hidden tests, most failed first (lowest pass rate; then most runs; then name)."""
    runs: Counter[str] = Counter()
    passed: Counter[str] = Counter()
    failures: dict[str, Counter[str]] = {}
    for g in graded:
        if g.lab != lab:
            continue
        for t in g.tests:
            runs[t.name] += 1
            if t.status == "passed":
                passed[t.name] += 1
            elif t.status != "skipped":
                failures.setdefault(t.name, Counter())[message_group(t.output)] += 1
    rates = [
        TestRate(
            lab=lab,
            name=name,
            runs=n,
            passed=passed[name],
            failures=tuple(
                sorted(failures.get(name, Counter()).items(), key=lambda kv: (-kv[1], kv[0]))
            ),
        )
        for name, n in runs.items()
    ]
    return sorted(rates, key=lambda r: (r.pass_rate, -r.runs, r.name))


@dataclass(frozen=True)
class Timing:
    lab: str
    source: str  # 'grading' (batch grading's results.json) or 'checks' (check my work)
    phase: str
    count: int
    median: float
    p95: float


def timings(source: str, rows: Iterable[tuple[str, dict[str, float]]]) -> list[Timing]:
    """Median and 95th percentile per lab and phase of ROWS ((lab, {phase: seconds}))."""
    seconds: dict[tuple[str, str], list[float]] = {}
    for lab, phases in rows:
        for phase in PHASES:
            if phase in phases:
                seconds.setdefault((lab, phase), []).append(phases[phase])
    return [
        Timing(lab, source, phase, len(v), percentile(v, 50), percentile(v, 95))
        for (lab, phase), v in sorted(
            seconds.items(), key=lambda kv: (kv[0][0], PHASES.index(kv[0][1]))
        )
    ]


def stuck(uses: Iterable[CheckUse], lab: str) -> list[CheckUse]:
    """LAB's check use, the students still failing first, then by checks asked (most first)."""
    return sorted(
        (u for u in uses if u.lab == lab),
        key=lambda u: (not u.still_failing, -u.checks, u.student),
    )


@dataclass(frozen=True)
class Distribution:
    lab: str
    count: int
    mean: float
    median: float
    max_score: float


def distribution(scores: Sequence[Score], lab: str) -> Distribution | None:
    if not scores:
        return None
    values = [s.score for s in scores]
    return Distribution(
        lab=lab,
        count=len(values),
        mean=sum(values) / len(values),
        median=percentile(values, 50),
        max_score=max(s.max_score for s in scores),
    )

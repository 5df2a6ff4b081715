"""Benchmark: the deadline rush. A class of 300 asks for checks in the hours before a deadline.

What it replays. STUDENTS students work toward one lab's deadline. Each first asks for a check at
a time drawn from an arrival density that rises toward the deadline, p(ask x hours before it) ~
exp(-x / TAU) on the last WINDOW hours (defaults: TAU 1 h, WINDOW 6 h: 63 % of first checks in
the last hour, 86 % in the last two). After each verdict a student asks again with probability
AGAIN (default 0.6) once they have fixed something, 5-30 minutes later (uniform), if that is
still before the deadline; the service's own limits apply (5 checks a day, 60 s apart: a refused
request comes back when the service says it may). Nobody asks after the deadline.

How. The class goes through the check service's REAL queue (introdl/checkwork/fair_queue.py: its
SQLite file, its round-robin order, its limits) and the service's real ETA (eta.py, computed at
each request from the queue as it stands), on a simulated clock. A grading takes the per-check
time measured on this machine for the lab (`--seconds`, the warm request->verdict medians of
BENCHMARKS.md "Check my work"), times a jitter drawn uniformly from 0.85-1.3 (the spread measured
there). With 2 workers on this 2-core machine a grading is slower than with 1 (the two share the
cores): `--two-worker-slowdown`, 1.43 (two workers graded 1.4x as many submissions a minute as
one: BENCHMARKS.md, "Throughput with 1 and 2 local workers").
8 and 80 workers are "on paper": grading hosts of 2 cores each, so one worker's measured time.

It prints, per lab and worker count: checks asked, wait (request -> verdict) p50 / p95 / worst,
the longest queue, how many checks asked before the deadline ended after it, how far the ETA
told at the request was from the real wait (median and 95th percentile of |ETA - wait|), and how
many students were told "this check will most likely finish after the due date" at their request
and how many of those truly did; and, with each waiting student's page looked at every minute,
how many checks that ended late were warned on their page before the deadline (and how long
before it, median), and how many warned checks ended before the deadline after all. Then, at the longest queue of the 1-worker run, how long the real service takes
to build a student's check page (CheckApp.describe + the page's HTML), median and worst.

Run: .venv/bin/python benchmarks/deadline_rush.py [--students 300] [--labs lab2_mnist ...]
"""

from __future__ import annotations

import argparse
import heapq
import math
import random
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from introdl.checkwork import pages
from introdl.checkwork.app import CheckApp
from introdl.checkwork.eta import RATE_WINDOW, finish_times, late_words, overtaken
from introdl.checkwork.fair_queue import CheckQueue, Limits, OverLimit

ROOT = Path(__file__).resolve().parents[1]
HOUR = 3600.0
# Warm request -> verdict medians on this machine (BENCHMARKS.md, "Check my work"), seconds.
MEASURED = {
    "lab1_tensorflow": 1.5,
    "lab1_music": 17.6,
    "lab2_mnist": 16.7,
    "lab2_debiasing": 12.6,
    "lab3_rl": 16.7,
}


@dataclass
class Rush:
    """One replay's outcome."""

    asked: int = 0
    waits: list[float] = field(default_factory=list)
    eta_errors: list[float] = field(default_factory=list)
    late_after_deadline: int = 0
    warned: int = 0
    warned_right: int = 0
    longest_queue: int = 0
    page_ms: list[float] = field(default_factory=list)
    late_warned_leads: list[float] = field(default_factory=list)  # how long before the deadline
    false_warnings: int = 0  # said "after the due date", then ended before it


def first_asks(students: int, window: float, tau: float, rng: random.Random) -> list[float]:
    """Seconds before the deadline of each student's first check (truncated exponential)."""
    top = 1.0 - math.exp(-window / tau)
    return [-tau * math.log(1.0 - rng.random() * top) for _ in range(students)]


def replay(
    lab: str,
    students: int,
    workers: int,
    seconds: float,
    args: argparse.Namespace,
    workdir: Path,
    measure_pages: bool = False,
) -> Rush:
    rng = random.Random(args.seed)  # the same class for every worker count
    deadline = args.window * HOUR
    db = workdir / f"rush-{lab}-{workers}.sqlite"
    queue = CheckQueue(db, Limits(checks_per_day=5, cooldown_seconds=60.0))
    app = CheckApp(queue, ROOT, staff_group="staff", workers=workers) if measure_pages else None
    due = datetime.fromtimestamp(deadline, UTC)
    events: list[tuple[float, int, str, str | int]] = []
    tick = 0

    def push(t: float, kind: str, what: str | int) -> None:
        nonlocal tick
        tick += 1
        heapq.heappush(events, (t, tick, kind, what))

    t = 0.0
    while t < deadline:  # the pages refresh: every minute, each waiting student's ETA again
        push(t, "look", 0)
        t += 60.0
    for i, before in enumerate(first_asks(students, args.window * HOUR, args.tau * HOUR, rng)):
        push(deadline - before, "ask", f"st{i:03d}")
    rush = Rush()
    told: dict[int, tuple[float, bool]] = {}  # check id -> (ETA told, warned late)
    first_warned: dict[int, float] = {}  # check id -> when its page first said "after the due date"
    free = workers

    def mean(lab_: str) -> float:
        return queue.mean_seconds(lab_) or seconds

    def dispatch(now: float) -> None:
        nonlocal free
        while free > 0:
            check = queue.take(now=now)
            if check is None:
                return
            free -= 1
            push(now + seconds * rng.uniform(0.85, 1.3), "done", check.id)

    while events:
        now, _, kind, what = heapq.heappop(events)
        if kind == "look":
            order = queue.order()
            if order:
                ends = finish_times(order, queue.running(), workers, mean, now)
                for check in order:
                    end = ends[check.id]
                    if not args.plain_eta:
                        ahead = queue.arrivals_ahead(check.student, now - RATE_WINDOW)
                        end = now + overtaken(end - now, ahead, mean(lab), workers)
                    if late_words(end, due) is not None:
                        first_warned.setdefault(check.id, now)
            continue
        if kind == "ask":
            try:
                check = queue.request(str(what), lab, b"{}", now=now)
            except OverLimit as over:
                if over.next_allowed < deadline:
                    push(over.next_allowed, "ask", what)
                continue
            rush.asked += 1
            order = queue.order()
            rush.longest_queue = max(rush.longest_queue, len(order))
            end = finish_times(order, queue.running(), workers, mean, now)[check.id]
            if not args.plain_eta:
                ahead = queue.arrivals_ahead(str(what), now - RATE_WINDOW)
                end = now + overtaken(end - now, ahead, mean(lab), workers)
            warned = late_words(end, due) is not None
            told[check.id] = (end - now, warned)
            dispatch(now)
            if app is not None and len(order) >= rush.longest_queue and len(order) > 20:
                rush.page_ms = page_times(app, queue, order)
        else:
            check_id = int(what)
            queue.finish(check_id, {"score": 0.0, "max_score": 1.0, "tests": []}, now=now)
            free += 1
            done = queue.get(check_id)
            wait = done.wait or 0.0
            rush.waits.append(wait)
            eta, warned = told[check_id]
            rush.eta_errors.append(abs(eta - wait))
            late = done.requested_at < deadline <= now
            rush.late_after_deadline += late
            rush.warned += warned
            rush.warned_right += warned and late
            if late and check_id in first_warned:
                rush.late_warned_leads.append(deadline - first_warned[check_id])
            elif late and warned:
                rush.late_warned_leads.append(deadline - done.requested_at)
            if not late and check_id in first_warned:
                rush.false_warnings += 1
            again = now + rng.uniform(5 * 60, 30 * 60)
            if rng.random() < args.again and again < deadline:
                push(again, "ask", done.student)
            dispatch(now)
    queue.close()
    return rush


def page_times(app: CheckApp, queue: CheckQueue, order: list) -> list[float]:  # type: ignore[type-arg]
    """Milliseconds to build 30 students' check pages (describe + HTML) at this queue length."""
    out = []
    for check in order[:: max(1, len(order) // 30)][:30]:
        start = time.perf_counter()
        pages.check(app.describe(queue.get(check.id)))
        out.append((time.perf_counter() - start) * 1000)
    return out


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def minutes(s: float) -> str:
    return f"{s:.0f} s" if s < 120 else f"{s / 60:.1f} min"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--students", type=int, default=300)
    parser.add_argument("--labs", nargs="*", default=list(MEASURED))
    parser.add_argument("--workers", nargs="*", type=int, default=[1, 2, 8, 80])
    parser.add_argument(
        "--seconds", nargs="*", default=[], help="LAB=SECONDS overrides of the measured times"
    )
    # two local workers graded 1.4x as many submissions per minute as one (BENCHMARKS.md,
    # "Throughput with 1 and 2 local workers"): each grading took 2 / 1.4 = 1.43x as long
    parser.add_argument("--two-worker-slowdown", type=float, default=1.43)
    parser.add_argument("--window", type=float, default=6.0, help="hours before the deadline")
    parser.add_argument("--tau", type=float, default=1.0, help="hours: how fast asks rise")
    parser.add_argument("--again", type=float, default=0.6)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument(
        "--plain-eta", action="store_true", help="the ETA without the overtaking arrivals"
    )
    args = parser.parse_args(argv)
    measured = dict(MEASURED)
    for item in args.seconds:
        lab, _, value = item.partition("=")
        measured[lab] = float(value)
    print(
        f"{args.students} students, first asks ~ exp(-x/{args.tau:g} h) over the last "
        f"{args.window:g} h, ask again with p={args.again:g} 5-30 min after a verdict; "
        "limits 5 a day, 60 s apart"
    )
    print("| lab | s/check (1 worker) | workers | checks | wait p50 | p95 | worst | longest queue "
          "| ended after the deadline | ETA error at the request p50 / p95 | told late at the request "
          "(right) | late checks warned on their page before the deadline (median lead) "
          "| warned but not late |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="introdl-rush-") as tmp:
        for lab in args.labs:
            for workers in args.workers:
                per = measured[lab] * (args.two_worker_slowdown if workers == 2 else 1.0)
                measure = workers == 1 and lab == args.labs[0]
                rush = replay(lab, args.students, workers, per, args, Path(tmp), measure)
                print(
                    f"| {lab} | {measured[lab]:g} | {workers} | {rush.asked} | "
                    f"{minutes(statistics.median(rush.waits))} | {minutes(pct(rush.waits, 0.95))} | "
                    f"{minutes(max(rush.waits))} | {rush.longest_queue} | "
                    f"{rush.late_after_deadline} | {minutes(statistics.median(rush.eta_errors))} / "
                    f"{minutes(pct(rush.eta_errors, 0.95))} | {rush.warned} ({rush.warned_right}) | "
                    f"{len(rush.late_warned_leads)} of {rush.late_after_deadline} ("
                    f"{minutes(statistics.median(rush.late_warned_leads or [0.0]))}) | "
                    f"{rush.false_warnings} |",
                    flush=True,
                )
                if rush.page_ms:
                    print(
                        f"  check page at a queue of {rush.longest_queue}: median "
                        f"{statistics.median(rush.page_ms):.1f} ms, worst "
                        f"{max(rush.page_ms):.1f} ms ({len(rush.page_ms)} pages)",
                        flush=True,
                    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

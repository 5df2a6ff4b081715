"""When will a check be done, and will that be before its lab's due date?

An honest ETA replays the queue as the workers will serve it: each worker is free when its
running check is expected to end (started + the lab's recent mean grading time), and the checks
ahead, in the fair queue's order, go one by one to the worker free first, each taking its own
lab's mean. The check's ETA is when its own grading is expected to end. A lab not graded yet
counts DEFAULT_SECONDS.

The fair queue serves a student who was served less recently first, so in a rush a student's
second check is overtaken by the first checks of those who arrive after it. `overtaken` stretches
the ETA by the share of the workers those arrivals take (their rate over the last RATE_WINDOW
seconds): a wait W with a share r of the workers taken by checks that go ahead lasts W / (1 - r). When that time falls after the lab's due date, the student is told so
in plain words: the check will still run, but what counts is their submission.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from introdl.checkwork.fair_queue import Check

DEFAULT_SECONDS = 60.0  # a lab never checked yet
RATE_WINDOW = 600.0  # seconds of recent requests that tell how fast checks arrive
MOST = 0.95  # the share of the workers at which an ETA stops being finite


def overtaken(wait: float, arrivals: int, seconds: float, workers: int) -> float:
    """WAIT stretched by ARRIVALS per RATE_WINDOW of checks (SECONDS each) that will go ahead."""
    share = min(MOST, arrivals / RATE_WINDOW * seconds / max(1, workers))
    return wait / (1.0 - share)


def finish_times(
    order: Sequence[Check],
    running: Sequence[Check],
    workers: int,
    seconds: Callable[[str], float],
    now: float,
) -> dict[int, float]:
    """Expected end (a time.time() value) of every running and queued check, by id: ORDER is
    the queue in serving order, RUNNING the checks being graded, SECONDS(lab) a lab's grading time."""
    ends: dict[int, float] = {}
    free: list[float] = []
    for check in running:
        started = check.started_at if check.started_at is not None else now
        ends[check.id] = max(now + 1.0, started + seconds(check.lab))
        free.append(ends[check.id])
    free = sorted(free)[:workers] + [now] * max(0, workers - len(free))
    heapq.heapify(free)
    for check in order:
        start = heapq.heappop(free)
        ends[check.id] = start + seconds(check.lab)
        heapq.heappush(free, ends[check.id])
    return ends


def late_words(end: float, due: datetime | None) -> str | None:
    """A plain sentence when a check expected to end at END cannot finish before DUE, else None."""
    if due is None or end <= due.timestamp():
        return None
    at = datetime.fromtimestamp(end, UTC)
    return (
        f"This check will most likely finish after the due date ({due:%Y-%m-%d %H:%M} UTC; "
        f"expected at {at:%H:%M:%S} UTC). It will still run, but your submission is what counts: "
        "submit now through the Assignment List, then read this check when it is done."
    )

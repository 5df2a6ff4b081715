"""Is the ETA a student reads honest, and are they told in words when a check cannot beat the due date?"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from introdl.checkwork.eta import finish_times, late_words, overtaken
from introdl.checkwork.fair_queue import Check, CheckQueue, Limits


def check(i: int, lab: str, state: str = "queued", started: float | None = None) -> Check:
    return Check(i, f"s{i}", lab, state, float(i), started, None, None)


def test_the_queue_is_replayed_on_the_workers_each_lab_at_its_own_pace() -> None:
    seconds = {"fast": 2.0, "slow": 10.0}.__getitem__
    running = [check(1, "slow", "running", started=95.0)]  # ends at 105
    order = [check(2, "fast"), check(3, "slow"), check(4, "fast")]
    # one worker: strictly one after the other, from the running check's expected end
    assert finish_times(order, running, 1, seconds, now=100.0) == {
        1: 105.0, 2: 107.0, 3: 117.0, 4: 119.0
    }  # fmt: skip
    # two workers: the free one takes check 2 now, then 3; check 4 goes to whichever is free first
    assert finish_times(order, running, 2, seconds, now=100.0) == {
        1: 105.0, 2: 102.0, 3: 112.0, 4: 107.0
    }  # fmt: skip


def test_a_running_check_past_its_expected_time_is_never_due_in_the_past() -> None:
    ends = finish_times([check(2, "a")], [check(1, "a", "running", 0.0)], 1, lambda _: 5.0, 100.0)
    assert ends[1] >= 101.0
    assert ends[2] == ends[1] + 5.0


def test_a_check_that_ends_after_the_due_date_says_so_plainly() -> None:
    due = datetime(2026, 12, 20, 23, 59, tzinfo=UTC)
    assert late_words(due.timestamp() - 1, due) is None
    assert late_words(due.timestamp() + 100, None) is None
    words = late_words(due.timestamp() + 300, due)
    assert words is not None
    assert "after the due date (2026-12-20 23:59 UTC" in words
    assert "submit now" in words


def test_the_queue_reads_no_notebook_to_list_itself(tmp_path: Path) -> None:
    """Pages of a long queue refresh every second: listing 300 waiting checks must not read the
    300 notebooks (each up to the size limit) it holds."""
    q = CheckQueue(tmp_path / "q.sqlite", Limits(cooldown_seconds=0))
    big = b"x" * 100_000
    now = datetime.now(UTC).timestamp()
    for i in range(300):
        q.request(f"s{i}", "lab", big, now=now - timedelta(minutes=1).total_seconds())
    statements: list[str] = []
    q._db.set_trace_callback(statements.append)
    assert len(q.order()) == 300
    assert q.running() == []
    assert all("notebook" not in s and "*" not in s for s in statements), statements
    assert q.notebook(q.order()[0].id) == big


def test_checks_that_will_overtake_are_counted_and_stretch_the_eta(tmp_path: Path) -> None:
    """The fair queue serves the least recently served first: a student's second check is
    overtaken by newcomers' first checks. Are exactly those arrivals counted, and do they
    stretch the ETA by the share of the workers they take?"""
    q = CheckQueue(tmp_path / "q.sqlite", Limits(cooldown_seconds=0))
    q.request("ada", "lab", b"{}", now=100.0)
    q.finish(q.take(now=101.0).id, {}, now=110.0)  # type: ignore[union-attr]
    q.request("ada", "lab", b"{}", now=200.0)  # ada's second check
    for name, at in (("ben", 210.0), ("cy", 220.0), ("dee", 50.0)):
        q.request(name, "lab", b"{}", now=at)
    # ben and cy (never served) arrived in the window and go ahead of ada; dee came before it
    assert q.arrivals_ahead("ada", since=150.0) == 2
    assert q.arrivals_ahead("ben", since=150.0) == 0  # nobody goes ahead of a newcomer's first
    assert overtaken(60.0, 0, 10.0, 1) == 60.0
    assert overtaken(60.0, 30, 10.0, 1) == 120.0  # 30 checks of 10 s in 600 s: half the worker
    assert overtaken(60.0, 30, 10.0, 2) == 80.0
    assert overtaken(60.0, 10_000, 10.0, 1) == 60.0 / (1 - 0.95)  # bounded, never negative

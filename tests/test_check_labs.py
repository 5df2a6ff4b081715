"""Check my work with the five real labs (issue 21's acceptance): a service with one warm
worker, given checks that alternate between every lab, some looping or crashing, answers each
within its lab's grading limit plus the watchdog's margin, and leaves none running.

Real bubblewrap sandboxes, real hidden suites, TensorFlow in every kernel: slow (each check takes
10-60 s here). Submissions are the release notebooks as fetched (cheap: every exercise raises),
some with a hostile cell at the end (tests/test_check_watchdog.py: HOSTILE_CELLS). The measured
time of each check against its limit is printed (run with -s) and kept in build/logs/.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from introdl.checkwork.settings import course_settings
from introdl.checkwork.workers import Workers, grading_limit
from introdl.labs import LABS
from tests.check_driver import check_queue, serve_checks, workers_sandbox_processes
from tests.sandboxed import ROOT, needs_bwrap
from tests.test_check_watchdog import hostile_notebook

pytestmark = [needs_bwrap, pytest.mark.slow]

KINDS = ("fetched", "loops", "fetched", "exits", "fetched", "segfaults", "sleeps", "forks")


@pytest.mark.parametrize("count", [12, 50])
def test_one_worker_answers_checks_of_every_lab_in_turn(tmp_path: Path, count: int) -> None:
    """COUNT checks cycling through the five labs (a hostile notebook every other check): is each
    answered within its lab's limit plus the margin, of its own lab, and none left running?"""
    margin = float(course_settings(ROOT).watchdog_margin)
    queue = check_queue(tmp_path / "checks.sqlite")
    workers = Workers(queue, ROOT, 1, warm=1)
    plan = [(LABS[i % len(LABS)], KINDS[i % len(KINDS)]) for i in range(count)]
    if count < 50:  # the short run: one loop and one crash, the rest as fetched
        plan = [(lab, kind if kind in ("loops", "exits") and i < 8 else "fetched")
                for i, (lab, kind) in enumerate(plan)]  # fmt: skip
    asks = [(f"s{i}", lab, hostile_notebook(ROOT, lab, kind)) for i, (lab, kind) in enumerate(plan)]
    bound = sum(grading_limit(ROOT, lab) + margin for lab, _ in plan)
    checks = serve_checks(
        workers,
        queue,
        asks,
        bound=bound,
        per_check=lambda lab: grading_limit(ROOT, lab) + margin + 5,
    )
    rows = []
    for check, (lab, kind) in zip(checks, plan, strict=True):
        took = None if check.finished_at is None else check.finished_at - (check.started_at or 0)
        rows.append({"id": check.id, "lab": lab, "kind": kind, "state": check.state,
                     "took": took, "limit": grading_limit(ROOT, lab) + margin,
                     "score": (check.results or {}).get("score"),
                     "errors": (check.results or {}).get("errors")})  # fmt: skip
    log = ROOT / "build" / "logs" / f"check-labs-{count}.jsonl"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("".join(json.dumps(row) + "\n" for row in rows))
    for row in rows:
        print(f"{row['id']:3} {row['lab']:16} {row['kind']:10} {row['state']:8} "
              f"{row['took'] or -1:6.1f} s of {row['limit']:.0f} s  score {row['score']}")  # fmt: skip
    assert [r["state"] for r in rows] == ["done"] * count, rows
    assert [(c.results or {}).get("lab") for c in checks] == [lab for lab, _ in plan]
    assert all(r["took"] < r["limit"] for r in rows), rows
    assert workers_sandbox_processes() == []

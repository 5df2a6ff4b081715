"""Benchmark: how long from "check my work" to the verdict, on an empty queue and under a class load?

Runs the check service's own queue and grading workers (introdl/checkwork/fair_queue.py, workers.py:
spawned worker processes, the bwrap sandbox, the whole hidden suite, a fresh seed) on the course in
this repository, with each lab's source notebook as the student's work (full marks expected).

- latency: per lab, one check on an empty queue in a fresh worker process (cold: the worker's
  imports are paid), then REPEATS more, one at a time (warm worker process), each timed from the
  request to the stored verdict, and from the request to its first streamed result (a public
  check of the notebook or a hidden test, `first_result_seconds`). Issue 23's targets: the first
  result within 2 s, the verdict's median at most 8 s, for every lab.
- load (--load N): N students ask at once for LAB; every verdict must arrive, each the student's
  own, served round-robin; prints the median and worst wait.

Needs root (the sandbox). Method and results: BENCHMARKS.md.

Run: .venv/bin/python benchmarks/check_latency.py [--labs lab1_tensorflow] [--repeats 3]
     .venv/bin/python benchmarks/check_latency.py --load 20 --labs lab1_tensorflow
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

from introdl.checkwork.fair_queue import Check, CheckQueue, Limits
from introdl.checkwork.workers import Workers
from introdl.labs import LABS

ROOT = Path(__file__).resolve().parents[1]


async def verdicts(
    queue: CheckQueue, workers: int, asks: list[tuple[str, str]], warm: int
) -> list[Check]:
    """Ask every (student, lab) of ASKS at once; wait for all verdicts; the checks in serve order."""
    pool = Workers(queue, ROOT, workers, warm)
    done: list[Check] = []
    finished = asyncio.Event()

    def on_done(check: Check) -> None:
        done.append(check)
        if len(done) == len(asks):
            finished.set()

    pool.on_done = on_done
    for student, lab in asks:
        queue.request(student, lab, (ROOT / "source" / lab / f"{lab}.ipynb").read_bytes())
    pool.wake.set()
    task = asyncio.create_task(pool.run())
    await finished.wait()
    task.cancel()
    return done


def show(check: Check) -> str:
    r = check.results or {}
    phases = r.get("phases", {})
    return (
        f"{check.lab:16} {r.get('score', 0):g}/{r.get('max_score', 0):g}  request->first result "
        f"{r.get('first_result_seconds') or 0:.1f} s, ->verdict {check.wait:.1f} s (grading {phases.get('total') or 0:.1f} s: sandbox "
        f"{phases.get('sandbox_start') or 0:.1f}, notebook {phases.get('notebook') or 0:.1f}, "
        f"hidden {phases.get('hidden_tests') or 0:.1f})  load {os.getloadavg()[0]:.1f}"
        + (f"  errors {r['errors']}" if r.get("errors") else "")
        + slowest(r)
    )


def slowest(results: dict, n: int = 6) -> str:
    """The N slowest hidden tests and notebook cells, to see where a check's time goes."""
    tests = sorted(results.get("tests", []), key=lambda t: -t.get("duration", 0))[:n]
    cells = sorted(results.get("cells", []), key=lambda c: -c.get("duration", 0))[:n]
    return (
        "\n    tests: "
        + ", ".join(f"{t['name'].split('::')[-1]} {t['duration']:.1f}" for t in tests)
        + "\n    cells: "
        + ", ".join(f"[{c.get('code_number')}] {c['duration']:.1f}" for c in cells)
        + "".join(
            f"\n    LOST {t['name']} {t['score']}/{t['max_score']}: {t.get('output', '')[:300]!r}"
            for t in results.get("tests", [])
            if t.get("score", 0) < t.get("max_score", 0)
        )
    )


def latency(labs: list[str], repeats: int, workdir: Path, warm: int, gap: float) -> None:
    for lab in labs:
        queue = CheckQueue(
            workdir / f"{lab}.sqlite", Limits(checks_per_day=100, cooldown_seconds=0)
        )

        async def run(n: int, lab: str = lab, queue: CheckQueue = queue) -> list[Check]:
            pool = Workers(queue, ROOT, 1, warm)
            task = asyncio.create_task(pool.run())
            out: list[Check] = []
            for i in range(n):
                if i:  # checks arrive apart, as students' do: the next kernel has warmed up
                    await asyncio.sleep(gap)
                got = asyncio.Event()

                def on_done(check: Check, got: asyncio.Event = got) -> None:
                    out.append(check)
                    got.set()

                pool.on_done = on_done
                queue.request(
                    f"student{i}", lab, (ROOT / "source" / lab / f"{lab}.ipynb").read_bytes()
                )
                pool.wake.set()
                await got.wait()
                print(("first " if i == 0 else "later ") + show(out[-1]), flush=True)
            task.cancel()
            return out

        checks = asyncio.run(run(repeats + 1))
        later = [c.wait or 0.0 for c in checks[1:]]
        firsts = [(c.results or {}).get("first_result_seconds") or 0.0 for c in checks[1:]]
        print(
            f"== {lab} (warm={warm}): first check {checks[0].wait:.1f} s; then median "
            f"{statistics.median(later):.1f} s, worst {max(later):.1f} s (n={len(later)}); "
            f"first result median {statistics.median(firsts):.1f} s, worst {max(firsts):.1f} s",
            flush=True,
        )


def load(lab: str, students: int, workers: int, workdir: Path, warm: int) -> None:
    queue = CheckQueue(workdir / "load.sqlite", Limits(checks_per_day=100, cooldown_seconds=0))
    names = [f"st-load{i:02d}" for i in range(students)]
    started = time.monotonic()
    done = asyncio.run(verdicts(queue, workers, [(n, lab) for n in names], warm))
    waits = sorted(c.wait or 0.0 for c in done)
    mine = all(c.results and c.results.get("student") == c.student for c in done)
    print(
        f"== load: {students} students x {lab}, {workers} worker(s): {len(done)}/{students} "
        f"verdicts, each the student's own: {mine}; wait median {statistics.median(waits):.1f} s, "
        f"worst {waits[-1]:.1f} s; all done in {time.monotonic() - started:.1f} s; "
        f"scores {sorted({(c.results or {}).get('score') for c in done})}",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--labs", nargs="*", default=list(LABS))
    parser.add_argument("--repeats", type=int, default=3, help="warm checks after the cold one")
    parser.add_argument("--load", type=int, default=0, help="N students at once (first lab)")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--warm", type=int, default=1, help="warm kernels per worker (0: cold)")
    parser.add_argument("--gap", type=float, default=20.0, help="seconds between two checks")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("the sandbox needs root: run as root")
        return 2
    with tempfile.TemporaryDirectory(prefix="introdl-check-bench-") as tmp:
        if args.load:
            load(args.labs[0], args.load, args.workers, Path(tmp), args.warm)
        else:
            latency(args.labs, args.repeats, Path(tmp), args.warm, args.gap)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

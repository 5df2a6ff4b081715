"""Benchmark: how long does grading one submission of each lab take, and is it within its limit?

For each lab it grades, through the real engine (`introdl grade-notebook`'s code path: bwrap
sandbox, the notebook at the smoke budget, the whole hidden suite), the source notebook (full
marks expected) and the untouched release (zero expected), REPEATS times each, and prints per run
the score, the phases (sandbox start, notebook, hidden tests, total) and the load average, then
the median and worst total against the lab's limit from its issue. Method and results: BENCHMARKS.md.

Run: .venv/bin/python benchmarks/grading_time.py [--labs lab1_music lab2_mnist] [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

from introdl.grading.commands.grade_notebook import grade_notebook

ROOT = Path(__file__).resolve().parents[1]
# Seconds allowed to grade one submission, from each lab's issue (lab1_tensorflow has none).
LIMITS = {
    "lab1_tensorflow": None,
    "lab1_music": 180.0,
    "lab2_mnist": 120.0,
    "lab2_debiasing": 180.0,
    "lab3_rl": 180.0,
}


def one_run(lab: str, kind: str, seed: int) -> dict[str, float]:
    path = ROOT / kind / lab / f"{lab}.ipynb"
    load = os.getloadavg()[0]
    data = grade_notebook(path=str(path), lab=lab, backend="bwrap", seed=seed).results
    score = sum(t["score"] for t in data["tests"])
    top = sum(t["max_score"] for t in data["tests"])
    phases = data["phases"]
    print(
        f"{lab:16} {kind:7} seed {seed}: {score:g}/{top:g}  "
        + "  ".join(f"{k} {v if v is None else round(v, 1)}" for k, v in phases.items())
        + f"  load {load:.1f}",
        flush=True,
    )
    if data["errors"]:
        print(f"  errors: {data['errors']}", flush=True)
    return {"score": score, "top": top, "total": float(phases["total"] or 0.0)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--labs", nargs="*", default=sorted(p.name for p in (ROOT / "source").iterdir())
    )
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)
    os.environ.setdefault("INTRODL_COURSE_ROOT", str(ROOT))
    failed = False
    for lab in args.labs:
        for kind, expect_full in (("source", True), ("release", False)):
            runs = [one_run(lab, kind, seed) for seed in range(1, args.repeats + 1)]
            totals = [r["total"] for r in runs]
            limit = LIMITS.get(lab)
            right = all((r["score"] == r["top"]) if expect_full else r["score"] == 0 for r in runs)
            within = limit is None or max(totals) <= limit
            failed |= not (right and within)
            print(
                f"{lab:16} {kind:7} median {statistics.median(totals):.1f} s, worst "
                f"{max(totals):.1f} s, limit {limit or '-'} s: "
                f"{'scores as expected' if right else 'UNEXPECTED SCORES'}, "
                f"{'within the limit' if within else 'OVER THE LIMIT'}",
                flush=True,
            )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

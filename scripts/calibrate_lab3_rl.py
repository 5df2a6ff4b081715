#!/usr/bin/env python3
"""Many-seed calibration of lab3_rl's hidden tests; results go in grader_tests/lab3_rl/CALIBRATION.md.

    # the reward-curve test's training, in process (reference and the variants it must fail)
    PYTHONPATH=$PWD .venv/bin/python scripts/calibrate_lab3_rl.py curve --seeds 20
    PYTHONPATH=$PWD .venv/bin/python scripts/calibrate_lab3_rl.py curve --seeds 5 --variant wrong-loss-sign-flipped
    # whole gradings for real (bwrap): the source notebook on several grading seeds, and each
    # wrong variant against the tests that must catch it
    PYTHONPATH=$PWD .venv/bin/python scripts/calibrate_lab3_rl.py suite --seeds 5

One JSON line per run, then a summary per variant. The logic is in tests/fixtures/lab3_rl/calibration.py.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from grader_tests.lab3_rl import curves
from tests.fixtures.lab3_rl import calibration
from tests.fixtures.lab3_rl.variants import Variant, variants


def emit(row: dict[str, Any], out: Path | None) -> None:
    print(json.dumps(row), flush=True)
    if out is not None:
        with out.open("a") as fh:
            fh.write(json.dumps(row) + "\n")


def curve(names: list[str], seeds: list[int], training: dict[str, Any], out: Path | None) -> None:
    by_name = {v.name: v for v in variants()}
    names = names or [
        "reference",
        *[n for n, v in by_name.items() if "cartpole_training" in v.caught_by],
    ]
    print(f"training settings: {training}", flush=True)
    for name in names:
        variant = None if name == "reference" else by_name[name]
        runs = []
        for seed in seeds:
            row = {"variant": name, **calibration.curve_run(variant, seed, training)}
            runs.append(row)
            emit(row, out)
        learned = [r for r in runs if r.get("learned")]
        evals = [r["eval_mean"] for r in runs if "eval_mean" in r]
        eps = [r["episodes"] for r in learned]
        cpu = [r["cpu_s"] for r in runs if "cpu_s" in r]
        print(
            f"== {name}: learned {len(learned)}/{len(runs)}; episodes to target "
            f"{min(eps, default=0)}-{max(eps, default=0)} (median {np.median(eps) if eps else 0:.0f}); "
            f"best mean {min(r.get('best', 0) for r in runs):.0f}-{max(r.get('best', 0) for r in runs):.0f}; "
            f"eval mean {min(evals, default=0):.0f}-{max(evals, default=0):.0f} "
            f"(>= {curves.EVAL_MEAN_AT_LEAST:.0f} in {sum(e >= curves.EVAL_MEAN_AT_LEAST for e in evals)}/{len(evals)}); "
            f"cpu s/run median {np.median(cpu) if cpu else 0:.1f}, max {max(cpu, default=0):.1f}",
            flush=True,
        )


def suite(names: list[str], seeds: list[int], out: Path | None, only: tuple[str, ...] = ()) -> None:
    chosen: list[Variant | None] = []
    for name in names or ["reference", *[v.name for v in variants()]]:
        chosen.append(None if name == "reference" else {v.name: v for v in variants()}[name])
    for variant in chosen:
        name = "reference" if variant is None else variant.name
        selected = only or (variant.caught_by if variant is not None and variant.wrong else ())
        failures: Counter[str] = Counter()
        walls = []
        for seed in seeds:
            row = {"variant": name, **calibration.suite_run(variant, seed, only=selected)}
            emit(row, out)
            walls.append(row["wall_s"])
            failures.update(n for n, t in row["tests"].items() if t["status"] != "passed")
        print(
            f"== {name}: {len(seeds)} gradings, {row['max_score']:g} points graded; failed tests: "
            f"{dict(failures) or 'none'}; wall s {min(walls):.0f}-{max(walls):.0f}",
            flush=True,
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("mode", choices=["curve", "suite"])
    parser.add_argument("--seeds", type=int, default=10, help="runs per variant")
    parser.add_argument("--first-seed", type=int, default=1000)
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        help="variant name (repeatable); 'reference' is the source notebook",
    )
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="curve: override TRAINING"
    )
    parser.add_argument(
        "--only", action="append", default=[], help="suite: grade ids or test names to run"
    )
    parser.add_argument("--json", type=Path, help="append one JSON line per run to this file")
    args = parser.parse_args(argv)
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    if args.mode == "curve":
        training = dict(curves.TRAINING)
        for item in args.set:
            key, value = item.split("=", 1)
            training[key] = type(training[key])(value)
        curve(args.variant, seeds, training, args.json)
    else:
        suite(args.variant, seeds, args.json, tuple(args.only))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

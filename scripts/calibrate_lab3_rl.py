#!/usr/bin/env python3
"""Many-seed calibration of the CartPole reward-curve test of lab3_rl (see grader_tests/lab3_rl/CALIBRATION.md).

Runs the grader's own training loop (grader_tests/lab3_rl/in_kernel.py, the code the hidden test
sends into the kernel) in this process on the source notebook's solution and on known-wrong
variants, with many seeds, judges each curve as the hidden test does, and plays each trained
policy in fresh environments. Prints one line per run and a summary per variant.

    PYTHONPATH=$PWD .venv/bin/python scripts/calibrate_lab3_rl.py --seeds 20
    PYTHONPATH=$PWD .venv/bin/python scripts/calibrate_lab3_rl.py --seeds 5 --variant wrong-loss-sign-flipped
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from grader_tests.lab3_rl import curves  # noqa: E402
from tests.fixtures.lab3_rl import variants as fixtures  # noqa: E402


def run_one(
    variant: fixtures.Variant | None, seed: int, training: dict[str, Any]
) -> dict[str, Any]:
    """Train, judge and play one agent; the numbers the hidden test looks at."""
    module = curves.load_in_process(fixtures.namespace(variant))
    cpu, wall = time.process_time(), time.monotonic()
    try:
        result = module.train_cartpole("agent", seed, **training)
    except Exception as err:  # a wrong variant may crash the loop: that also fails the test
        return {"seed": seed, "error": f"{type(err).__name__}: {err}"[:200], "learned": False}
    cpu, wall = time.process_time() - cpu, time.monotonic() - wall
    verdict = curves.judge_curve(result["rewards"], result["stopped"])
    eval_seeds = [seed * 7919 + k for k in range(curves.EVAL_EPISODES)]
    played = curves.play(lambda obs: module.act(["agent"], obs), 1, eval_seeds)
    return {
        "seed": seed,
        "learned": verdict.learned,
        "start": round(verdict.start, 1),
        "best": round(verdict.best, 1),
        "episodes": verdict.episodes,
        "stopped": result["stopped"],
        "eval_mean": round(float(played.mean()), 1),
        "cpu_s": round(cpu, 1),
        "wall_s": round(wall, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=10, help="runs per variant")
    parser.add_argument("--first-seed", type=int, default=1000)
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        help="variant name (repeatable); 'reference' is the source notebook; default: all",
    )
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override a TRAINING entry"
    )
    parser.add_argument("--json", type=Path, help="append one JSON line per run to this file")
    args = parser.parse_args(argv)

    training = dict(curves.TRAINING)
    for item in args.set:
        key, value = item.split("=", 1)
        training[key] = type(training[key])(value)
    by_name = {v.name: v for v in fixtures.variants()}
    names = args.variant or [
        "reference",
        *[n for n, v in by_name.items() if "cartpole_training" in v.caught_by],
    ]
    print(f"training settings: {training}", flush=True)
    for name in names:
        variant = None if name == "reference" else by_name[name]
        runs = []
        for k in range(args.seeds):
            row = run_one(variant, args.first_seed + k, training)
            row["variant"] = name
            runs.append(row)
            print(json.dumps(row), flush=True)
            if args.json:
                with args.json.open("a") as out:
                    out.write(json.dumps(row) + "\n")
        learned = [r for r in runs if r.get("learned")]
        evals = [r["eval_mean"] for r in runs if "eval_mean" in r]
        eps = [r["episodes"] for r in learned]
        print(
            f"== {name}: learned {len(learned)}/{len(runs)}; episodes to target "
            f"{min(eps, default=0)}-{max(eps, default=0)} (median {np.median(eps) if eps else 0:.0f}); "
            f"eval mean {min(evals, default=0):.0f}-{max(evals, default=0):.0f}; "
            f"cpu s/run median {np.median([r.get('cpu_s', 0) for r in runs]):.1f}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

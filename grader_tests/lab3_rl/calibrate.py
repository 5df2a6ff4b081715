"""Many-seed calibration of lab3_rl's hidden tests; results go in grader_tests/lab3_rl/CALIBRATION.md.

    # the reward-curve test's training, in process (reference and the variants it must fail)
    make calibrate LAB=lab3_rl ARGS="curve --seeds 20"
    make calibrate LAB=lab3_rl ARGS="curve --seeds 5 --variant wrong-loss-sign-flipped"
    # whole gradings for real (bwrap): the source notebook on several grading seeds, and each
    # wrong variant against the tests that must catch it
    make calibrate LAB=lab3_rl ARGS="suite --seeds 5"

Run by the kit's one runner (introdl/grading/authoring/calibrate.py), which reads MODES below;
`--set KEY=VALUE` overrides curves.TRAINING in `curve` (floors as JSON), `--set only=a,b` picks
the tests in `suite`, `--json FILE` appends one JSON line per run. Each run is printed as one JSON
line, then a summary per variant. tests/test_lab3_rl_calibration.py (`make test-slow`) reuses
`curve_run` and `suite_run`.

Many-seed calibration of lab3_rl's hidden tests (numbers in grader_tests/lab3_rl/CALIBRATION.md).

Two kinds of runs:

- `curve_run`: the reward-curve test's training, in this process. It runs the grader's own loop
  (grader_tests/lab3_rl/in_kernel.py, the code the hidden test sends into the kernel) on the
  source notebook's solution or a variant, judges the curve as the hidden test does
  (`curves.judge_curve`) and plays the trained policy as the hidden test does (`in_kernel.evaluate`,
  replayed in fresh environments by `curves.replay`).
  Cheap: the many-seed statistics of the threshold come from these.
- `suite_run`: one real grading (bwrap sandbox, kernel, hidden tests) of the source notebook or a
  variant's lean notebook, with a given grading seed; per-test outcomes and times. These show
  that every other test (sampling frequencies, the Pong learning test, ...) passes the reference
  on every seed and fails the variants, end to end.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

from grader_tests.lab3_rl import curves
from introdl.grading.authoring import (
    Calibration,
    Lab,
    Variant,
    grade_file,
    lean_notebook,
    namespace,
    run_calibration,
    submission_notebook,
    variants,
)

LAB = "lab3_rl"
KIT = Lab(LAB, Path(__file__).resolve().parents[2])  # this course's lab3_rl
FIRST_SEED = 1000


MEANS_AT = (200, 300, 400, 480, 560, 640, 720, 800)  # episodes at which runs report the mean


def curve_run(
    variant: Variant | None, seed: int, training: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Train, judge and play one CartPole agent; the numbers the hidden tests look at.

    The agent trains WITHOUT the floors (a run stopped at a floor is this run's prefix), so one
    run gives the verdict with the floors ("learned", as the hidden test judges) and without
    them ("learned_without_floors", the rule before them), the episodes each needs to decide,
    and the WINDOW-episode mean at MEANS_AT."""
    settings = dict(curves.TRAINING if training is None else training)
    floors = settings.pop("floors", [])
    module = curves.load_in_process(namespace(KIT, variant))
    try:
        result = module.train_cartpole("agent", seed, **settings)
    except Exception as err:  # a wrong variant may crash the loop: that fails the test too
        return {"seed": seed, "learned": False, "error": f"{type(err).__name__}: {err}"[:200]}
    verdict = curves.judge_curve(result["rewards"], result["stopped"], floors=floors)
    before = curves.judge_curve(result["rewards"], result["stopped"], floors=[])
    eval_seeds = [seed * 7919 + k for k in range(curves.EVAL_EPISODES)]
    eval_cpu, eval_wall = time.process_time(), time.monotonic()
    # played to the end (no bar) as the hidden test plays it (in the "kernel", replayed here):
    # the mean is the whole evaluation's, its CPU an upper bound
    answer = module.evaluate(
        ["agent"],
        eval_seeds,
        max_steps=curves.EVAL_MAX_STEPS,
        bar=None,
        cpu_seconds=curves.EVAL_CPU_SECONDS,
        wall_seconds=curves.EVAL_WALL_SECONDS,
    )
    evaluation = curves.replay(answer, 1, eval_seeds)
    eval_cpu, eval_wall = time.process_time() - eval_cpu, time.monotonic() - eval_wall
    played = evaluation.totals
    window = int(settings["window"])
    rewards = np.asarray(result["rewards"], dtype=np.float64)
    return {
        "seed": seed,
        "learned": verdict.learned,
        "learned_without_floors": before.learned,
        "start": round(verdict.start, 1),
        "best": round(verdict.best, 1),
        "episodes": verdict.episodes,
        "episodes_without_floors": before.episodes,
        "stopped": result["stopped"],
        "means": {
            at: round(float(rewards[at - window : at].mean()), 1)
            for at in MEANS_AT
            if at <= rewards.size
        },
        "eval_mean": round(float(played.mean()), 1),
        "eval_passes": bool(played.mean() >= curves.EVAL_MEAN_AT_LEAST),
        "eval_stopped": "cpu"
        if evaluation.out_of_time
        else "wall"
        if evaluation.host_too_slow
        else "",
        # the training's CPU and wall seconds as the kernel's loop counts them (in_kernel.Allowance)
        "cpu_s": round(result["cpu_seconds"], 2),
        "wall_s": round(result["seconds"], 2),
        # the evaluation's, in this process (the policy and the grader's environments together)
        "eval_cpu_s": round(eval_cpu, 2),
        "eval_wall_s": round(eval_wall, 2),
        "load": round(os.getloadavg()[0], 1),
    }


def suite_run(
    variant: Variant | None, seed: int, only: tuple[str, ...] = (), backend: str = "bwrap"
) -> dict[str, Any]:
    """Grade the source notebook (VARIANT None) or a variant's lean notebook for real."""
    nb = submission_notebook(KIT, None) if variant is None else lean_notebook(KIT, variant)
    started = time.monotonic()
    result = grade_file(KIT, nb, seed=seed, only=only, backend=backend)
    wall = time.monotonic() - started
    data: dict[str, Any] = result.to_json()
    return {
        "seed": seed,
        "score": data["score"],
        "max_score": sum(t["max_score"] for t in data["tests"]),
        "wall_s": round(wall, 1),
        "phases": data["phases"],
        "errors": data["errors"],
        "tests": {
            t["name"]: {
                "grade_id": t["grade_id"],
                "status": t["status"],
                "duration": round(t["duration"], 1),
                "output": t["output"],
            }
            for t in data["tests"]
        },
    }


def emit(row: dict[str, Any], out: Path | None) -> None:
    print(json.dumps(row), flush=True)
    if out is not None:
        with out.open("a") as fh:
            fh.write(json.dumps(row) + "\n")


def curve(
    names: list[str], seeds: list[int], training: dict[str, Any], out: Path | None
) -> list[str]:
    by_name = {v.name: v for v in variants(KIT)}
    names = names or [
        "reference",
        *[n for n, v in by_name.items() if "cartpole_training" in v.caught_by],
    ]
    print(f"training settings: {training}", flush=True)
    problems = []
    for name in names:
        variant = None if name == "reference" else by_name[name]
        runs = []
        for seed in seeds:
            row = {"variant": name, **curve_run(variant, seed, training)}
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
        flips = [r["seed"] for r in runs if r.get("learned") != r.get("learned_without_floors")]
        decided = [r["episodes"] for r in runs if "episodes" in r]
        before = [r["episodes_without_floors"] for r in runs if "episodes" in r]
        print(
            f"   floors {training.get('floors')}: verdict changed on seeds {flips or 'none'}; "
            f"episodes to the verdict median {np.median(decided) if decided else 0:.0f} "
            f"(without floors {np.median(before) if before else 0:.0f})",
            flush=True,
        )
        should_learn = variant is None or not variant.wrong
        problems += [
            f"{name} seed {r['seed']}: learned {bool(r.get('learned'))}"
            for r in runs
            if bool(r.get("learned")) != should_learn
        ]
    return problems


def suite(
    names: list[str], seeds: list[int], out: Path | None, only: tuple[str, ...] = ()
) -> list[str]:
    chosen: list[Variant | None] = []
    for name in names or ["reference", *[v.name for v in variants(KIT)]]:
        chosen.append(None if name == "reference" else {v.name: v for v in variants(KIT)}[name])
    problems = []
    for variant in chosen:
        name = "reference" if variant is None else variant.name
        selected = only or (variant.caught_by if variant is not None and variant.wrong else ())
        failures: Counter[str] = Counter()
        walls = []
        for seed in seeds:
            row = {"variant": name, **suite_run(variant, seed, only=selected)}
            emit(row, out)
            walls.append(row["wall_s"])
            failed = {n for n, t in row["tests"].items() if t["status"] != "passed"}
            failures.update(failed)
            if variant is None or not variant.wrong:
                problems += [f"{name} seed {seed} failed {sorted(failed)}"] if failed else []
            elif not failed:
                problems.append(f"{name} seed {seed} passed {list(selected)}")
        print(
            f"== {name}: {len(seeds)} gradings, {row['max_score']:g} points graded; failed tests: "
            f"{dict(failures) or 'none'}; wall s {min(walls):.0f}-{max(walls):.0f}",
            flush=True,
        )


def curve_mode(cal: Calibration) -> list[str]:
    """The reward-curve test's training in this process, for the reference and the variants it
    must fail (or those asked for); `--set KEY=VALUE` overrides curves.TRAINING."""
    training = dict(curves.TRAINING)
    for key, value in cal.settings.items():
        training[key] = json.loads(value) if key == "floors" else type(training[key])(value)
    return curve(cal.names, cal.seeds, training, cal.out)


def suite_mode(cal: Calibration) -> list[str]:
    """Whole gradings for real; `--set only=a,b` picks the tests (default: for a wrong variant,
    the tests that must catch it; for the reference and correct work, all of them)."""
    only = tuple(s for s in cal.settings.get("only", "").split(",") if s)
    return suite(cal.names, cal.seeds, cal.out, only)


MODES = {"curve": curve_mode, "suite": suite_mode}

if __name__ == "__main__":
    raise SystemExit(run_calibration(LAB))

"""Hidden tests for lab3_rl, 3.7: the grader trains the student's CartPole agent and judges its
reward curve, then scores the trained policies in its own environments. Never released.

The training loop runs inside the kernel (in_kernel.py) with the grader's seeds and CPU-second
caps (curves.TRAINING); so does the evaluation's play, whose actions are replayed and scored here
(curves.py). The thresholds and their calibration: CALIBRATION.md. The other tests of the lab:
test_lab3_rl.py, test_lab3_rl_pong.py.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest

from grader_tests.lab3_rl import curves
from grader_tests.lab3_rl.curves import RL
from introdl.grading.authoring import (
    HostTooSlow,
    as_array,
    assert_true,
)

SEEDED_AS = "test_lab3_rl.py"  # split from it: each test keeps the draws it had there
TRAINED: dict[str, Any] = {}  # the CartPole agents trained by the reward-curve test
HOST_TOO_SLOW: list[str] = []  # why the reward-curve test ended as an error, if it did


# --- 3.7 CartPole training, judged on reward curves ------------------------------------------
@pytest.mark.trains
@pytest.mark.grade("cartpole_training", points=2.5)
@pytest.mark.budget(seconds=100)
def test_cartpole_reward_curve_rises_past_target(kernel: Any, seed: int) -> None:
    window, target = curves.TRAINING["window"], curves.TRAINING["target"]
    started = time.monotonic()
    cpu_budget = cpu_left = curves.TRAINING_CPU_SECONDS  # kernel CPU seconds: what decides
    verdicts = []
    for k in range(curves.SEEDS):
        if curves.seeds_verdict([v.learned for v in verdicts]) is not None:
            break  # decided: the first seed learned, or one of the next two did not
        if cpu_left < 5:
            break
        wall_left = curves.TRAINING_WALL_SECONDS - (time.monotonic() - started)
        if wall_left <= 0:
            raise host_too_slow(
                "the CartPole training", curves.TRAINING_WALL_SECONDS, cpu_left, cpu_budget
            )
        agent = f"cartpole_{k}"
        settings = {
            **curves.TRAINING,
            "cpu_seconds": min(curves.TRAINING["cpu_seconds"], cpu_left),
            "wall_seconds": min(curves.TRAINING["wall_seconds"], wall_left),
        }
        result = kernel.call(
            f"{RL}.train_cartpole",
            agent,
            (seed + 104729 * k) % 2**31,
            **settings,
            timeout=settings["wall_seconds"] + 30,
        )
        assert_true(
            isinstance(result, dict) and isinstance(result.get("rewards"), list),
            "the grader's CartPole training returned no reward curve",
        )
        spent = result.get("cpu_seconds")
        cpu_left -= float(spent) if isinstance(spent, int | float) else cpu_left
        if result.get("stopped") == "wall":
            raise host_too_slow(
                "the CartPole training", curves.TRAINING_WALL_SECONDS, cpu_left, cpu_budget
            )
        rewards = as_array(result["rewards"], "the episode rewards")
        verdict = curves.judge_curve(rewards, str(result.get("stopped")))
        verdicts.append(verdict)
        TRAINED[agent] = verdict
    details = "; ".join(f"seed {i + 1}: {v.reason}" for i, v in enumerate(verdicts))
    slow = ""
    if any("CPU time ran out" in v.reason for v in verdicts) or cpu_left < 5:
        slow = (
            f" Training ran out of CPU time ({curves.TRAINING['cpu_seconds']:.0f} s per seed, "
            f"{curves.TRAINING_CPU_SECONDS:.0f} s in all; the grader's solution needs a few): "
            "choose_action is called at every step, so it must be fast (call "
            "model(observation), never model.predict)."
        )
    assert_true(
        bool(curves.seeds_verdict([v.learned for v in verdicts])),
        f"The grader trained your CartPole agent (create_cartpole_model, choose_action, "
        f"discount_rewards, compute_loss, train_step) with its own seeds; the mean reward over "
        f"{window} episodes should rise to {target:.0f} on the first seed, or else on both of "
        f"the next two. {details}.{slow}",
    )


def host_too_slow(what: str, seconds: float, cpu_left: float, cpu_budget: float) -> HostTooSlow:
    """The error of a test whose wall-clock safety net ran out before its CPU or step budget."""
    used = max(0.0, cpu_budget - cpu_left)
    message = (
        f"{what} did not finish within the grader's {seconds:.0f}-second safety net although "
        f"your code had used only {used:.0f} of its {cpu_budget:.0f} CPU seconds: the grading "
        "machine was too busy. This is not a verdict on your code; check again later."
    )
    HOST_TOO_SLOW.append(message)
    return HostTooSlow(message)


@pytest.mark.trains
@pytest.mark.grade("cartpole_training", points=1.5)
@pytest.mark.budget(seconds=50)
def test_trained_cartpole_policy_balances_in_graders_environments(
    kernel: Any, rng: np.random.Generator
) -> None:
    agents = sorted(TRAINED)
    if not agents and HOST_TOO_SLOW:
        raise HostTooSlow(f"No trained agent to evaluate: {HOST_TOO_SLOW[0]}")
    assert_true(
        bool(agents),
        "no trained CartPole agent to evaluate: the grader's training of your agent did not run "
        "(see the reward-curve test)",
    )
    seeds = [int(s) for s in rng.integers(0, 2**31 - 1, size=curves.EVAL_EPISODES)]
    # played in the kernel in one door call; the actions replayed in the grader's environments
    answer = kernel.call(
        f"{RL}.evaluate",
        agents,
        seeds,
        max_steps=curves.EVAL_MAX_STEPS,
        bar=curves.EVAL_MEAN_AT_LEAST,
        cpu_seconds=curves.EVAL_CPU_SECONDS,
        wall_seconds=curves.EVAL_WALL_SECONDS,
        timeout=curves.EVAL_WALL_SECONDS + 5,
    )
    played = curves.replay(answer, len(agents), seeds, bar=curves.EVAL_MEAN_AT_LEAST)
    if played.host_too_slow:
        spent = answer.get("cpu_seconds")
        used = float(spent) if isinstance(spent, int | float) else 0.0
        raise host_too_slow(
            "the evaluation of your trained agents",
            curves.EVAL_WALL_SECONDS,
            curves.EVAL_CPU_SECONDS - used,
            curves.EVAL_CPU_SECONDS,
        )
    mean = float(played.totals.mean())
    slow = (
        f" The evaluation stopped after {curves.EVAL_CPU_SECONDS:.0f} s of CPU time in your "
        "kernel: choose_action must be fast (call model(observation), never model.predict)."
        if played.out_of_time
        else ""
    )
    # Stopped once the verdict was sure (below the bar): the mean could have ended at best_mean.
    sure = not played.out_of_time and played.best_mean > mean
    kept = f"at most {played.best_mean:.0f}" if sure else f"{mean:.0f}"
    assert_true(
        mean >= curves.EVAL_MEAN_AT_LEAST,
        f"The agents the grader trained from your code kept the pole up {kept} steps on "
        f"average in the grader's own environments (episodes cut at {curves.EVAL_MAX_STEPS} "
        f"steps); at least {curves.EVAL_MEAN_AT_LEAST:.0f} is expected of a policy that "
        f"learned.{slow}",
    )

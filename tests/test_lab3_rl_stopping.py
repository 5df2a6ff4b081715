"""Do lab3_rl's CartPole tests stop as soon as their verdict is sure, without changing it?

The evaluation (`curves.play` with a bar) and the reward curve (`curves.judge_curve` with the
looks of `curves.TRAINING`) are checked here on policies and curves built in this process, no
kernel and no TensorFlow; the many-seed calibration of the looks is in
grader_tests/lab3_rl/CALIBRATION.md ("Stopping early").
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from grader_tests.lab3_rl import curves

Policy = Callable[[np.ndarray], np.ndarray]


def balancer(obs: np.ndarray) -> np.ndarray:
    """Push toward the side the pole falls to: keeps CartPole up for 200 steps and more."""
    return (40 * obs[..., 2] + 10 * obs[..., 3] > 0).astype(np.int64)


def always_left(obs: np.ndarray) -> np.ndarray:
    return np.zeros(obs.shape[:-1], dtype=np.int64)


def counted(policy: Policy) -> tuple[Policy, list[int]]:
    calls: list[int] = []

    def act(obs: np.ndarray) -> np.ndarray:
        calls.append(1)
        return policy(obs)

    return act, calls


def noisy(rng: np.random.Generator, good: float) -> Policy:
    """The balancer, but a random action with probability 1 - GOOD (a middling agent)."""

    def act(obs: np.ndarray) -> np.ndarray:
        random = rng.integers(0, 2, size=obs.shape[:-1])
        return np.where(rng.random(obs.shape[:-1]) < good, balancer(obs), random)

    return act


def test_evaluation_of_a_good_agent_stops_once_the_pass_is_sure() -> None:
    """Does the evaluation stop once the mean reward has reached the bar (rewards only grow),
    well before the episodes' 200 steps, and still pass?"""
    seeds = list(range(8))
    full = curves.play(balancer, 2, seeds)
    act, calls = counted(balancer)
    early = curves.play(act, 2, seeds, bar=curves.EVAL_MEAN_AT_LEAST)
    assert full.totals.mean() == curves.EVAL_MAX_STEPS
    assert full.steps == curves.EVAL_MAX_STEPS
    assert early.totals.mean() >= curves.EVAL_MEAN_AT_LEAST
    assert early.steps == len(calls) == curves.EVAL_MEAN_AT_LEAST, "stops at the bar's step"
    assert early.best_mean == curves.EVAL_MAX_STEPS


def test_evaluation_of_a_bad_agent_stops_once_the_bar_is_out_of_reach() -> None:
    """Does the evaluation stop, failing, once even episodes lasting to the cut could not lift
    the mean to the bar, and report the best mean that was still possible?"""
    seeds = list(range(8))
    mixed = lambda obs: np.stack([balancer(obs[0]), always_left(obs[1]), always_left(obs[2])])  # noqa: E731
    full = curves.play(mixed, 3, seeds)
    act, calls = counted(mixed)
    early = curves.play(act, 3, seeds, bar=curves.EVAL_MEAN_AT_LEAST)
    assert full.totals.mean() < curves.EVAL_MEAN_AT_LEAST
    assert full.totals.mean() <= early.best_mean < curves.EVAL_MEAN_AT_LEAST
    assert len(calls) == early.steps < 20, "the falling agents decide it within their episodes"


@pytest.mark.parametrize("good", [0.6, 0.75, 0.85, 0.95])
def test_evaluation_stopped_early_gives_the_verdict_of_the_whole_evaluation(good: float) -> None:
    """Over middling agents whose mean lands on either side of the bar, is the verdict with early
    stopping always the verdict of the evaluation played to the end (same random draws)?"""
    for seed in range(4):
        seeds = [seed * 100 + k for k in range(curves.EVAL_EPISODES)]
        full = curves.play(noisy(np.random.default_rng(seed), good), 2, seeds)
        early = curves.play(
            noisy(np.random.default_rng(seed), good), 2, seeds, bar=curves.EVAL_MEAN_AT_LEAST
        )
        passes = full.totals.mean() >= curves.EVAL_MEAN_AT_LEAST
        assert (early.totals.mean() >= curves.EVAL_MEAN_AT_LEAST) == passes, (good, seed)
        assert early.totals.mean() <= full.totals.mean() <= early.best_mean
        assert early.steps <= full.steps

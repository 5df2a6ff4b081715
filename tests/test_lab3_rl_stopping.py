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

from introdl.grading.authoring import Lab
from tests.conftest import ROOT

curves = Lab.named("lab3_rl", ROOT).module("curves")

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


FLOORS = [[300, 35.0], [480, 100.0]]


def curve(*pieces: tuple[int, float]) -> list[float]:
    """Episode rewards: N episodes of reward R for each (N, R)."""
    return [r for n, r in pieces for _ in range(n)]


def test_a_curve_below_the_floor_fails_at_the_look_with_words() -> None:
    """Does a seed still below a look's floor fail there, saying after how many episodes, how
    high it got and what a learning agent has by then?"""
    verdict = curves.judge_curve(curve((300, 22)), "floor", FLOORS)
    assert not verdict.learned
    assert verdict.episodes == 300
    assert "only 22 after 300 episodes" in verdict.reason
    assert "above 35" in verdict.reason
    later = curves.judge_curve(curve((300, 60), (180, 90)), "floor", FLOORS)
    assert not later.learned
    assert later.episodes == 480


def test_a_curve_above_every_floor_is_judged_by_the_target_as_before() -> None:
    """Is a seed that stays above the floors judged by today's rule: learned when it reaches
    the target within the budget, failed otherwise?"""
    learned = curves.judge_curve(curve((300, 60), (180, 120), (20, 200)), "target", FLOORS)
    assert learned.learned
    short = curves.judge_curve(curve((300, 60), (500, 150)), "episodes", FLOORS)
    assert not short.learned
    assert "short of 195" in short.reason


def test_the_target_reached_before_a_floor_decides_first() -> None:
    """Does a seed that reached the target before a look stay learned, even when a later window
    (played by a kernel that went on) is below that look's floor?"""
    verdict = curves.judge_curve(curve((40, 20), (20, 200), (340, 10)), "target", FLOORS)
    assert verdict.learned


def test_floors_never_turn_a_failure_into_a_pass() -> None:
    """Can the floors only fail a seed (no false pass from the looks), on random curves?"""
    rng = np.random.default_rng(0)
    for _ in range(300):
        n = int(rng.integers(20, 801))
        rewards = np.minimum(rng.gamma(2.0, rng.uniform(5, 110), size=n), 500)
        with_floors = curves.judge_curve(rewards, "episodes", FLOORS)
        without = curves.judge_curve(rewards, "episodes", [])
        assert not (with_floors.learned and not without.learned)


def test_a_curve_cut_short_is_judged_on_what_was_played() -> None:
    """Does a kernel that stops before a look and claims a pass get nothing from it?"""
    verdict = curves.judge_curve(curve((20, 20), (150, 190)), "floor", FLOORS)
    assert not verdict.learned


def test_the_reward_curve_test_has_floors_inside_its_budget() -> None:
    """Does the hidden test stop seeds that cannot learn any more, at looks in order inside the
    episode budget, with floors below the target (values: CALIBRATION.md)?"""
    floors = curves.TRAINING["floors"]
    assert floors, "the reward-curve test should stop seeds that cannot learn any more"
    assert [at for at, _ in floors] == sorted({at for at, _ in floors})
    assert all(
        curves.TRAINING["window"] <= at < curves.TRAINING["max_episodes"] for at, _ in floors
    )
    assert all(0 < floor < curves.TRAINING["target"] for _, floor in floors)


@pytest.mark.parametrize(
    ("learned", "verdict"),
    [
        ([], None),  # nothing trained yet
        ([True], True),  # the first seed learned: passed, no second seed
        ([False], None),  # one unlucky seed costs nothing: two more
        ([False, True], None),
        ([False, False], False),  # the next two cannot both learn any more
        ([False, True, True], True),
        ([False, True, False], False),
    ],
)
def test_the_seeds_decide_as_soon_as_the_verdict_is_sure(
    learned: list[bool], verdict: bool | None
) -> None:
    """Does the reward-curve test pass on a first seed that learns, and otherwise need both of
    the next two (CALIBRATION.md, "One seed when it learns")?"""
    assert curves.seeds_verdict(learned) is verdict


def test_the_seed_rule_fails_correct_work_no_more_often_than_two_of_three() -> None:
    """Over every per-seed learning rate, is the new rule's false fail at most 2 of 3's, and its
    pass chance for an agent that never learns zero?"""
    outcomes = [(a, b, c) for a in (0, 1) for b in (0, 1) for c in (0, 1)]
    for p in np.linspace(0, 1, 101):

        def chance(rule: Callable[[tuple[int, int, int]], bool], p: float = p) -> float:
            return sum(float(np.prod([p if x else 1 - p for x in o])) for o in outcomes if rule(o))

        new = chance(lambda o: bool(curves.seeds_verdict([bool(x) for x in o])))
        two_of_three = chance(lambda o: sum(o) >= 2)
        assert new >= two_of_three - 1e-12
        assert abs(new - (p + (1 - p) * p * p)) < 1e-12
    assert curves.seeds_verdict([False, False, False]) is False

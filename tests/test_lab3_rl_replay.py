"""Does lab3_rl's CartPole evaluation, played in the kernel and replayed by the grader, decide as
playing it step by step through the door did?

Since issue 23 (second pass) the trained agents play in the kernel (`in_kernel.evaluate`, one door
call) and the grader replays their actions in its own environments (`curves.replay`), which
score them. Checked here with numpy policies in this process (no kernel, no TensorFlow); the
same check on trained TensorFlow agents is in grader_tests/lab3_rl/CALIBRATION.md.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from introdl.grading.authoring import Lab
from tests.conftest import ROOT

curves = Lab.named("lab3_rl", ROOT).module("curves")
BAR = curves.EVAL_MEAN_AT_LEAST


def noisy_student(seed: int, good: float) -> dict[str, Any]:
    """A 'notebook' whose choose_action balances, or acts at random with probability 1 - GOOD."""
    rng = np.random.default_rng(seed)

    def choose_action(model: Any, observations: np.ndarray, single: bool = True) -> np.ndarray:
        wise = (40 * observations[:, 2] + 10 * observations[:, 3] > 0).astype(np.int64)
        random = rng.integers(0, 2, size=len(observations))
        return np.where(rng.random(len(observations)) < good, wise, random)

    return {"choose_action": choose_action}


def kernel_with_agents(seed: int, good: float, agents: int = 2) -> Any:
    module = curves.load_in_process(noisy_student(seed, good))
    module.AGENTS.update({f"cartpole_{k}": object() for k in range(agents)})
    return module


def evaluate(module: Any, seeds: list[int], **caps: float) -> dict[str, Any]:
    settings = {"cpu_seconds": curves.EVAL_CPU_SECONDS, "wall_seconds": curves.EVAL_WALL_SECONDS}
    return module.evaluate(  # type: ignore[no-any-return]
        sorted(module.AGENTS),
        seeds,
        max_steps=curves.EVAL_MAX_STEPS,
        bar=BAR,
        **{**settings, **caps},
    )


@pytest.mark.parametrize("good", [0.6, 0.8, 0.95])
def test_replayed_evaluation_equals_the_step_by_step_one(good: float) -> None:
    """Same policy, same random draws: does the replay give the totals, steps and verdict of the
    evaluation played through `curves.play` one step at a time?"""
    for seed in range(3):
        seeds = [seed * 100 + k for k in range(curves.EVAL_EPISODES)]
        stepwise = kernel_with_agents(seed, good)
        agents = sorted(stepwise.AGENTS)
        before = curves.play(lambda obs, m=stepwise, a=agents: m.act(a, obs), 2, seeds, bar=BAR)
        answer = evaluate(kernel_with_agents(seed, good), seeds)
        after = curves.replay(answer, 2, seeds, bar=BAR)
        assert np.array_equal(before.totals, after.totals), (good, seed)
        assert (before.steps, before.best_mean, before.out_of_time) == (
            after.steps,
            after.best_mean,
            after.out_of_time,
        )
        assert len(answer["actions"]) == after.steps


def test_actions_that_end_before_the_verdict_fail() -> None:
    """Does a kernel that returns fewer actions than the verdict needs (and claims no spent
    budget) fail the evaluation instead of being judged on a short play?"""
    seeds = list(range(8))
    answer = evaluate(kernel_with_agents(0, 0.95), seeds)
    answer["actions"] = answer["actions"][:5]
    with pytest.raises(AssertionError, match="stopped before a verdict"):
        curves.replay(answer, 2, seeds, bar=BAR)


def test_a_kernel_out_of_cpu_is_judged_on_what_it_played() -> None:
    """Does an evaluation the kernel stopped on its CPU cap come back as out of time, judged on
    the rewards of the steps it played in the grader's environments?"""
    seeds = list(range(8))
    answer = evaluate(kernel_with_agents(0, 0.95), seeds, cpu_seconds=-1.0)
    played = curves.replay(answer, 2, seeds, bar=BAR)
    assert answer["stopped"] == "cpu"
    assert played.out_of_time
    assert played.steps == 0
    assert played.totals.mean() < BAR


def test_invalid_actions_fail_in_the_graders_replay() -> None:
    """Does the replay refuse actions CartPole does not have, whatever the kernel claims?"""
    seeds = list(range(8))
    answer = evaluate(kernel_with_agents(0, 0.95), seeds)
    answer["actions"] = np.full_like(answer["actions"], 2)
    with pytest.raises(AssertionError, match="CartPole's actions are 0 and 1"):
        curves.replay(answer, 2, seeds, bar=BAR)

"""Do the public checks of lab3_rl pass correct work and explain typical mistakes in words?

The work checked is the source notebook's own solution, the correct-but-different variant, and
the known-wrong variants of tests/fixtures/lab3_rl/ (each one mistake), all run in this process.
Public checks only see properties and hand-worked cases, so some mistakes (a missing dilation,
a reversed frame difference) are left to the hidden tests.
"""

from __future__ import annotations

import contextlib
import io
from typing import Any

import numpy as np
import pytest

from introdl.checks import CheckFailed
from introdl.checks import lab3_rl as check
from introdl.grading.authoring import Lab, namespace, variants
from tests.conftest import ROOT

LAB = Lab.named("lab3_rl", ROOT)

# check name -> the notebook names it is called with (as in the source notebook's check cells)
CALLS: dict[str, tuple[str, ...]] = {
    "cartpole_model": ("create_cartpole_model",),
    "choose_action": ("choose_action",),
    "memory": ("Memory",),
    "discount_rewards": ("discount_rewards",),
    "compute_loss": ("compute_loss",),
    "train_step": ("train_step",),
    "cartpole_rollout": ("collect_cartpole_rollout",),
    "pong_change": ("pong_change",),
    "discount_rewards_pong": ("discount_rewards_pong",),
    "pong_model": ("create_pong_model",),
    "pong_rollout": ("collect_pong_rollout",),
}

# wrong variant -> (the public check that must catch it, words its message must contain)
CAUGHT_PUBLICLY = {
    "wrong-argmax-action": ("choose_action", "SAMPLE"),
    "wrong-gamma-ignored": ("discount_rewards", "gamma=0.5"),
    "wrong-no-discounting": ("discount_rewards", "normalize of the returns"),
    "wrong-returns-not-normalised": ("discount_rewards", "without normalising"),
    "wrong-loss-sign-flipped": ("compute_loss", "wrong sign"),
    "wrong-loss-on-probabilities": ("compute_loss", "not probabilities"),
    "wrong-memory-class-lists": ("memory", "its own lists"),
    "wrong-model-softmax-output": ("cartpole_model", "no activation"),
    "wrong-train-step-without-update": ("train_step", "did not change"),
    "wrong-rollout-records-next-observation": ("cartpole_rollout", "chosen FROM"),
    "wrong-pong-sum-not-reset": ("discount_rewards_pong", "Reset the running sum"),
    "wrong-pong-rollout-raw-frames": ("pong_rollout", "all zeros"),
}
LEFT_TO_HIDDEN_TESTS = {"wrong-pong-change-not-dilated", "wrong-pong-change-reversed"}


def run_check(name: str, ns: dict[str, Any]) -> str:
    """Run public check NAME on the notebook namespace NS; its stdout."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        getattr(check, name)(*(ns[arg] for arg in CALLS[name]))
    assert not err.getvalue(), (
        f"check.{name} wrote to stderr (nbgrader scores that 0): {err.getvalue()[:300]}"
    )
    return out.getvalue()


@pytest.fixture(scope="module")
def solution() -> dict[str, Any]:
    return namespace(LAB)


@pytest.mark.parametrize("name", sorted(CALLS))
def test_check_passes_the_solution_with_one_tick_line(name: str, solution: dict[str, Any]) -> None:
    """Does each check pass the source notebook's solution, printing one ✓ line and no stderr?"""
    printed = run_check(name, solution)
    lines = printed.strip().splitlines()
    assert len(lines) == 1, printed
    assert lines[0].startswith("✓"), printed


def test_checks_pass_correct_work_written_differently() -> None:
    """Do the checks accept NumPy sampling, vectorised returns and other equivalent code?"""
    (correct,) = [v for v in variants(LAB) if not v.wrong]
    ns = namespace(LAB, correct)
    for name in CALLS:
        assert run_check(name, ns).startswith("✓")


def test_every_wrong_variant_is_accounted_for() -> None:
    """Is each known mistake either caught by a public check here or knowingly left to the hidden tests?"""
    wrong = {v.name for v in variants(LAB) if v.wrong}
    assert wrong == set(CAUGHT_PUBLICLY) | LEFT_TO_HIDDEN_TESTS


@pytest.mark.parametrize("variant", sorted(CAUGHT_PUBLICLY))
def test_check_explains_the_mistake(variant: str) -> None:
    """Does the public check of the cell with the mistake fail, saying what to fix?"""
    (found,) = [v for v in variants(LAB) if v.name == variant]
    name, words = CAUGHT_PUBLICLY[variant]
    with pytest.raises(CheckFailed) as failure:
        run_check(name, namespace(LAB, found))
    assert words in str(failure.value)


def test_choose_action_with_predict_is_told_to_call_the_model(solution: dict[str, Any]) -> None:
    """Is a choose_action built on model.predict (hours of training) failed with the fix?"""

    def slow_choose_action(model: Any, observation: Any, single: bool = True) -> Any:
        batch = np.expand_dims(observation, 0) if single else observation
        logits = model.predict(batch, verbose=0)
        actions = solution["tf"].random.categorical(logits, 1).numpy().flatten()
        return int(actions[0]) if single else actions

    with pytest.raises(CheckFailed, match=r"model\(observation\)"):
        check.choose_action(slow_choose_action)


def test_training_checks_accept_short_smoke_runs_and_demand_the_target_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With the smoke budget a short run passes; with the cpu budget the curve must reach the target."""
    short = [12.0, 30.0, 18.0]
    monkeypatch.setenv("INTRODL_BUDGET", "smoke")
    check.cartpole_training(short, 195)
    monkeypatch.setenv("INTRODL_BUDGET", "cpu")
    with pytest.raises(CheckFailed, match="train longer"):
        check.cartpole_training(short, 195)
    check.cartpole_training([20.0] * 10 + [200.0] * 20, 195)
    with pytest.raises(CheckFailed, match="between 1 and 500"):
        check.cartpole_training([0.0, 600.0], 195)
    check.pong_training([0.0, 25.0], 2)
    with pytest.raises(CheckFailed, match="one value per training step"):
        check.pong_training([0.0], 2)

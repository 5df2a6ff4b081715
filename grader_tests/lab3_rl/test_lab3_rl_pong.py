"""Hidden tests for lab3_rl, Part 2: Pong (frame differences, the CNN policy, rollouts and
learning from rewarded frames). Never released.

Frames come from ALE in the grader's process, drawn from the `rng` fixture; loops that call the
student's code at every step run inside the kernel (in_kernel.py). The other tests of the lab:
test_lab3_rl.py, test_lab3_rl_cartpole_training.py.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest

from grader_tests.lab3_rl import reference
from grader_tests.lab3_rl.curves import RL
from introdl.grading.authoring import (
    as_array,
    assert_close,
    assert_shape,
    assert_true,
    close,
)

SEEDED_AS = "test_lab3_rl.py"  # split from it: each test keeps the draws it had there


# --- Part 2: Pong -----------------------------------------------------------------------------
def pong_frames(rng: np.random.Generator, steps: int) -> list[np.ndarray]:
    """Real Pong frames from ALE, with random play, in the grader's process."""
    from introdl.labs import lab3_rl as rl

    env = rl.make_pong(seed=int(rng.integers(0, 2**31 - 1)))
    frames = [env.reset()[0]]
    for _ in range(steps):
        frames.append(env.step(int(rng.integers(0, 6)))[0])
    return frames


@pytest.mark.grade("pong_change", points=2)
def test_pong_change_matches_reference_on_real_frames(
    kernel: Any, rng: np.random.Generator
) -> None:
    frames = pong_frames(rng, 80)
    pairs = [
        (frames[t - 1], frames[t])
        for t in sorted(rng.choice(np.arange(1, len(frames)), size=4, replace=False))
    ]
    answers = kernel.call(f"{RL}.each", "pong_change", pairs)  # the 4 calls in one door call
    for (prev, curr), got in zip(pairs, answers, strict=True):
        assert_close(
            got,
            reference.pong_change(prev, curr),
            "pong_change(prev, curr) should be preprocess_pong(prev) - preprocess_pong(curr), "
            "each frame cropped to rows 35-194, halved, red channel, background 144 and 109 "
            "erased, binarised, dilated 3x3 and halved again to (40, 40, 1)",
            rtol=0,
            atol=1e-6,
        )


@pytest.mark.grade("pong_model", points=1)
def test_pong_model_is_a_cnn_giving_logits(kernel: Any, rng: np.random.Generator) -> None:
    n_actions = int(rng.integers(3, 7))
    kernel.call("create_pong_model", n_actions, store_as="_grader_pong_model")
    x = rng.choice([-1.0, 0.0, 1.0], size=(int(rng.integers(2, 6)), 40, 40, 1)).astype(np.float32)
    out = assert_shape(
        kernel.call("_grader_pong_model", x),
        (len(x), n_actions),
        f"create_pong_model({n_actions}) should map (batch, 40, 40, 1) to (batch, {n_actions}) logits",
    )
    layers = kernel.call(f"{RL}.layer_names", "_grader_pong_model")
    assert_true(
        isinstance(layers, list) and "Conv2D" in layers,
        "create_pong_model should be a convolutional network (Conv2D layers)",
    )
    assert_true(
        not (np.all(out >= 0) and close(out.sum(axis=1), np.ones(len(out)), rtol=1e-5, atol=1e-4)),
        "create_pong_model should return logits, not probabilities (no softmax at the end)",
    )


@pytest.mark.grade("pong_rollout", points=1)
def test_pong_rollout_records_frame_differences_of_the_game(
    kernel: Any, rng: np.random.Generator
) -> None:
    from introdl.labs import lab3_rl as rl

    seeds = [int(s) for s in rng.integers(0, 2**31 - 1, size=2)]
    steps = 25
    kernel.call(f"{RL}.build_flat_pong_policy", "_grader_pong_uniform", 6)
    kernel.call(
        f"{RL}.rollout",
        "pong",
        seeds,
        steps,
        "_grader_pong_uniform",
        "_grader_pong_memories",
        timeout=60,
    )
    traces = kernel.call(f"{RL}.trace", "_grader_pong_memories")
    assert_true(
        isinstance(traces, list) and len(traces) == len(seeds),
        "collect_pong_rollout should return one Memory per environment",
    )
    for trace, seed in zip(traces, seeds, strict=True):
        obs, actions, rewards = trace["observations"], trace["actions"], trace["rewards"]
        assert_true(
            len(actions) == steps and len(obs) == steps and len(rewards) == steps,
            f"each Memory should hold the whole game, here cut after {steps} steps; it holds "
            f"{len(actions)} actions",
        )
        env = rl.make_pong(seed=seed, max_episode_steps=steps)
        frame, _ = env.reset()
        previous = frame
        for t in range(steps):
            assert_close(
                obs[t],
                reference.pong_change(previous, frame),
                f"step {t}: the recorded observation should be pong_change(previous_frame, "
                "current_frame) (the first frame twice at the first step)",
                rtol=0,
                atol=1e-6,
            )
            previous = frame
            frame, reward, *_ = env.step(int(actions[t]))
            assert_true(
                float(rewards[t]) == float(reward),
                f"step {t}: the recorded reward is not the one env.step returned",
            )


@pytest.mark.trains
@pytest.mark.grade("pong_training", points=1)
@pytest.mark.budget(seconds=90)
def test_pong_training_steps_run_end_to_end(kernel: Any, seed: int) -> None:
    # one update, a second only if the first update's games scored no point (CALIBRATION.md)
    result = kernel.call(
        f"{RL}.pong_updates",
        seed,
        num_envs=2,
        max_steps=80,
        updates=2,
        learning_rate=1e-3,
        timeout=80,
    )
    assert_true(isinstance(result, dict), "the Pong training steps returned nothing")
    steps, points = result.get("steps"), result.get("points")
    updates = 1 if isinstance(points, int) and points > 0 else 2  # what pong_updates plays
    assert_true(
        isinstance(steps, list)
        and len(steps) in (updates, 2)
        and all(s == [80, 80] for s in steps),
        "collect_pong_rollout should play each game to its end (here: cut after 80 steps); "
        f"the games lasted {steps}",
    )
    assert_true(
        bool(result.get("finite")),
        "after the Pong training steps the model's weights are NaN or infinite",
    )
    assert_true(
        bool(result.get("changed")) or points == 0,
        "a Pong training step on games with points scored did not change the model's weights",
    )


@pytest.mark.grade("pong_training", points=1)
@pytest.mark.budget(seconds=60)
def test_pong_agent_learns_from_rewarded_frames(
    kernel: Any, rng: np.random.Generator, seed: int
) -> None:
    frames = pong_frames(rng, 70)
    inputs = np.stack([reference.pong_change(a, b) for a, b in itertools.pairwise(frames)]).astype(
        np.float32
    )
    actions = rng.integers(0, 6, size=len(inputs)).astype(np.int32)
    returns = reference.normalized(rng.choice([-1.0, 1.0], size=len(inputs))).astype(np.float32)
    kernel.call(f"{RL}.seed_everything", seed)
    kernel.call("create_pong_model", 6, store_as="_grader_pong_learner")
    before = as_array(
        kernel.call(f"{RL}.logits", "_grader_pong_learner", inputs), "the Pong model's logits"
    )
    kernel.call(
        f"{RL}.train_on",
        "_grader_pong_learner",
        "adam",
        1e-3,
        inputs,
        actions,
        returns,
        steps=5,
        timeout=60,
    )
    after = as_array(
        kernel.call(f"{RL}.logits", "_grader_pong_learner", inputs), "the Pong model's logits"
    )
    logp_before = reference.log_softmax(before)[np.arange(len(actions)), actions]
    logp_after = reference.log_softmax(after)[np.arange(len(actions)), actions]
    rise = logp_after - logp_before
    up, down = float(rise[returns > 0].mean()), float(rise[returns < 0].mean())
    assert_true(
        up > 0 and down < 0,
        "five training steps of your Pong model (train_step on frame differences with rewarded "
        "and punished actions) should raise the log-probability of rewarded actions and lower "
        f"that of punished ones; they changed by {up:+.3f} and {down:+.3f} on average",
    )

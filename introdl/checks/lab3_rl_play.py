"""Public checks of Lab 3 that play the game: CartPole rollouts and training, and Pong.

Re-exported by `introdl.checks.lab3_rl` (the notebooks import `from introdl.checks import lab3_rl
as check`); split from it so that each module reads whole.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np

from introdl.budget import current_budget
from introdl.checks import as_array, calling, describe, fail, passed
from introdl.checks import quiet as _quiet
from introdl.labs import lab3_rl as rl

_SEED = 6191  # the checks' own inputs are fixed, so a failing check fails again on re-run


def _linear_policy(n_in: int, logits: Sequence[float]) -> keras.Model:
    """A model whose logits are LOGITS for every input (zero kernel, the logits as bias)."""
    model = keras.Sequential([keras.Input((n_in,)), keras.layers.Dense(len(logits))])
    model.set_weights(
        [np.zeros((n_in, len(logits)), np.float32), np.asarray(logits, dtype=np.float32)]
    )
    return model


# --- 3.6 / 3.7 CartPole rollout and training ---------------------------------------------------


def cartpole_rollout(collect_cartpole_rollout: Callable[..., Any]) -> None:
    """One memory per environment, a whole episode each, actions from the model."""
    seeds = (11, 12, 13)
    envs = [rl.make_cartpole(seed=s) for s in seeds]
    model = _linear_policy(4, [-30.0, 30.0])  # always pushes right: an episode lasts ~10 steps
    with calling("collect_cartpole_rollout(envs, model)"), _quiet():
        memories = collect_cartpole_rollout(envs, model)
    if not isinstance(memories, list | tuple) or len(memories) != len(envs):
        fail(
            f"collect_cartpole_rollout with {len(envs)} environments should return a list of "
            f"{len(envs)} Memory objects; got {type(memories).__name__}."
        )
    for k, (mem, seed) in enumerate(zip(memories, seeds, strict=True)):
        replay = rl.make_cartpole(seed=seed)
        first, _ = replay.reset()
        n = len(getattr(mem, "actions", []))
        if n == 0:
            fail(f"Memory {k} is empty: record every step with add_to_memory.")
        if not (len(mem.observations) == len(mem.rewards) == n):
            fail(f"Memory {k} has different numbers of observations, actions and rewards.")
        if not np.allclose(np.asarray(mem.observations[0]), first):
            fail(
                f"Memory {k}'s first observation is not the one env.reset() returned: record the "
                "observation each action was chosen FROM (before stepping)."
            )
        if any(int(a) != 1 for a in mem.actions):
            fail(
                "With a policy that pushes right with probability ~1, every recorded action should "
                "be 1: choose the actions with choose_action(model, batch, single=False)."
            )
        ended = False
        for t in range(n):
            obs, _, terminated, truncated, _ = replay.step(1)
            ended = terminated or truncated
            if ended and t < n - 1:
                fail(
                    f"Memory {k} goes on after its episode ended: stop stepping an environment once terminated or truncated."
                )
            if t + 1 < n and not np.allclose(np.asarray(mem.observations[t + 1]), obs):
                fail(
                    f"Memory {k}'s observation {t + 1} is not the one the environment returned after "
                    f"step {t}: after stepping, continue from the new observation."
                )
        if not ended:
            fail(f"Memory {k} stops before its episode ended: play until terminated or truncated.")
    passed(
        f"collect_cartpole_rollout plays one whole episode per environment ({len(envs)} in lockstep)"
    )


def cartpole_training(rewards: Sequence[float], target: float) -> None:
    """The notebook's training ran; with the cpu or gpu budget, it reached TARGET."""
    values = as_array(list(rewards), "cartpole_rewards")
    if values.ndim != 1 or values.size == 0:
        fail("cartpole_rewards should be a list with the total reward of each episode played.")
    if values.min() < 1 or values.max() > 500:
        fail(
            "CartPole's episode rewards lie between 1 and 500 (+1 per step, at most 500 steps); "
            f"cartpole_rewards holds {describe(values)}."
        )
    last = float(np.mean(values[-20:]))
    if current_budget() == "smoke":
        passed(
            f"{values.size} episodes played (smoke budget: too short to learn; mean of the last 20 is {last:.1f})"
        )
        return
    if last < target:
        fail(
            f"After {values.size} episodes the mean reward of the last 20 is {last:.1f}, below "
            f"{target}. If the curve rose, train longer (num_iterations); if it stayed flat or "
            "fell, recheck choose_action (sampling), compute_loss (sign) and discount_rewards."
        )
    passed(
        f"the agent reached a mean reward of {last:.1f} over the last 20 of {values.size} episodes"
    )


# --- Part 2: Pong ------------------------------------------------------------------------------


def _pong_frames() -> list[np.ndarray]:
    env = rl.make_pong(seed=_SEED)
    frames = [env.reset()[0]]
    for action in [0] * 40 + [2] * 6 + [3] * 6:
        frames.append(env.step(action)[0])
    return frames


def pong_change(pong_change: Callable[..., Any]) -> None:
    """Shape (40, 40, 1), values -1/0/1, zero for equal frames, antisymmetric, sees the motion."""
    frames = _pong_frames()
    a, b = frames[-2], frames[-1]
    what = "pong_change(previous_frame, current_frame)"
    with calling(what):
        change = as_array(pong_change(a, b), what)
    if change.shape != (40, 40, 1):
        fail(
            f"{what} should have shape (40, 40, 1): crop to 160 x 160, downsample twice by 2, and "
            f"add a channel axis; got {change.shape}."
        )
    if not np.issubdtype(change.dtype, np.floating):
        fail(
            f"{what} should hold floats (the network's input); got dtype {change.dtype}. With "
            "unsigned integers, -1 would wrap around to 255: convert with .astype(np.float32)."
        )
    if not np.all(np.isin(change, [-1.0, 0.0, 1.0])):
        fail(
            f"{what} should hold only -1, 0 and 1 (differences of 0/1 pictures); got {describe(change)}."
        )
    with calling("pong_change(frame, frame)"):
        same = as_array(pong_change(a, a), "pong_change(frame, frame)")
    if np.any(same != 0):
        fail("pong_change(frame, frame) should be all zeros: nothing moved.")
    with calling("pong_change(current_frame, previous_frame)"):
        swapped = as_array(pong_change(b, a), "pong_change(current, previous)")
    if not np.array_equal(swapped, -change):
        fail(
            "pong_change(b, a) should be -pong_change(a, b): return preprocess(prev) - preprocess(curr)."
        )
    moving = int(np.sum(change != 0))
    if moving == 0:
        fail(f"{what} is all zeros for two frames in which the paddles moved.")
    if moving > 200:
        fail(
            f"{what} marks {moving} of 1,600 pixels as changed; only paddles and ball move. Did you "
            "erase both background colours (144 and 109) before binarising?"
        )
    with calling("pong_change on frames 40 steps apart"):
        far = as_array(pong_change(frames[0], frames[-1]), "pong_change")
    if not np.any(far == 1) or not np.any(far == -1):
        fail(
            "pong_change(previous, current) should be +1 where objects were and -1 where they are now."
        )
    passed(
        f"pong_change gives a (40, 40, 1) difference of -1/0/1 ({moving} pixels changed between two frames)"
    )


def pong_model(create_pong_model: Callable[..., Any]) -> None:
    """A convolutional model: (batch, 40, 40, 1) -> logits (batch, n_actions)."""
    with calling("create_pong_model(6)"), _quiet():
        model = create_pong_model(6)
    if not isinstance(model, keras.Model):
        fail(f"create_pong_model should return a keras model; got {type(model).__name__}.")
    x = (
        np.random.default_rng(_SEED)
        .choice([-1.0, 0.0, 1.0], size=(3, 40, 40, 1))
        .astype(np.float32)
    )
    with calling("the Pong model on a batch of 3 frame differences"), _quiet():
        out = as_array(model(x), "the Pong model's output")
    if out.shape != (3, 6):
        fail(
            f"On a batch of 3 inputs of shape (40, 40, 1) the model should return shape (3, 6); got {out.shape}."
        )
    if not any(isinstance(layer, keras.layers.Conv2D) for layer in model.layers):
        fail("The Pong model should start with Conv2D layers: it looks at images.")
    if np.all(out >= 0) and np.allclose(out.sum(axis=1), 1.0, atol=1e-4):
        fail("The Pong model's outputs sum to 1: drop the softmax, the model should return logits.")
    with calling("create_pong_model(2)"), _quiet():
        two = as_array(create_pong_model(2)(x), "create_pong_model(2)'s output")
    if two.shape != (3, 2):
        fail(
            f"create_pong_model(n_actions) should give n_actions logits; with 2 the shape is {two.shape}."
        )
    passed(
        f"create_pong_model: a CNN with {model.count_params():,} parameters giving logits (batch, n_actions)"
    )


def pong_rollout(collect_pong_rollout: Callable[..., Any]) -> None:
    """One memory per game; observations are (40, 40, 1) frame differences, the first all zeros."""
    steps = 12
    envs = [rl.make_pong(seed=s, max_episode_steps=steps) for s in (21, 22)]
    model = keras.Sequential(
        [keras.Input((40, 40, 1)), keras.layers.Flatten(), keras.layers.Dense(6)]
    )
    with calling("collect_pong_rollout(envs, model)"), _quiet():
        memories = collect_pong_rollout(envs, model)
    if not isinstance(memories, list | tuple) or len(memories) != 2:
        fail("collect_pong_rollout with 2 environments should return a list of 2 Memory objects.")
    for k, mem in enumerate(memories):
        n = len(getattr(mem, "actions", []))
        if n != steps:
            fail(
                f"Memory {k} holds {n} steps of a game cut after {steps}: record every step until "
                "the game is terminated or truncated."
            )
        observations = [np.asarray(o) for o in mem.observations]
        if any(o.shape != (40, 40, 1) for o in observations):
            fail(
                "Each recorded observation should be a frame difference of shape (40, 40, 1) (pong_change)."
            )
        if np.any(observations[0] != 0):
            fail("The first recorded difference should be all zeros: the first frame minus itself.")
        if not all(0 <= int(a) < 6 for a in mem.actions):
            fail("Recorded actions should be Pong actions 0..5.")
    passed(f"collect_pong_rollout records {steps} frame differences per game, in lockstep")


def pong_training(win_rates: Sequence[float], iterations: int) -> None:
    """The Pong loop ran its iterations and tracked the share of points won."""
    values = as_array(list(win_rates), "win_rates")
    if values.shape != (iterations,):
        fail(
            f"win_rates should hold one value per training step ({iterations}); it holds {values.size}."
        )
    if values.min() < 0 or values.max() > 100:
        fail(f"win_rates are percentages between 0 and 100; got {describe(values)}.")
    passed(
        f"the Pong loop ran {iterations} training steps (points won in the last: {values[-1]:.0f}%)"
    )

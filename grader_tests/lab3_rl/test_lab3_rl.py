"""Hidden tests for lab3_rl (policy gradients on CartPole and Pong). Never released to students.

Inputs are drawn at grading time from the `rng` fixture; references are in reference.py. Loops
that call the student's code at every step run inside the kernel (in_kernel.py, installed as
`_grader_lab3_rl`) on environments created there with the grader's seeds; the trained CartPole
policies are then scored in the grader's own environments. Objects the tests create in the kernel
are named `_grader_...`.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

import numpy as np
import pytest

from grader_tests.lab3_rl import curves, reference
from introdl.grading.hidden.expect import (
    as_array,
    assert_close,
    assert_shape,
    assert_true,
    close,
)
from introdl.grading.hidden.marks import HostTooSlow

RL = "_grader_lab3_rl"  # in_kernel.py, as installed in the kernel by `student.install`
TRAINED: dict[str, Any] = {}  # the CartPole agents trained by the reward-curve test
HOST_TOO_SLOW: list[str] = []  # why the reward-curve test ended as an error, if it did


@pytest.fixture(scope="module")
def kernel(student: Any) -> Any:
    """The student's kernel with the grader's in-kernel helpers installed."""
    assert student.install(curves.IN_KERNEL) == RL
    return student


def linear_policy(
    kernel: Any, rng: np.random.Generator, name: str, n_in: int, n_out: int, scale: float
) -> tuple[np.ndarray, np.ndarray]:
    w = (rng.normal(size=(n_in, n_out)) * scale).astype(np.float32)
    b = (rng.normal(size=n_out) * scale).astype(np.float32)
    kernel.call(f"{RL}.build_linear_policy", name, n_in, w, b)
    return w, b


# --- 3.2 the CartPole agent ----------------------------------------------------------------------
@pytest.mark.grade("cartpole_model", points=1)
def test_cartpole_model_is_dense32_relu_then_logits(kernel: Any, rng: np.random.Generator) -> None:
    x = rng.normal(size=(int(rng.integers(2, 9)), 4)).astype(np.float32)
    kernel.call("create_cartpole_model", store_as="_grader_cp_model")
    out = kernel.call("_grader_cp_model", x)
    weights = kernel.call(f"{RL}.weights", "_grader_cp_model")
    shapes = [tuple(np.shape(w)) for w in weights]
    assert_true(
        shapes == [(4, 32), (32,), (32, 2), (2,)],
        "create_cartpole_model() should be Dense(32 units) then Dense(2 units) on 4 inputs; "
        f"its weights have shapes {shapes}",
    )
    assert_close(
        out,
        reference.cartpole_mlp(x, weights),
        "create_cartpole_model() should compute relu(x W1 + b1) W2 + b2: a ReLU hidden layer "
        "and logits with no activation",
    )
    n_actions = int(rng.integers(3, 7))
    kernel.call("create_cartpole_model", n_actions, store_as="_grader_cp_model_n")
    assert_shape(
        kernel.call("_grader_cp_model_n", x),
        (len(x), n_actions),
        f"create_cartpole_model({n_actions}) should give {n_actions} logits per observation",
    )


# --- 3.2b choosing actions -----------------------------------------------------------------------
@pytest.mark.grade("choose_action", points=0.5)
def test_choose_action_single_returns_one_valid_action(
    kernel: Any, rng: np.random.Generator
) -> None:
    n_actions = int(rng.integers(2, 6))
    linear_policy(kernel, rng, "_grader_policy1", 4, n_actions, 1.0)
    for _ in range(5):
        obs = rng.normal(size=4).astype(np.float32)
        action = as_array(
            kernel.call(f"{RL}.with_model", "choose_action", "_grader_policy1", obs),
            "choose_action(model, observation)",
        )
        assert_true(
            action.size == 1,
            f"choose_action(model, observation) should return one action; it returned shape {action.shape}",
        )
        value = float(action.reshape(()))
        assert_true(
            value == int(value) and 0 <= value < n_actions,
            f"choose_action should return an action between 0 and {n_actions - 1}; it returned {value}",
        )


@pytest.mark.grade("choose_action", points=1.5)
def test_choose_action_samples_follow_policy_probabilities(
    kernel: Any, rng: np.random.Generator
) -> None:
    n_in, n_actions, repeats = 5, int(rng.integers(3, 6)), 2000
    w, b = linear_policy(kernel, rng, "_grader_policy2", n_in, n_actions, 0.8)
    states = rng.normal(size=(3, n_in)).astype(np.float32)
    batch = np.repeat(states, repeats, axis=0)  # (3 * repeats, n_in)
    actions = as_array(
        kernel.call(f"{RL}.with_model", "choose_action", "_grader_policy2", batch, single=False),
        "choose_action(model, observations, single=False)",
    ).reshape(-1)
    assert_true(
        actions.shape == (len(batch),),
        f"choose_action(..., single=False) should return one action per observation "
        f"({len(batch)}); it returned {actions.shape[0]}",
    )
    assert_true(
        bool(np.all((actions >= 0) & (actions < n_actions) & (actions == np.round(actions)))),
        f"choose_action should return whole-number actions between 0 and {n_actions - 1}",
    )
    probabilities = reference.softmax(states @ w + b)
    for k, p in enumerate(probabilities):
        chosen = actions[k * repeats : (k + 1) * repeats].astype(np.int64)
        freq = np.bincount(chosen, minlength=n_actions) / repeats
        # 5 standard deviations of a frequency: a correct sampler fails this about once in a million.
        allowed = 5 * np.sqrt(p * (1 - p) / repeats) + 1e-3
        assert_true(
            bool(np.all(np.abs(freq - p) <= allowed)),
            "choose_action should sample each action with the policy's probability "
            "softmax(logits) (tf.random.categorical on the logits): over 2,000 draws for one "
            f"observation the frequencies were {np.round(freq, 2).tolist()}",
        )


# --- 3.3 memory --------------------------------------------------------------------------------
@pytest.mark.grade("memory", points=0.5)
def test_memory_records_steps_in_order_and_clears(kernel: Any, rng: np.random.Generator) -> None:
    kernel.call("Memory", store_as="_grader_memory")
    steps = [
        (rng.normal(size=4).astype(np.float32), int(rng.integers(0, 2)), float(rng.normal()))
        for _ in range(int(rng.integers(3, 8)))
    ]
    for obs, action, reward in steps:
        kernel.call("_grader_memory.add_to_memory", obs, action, reward)
    observations = kernel.get("_grader_memory.observations")
    actions = kernel.get("_grader_memory.actions")
    rewards = kernel.get("_grader_memory.rewards")
    assert_true(
        isinstance(actions, list) and isinstance(rewards, list) and isinstance(observations, list),
        "Memory's observations, actions and rewards should be lists",
    )
    assert_true(
        [int(a) for a in actions] == [a for _, a, _ in steps]
        and close(rewards, [r for _, _, r in steps], rtol=1e-5, atol=1e-8)
        and len(observations) == len(steps),
        "add_to_memory(observation, action, reward) should append each to its own list, in order",
    )
    assert_close(
        np.stack([np.asarray(o) for o in observations]),
        np.stack([o for o, _, _ in steps]),
        "Memory.observations should hold the observations in order",
    )
    kernel.call("_grader_memory.clear")
    assert_true(
        kernel.get("_grader_memory.actions") == []
        and kernel.get("_grader_memory.rewards") == []
        and kernel.get("_grader_memory.observations") == [],
        "Memory.clear() should leave three empty lists",
    )


@pytest.mark.grade("memory", points=0.5)
def test_memories_do_not_share_lists(kernel: Any, rng: np.random.Generator) -> None:
    kernel.call("Memory", store_as="_grader_memory_a")
    kernel.call("Memory", store_as="_grader_memory_b")
    kernel.call("_grader_memory_a.add_to_memory", rng.normal(size=4), 1, 1.0)
    assert_true(
        kernel.get("_grader_memory_b.actions") == [],
        "each Memory needs its own lists: adding to one Memory changed another "
        "(create the lists in clear() as self.actions = [], not as class attributes)",
    )


# --- 3.4 returns --------------------------------------------------------------------------------
@pytest.mark.grade("discount_rewards", points=1.5)
def test_discount_rewards_matches_reference_for_random_gamma(
    kernel: Any, rng: np.random.Generator
) -> None:
    for _ in range(3):
        rewards = [float(r) for r in rng.normal(size=int(rng.integers(4, 40)))]
        gamma = float(rng.uniform(0.5, 0.99))
        assert_close(
            kernel.call("discount_rewards", rewards, gamma),
            reference.discount_rewards(np.asarray(rewards), gamma),
            f"discount_rewards(rewards, gamma={gamma:.3f}) should be the discounted returns "
            "R_t = r_t + gamma R_(t+1), normalised to mean 0 and standard deviation 1",
            rtol=1e-3,
            atol=1e-3,
        )


@pytest.mark.grade("discount_rewards", points=0.5)
def test_discount_rewards_default_gamma_is_0_95(kernel: Any, rng: np.random.Generator) -> None:
    rewards = [1.0] * int(rng.integers(10, 60))
    assert_close(
        kernel.call("discount_rewards", rewards),
        reference.discount_rewards(np.asarray(rewards), 0.95),
        "discount_rewards(rewards) should use gamma=0.95 by default (a CartPole episode of all +1 rewards)",
        rtol=1e-3,
        atol=1e-3,
    )


@pytest.mark.grade("discount_rewards_pong", points=1)
def test_discount_rewards_pong_restarts_at_every_point(
    kernel: Any, rng: np.random.Generator
) -> None:
    for _ in range(3):
        n = int(rng.integers(20, 60))
        rewards = np.zeros(n)
        points = rng.choice(np.arange(2, n), size=int(rng.integers(2, 5)), replace=False)
        rewards[points] = rng.choice([-1.0, 1.0], size=len(points))
        gamma = float(rng.uniform(0.8, 0.99))
        assert_close(
            kernel.call("discount_rewards_pong", [float(r) for r in rewards], gamma),
            reference.discount_rewards_pong(rewards, gamma),
            f"discount_rewards_pong(rewards, gamma={gamma:.3f}) should restart the discounted sum "
            "at every nonzero reward (a point) and normalise the result",
            rtol=1e-3,
            atol=1e-3,
        )


# --- 3.5 learning ---------------------------------------------------------------------------------
@pytest.mark.grade("compute_loss", points=2)
def test_compute_loss_matches_reference_on_random_batches(
    kernel: Any, rng: np.random.Generator
) -> None:
    for _ in range(3):
        n, k = int(rng.integers(3, 50)), int(rng.integers(2, 7))
        logits = (rng.normal(size=(n, k)) * 2).astype(np.float32)
        actions = rng.integers(0, k, size=n).astype(np.int32)
        returns = rng.normal(size=n).astype(np.float32)
        got = as_array(kernel.call("compute_loss", logits, actions, returns), "compute_loss(...)")
        assert_close(
            got.reshape(()) if got.size == 1 else got,
            reference.policy_loss(logits, actions, returns),
            "compute_loss(logits, actions, rewards) should be the mean over the batch of "
            "-log softmax(logits)[action] * reward",
            rtol=1e-4,
            atol=1e-5,
        )


@pytest.mark.grade("train_step", points=2)
def test_train_step_moves_weights_along_the_policy_gradient(
    kernel: Any, rng: np.random.Generator
) -> None:
    n, d, k = int(rng.integers(8, 30)), 5, int(rng.integers(2, 5))
    w, b = linear_policy(kernel, rng, "_grader_linear", d, k, 0.5)
    x = rng.normal(size=(n, d)).astype(np.float32)
    actions = rng.integers(0, k, size=n).astype(np.int32)
    returns = reference.normalized(rng.normal(size=n)).astype(np.float32)
    learning_rate = 0.01
    kernel.call(f"{RL}.train_on", "_grader_linear", "sgd", learning_rate, x, actions, returns)
    w_after, b_after = (
        as_array(v, "a weight") for v in kernel.call(f"{RL}.weights", "_grader_linear")
    )
    step = np.concatenate([(w_after - w).ravel(), (b_after - b).ravel()])
    assert_true(
        bool(np.any(step != 0)),
        "train_step did not change the model's weights: apply the gradients with optimizer.apply_gradients",
    )
    gw, gb = reference.linear_policy_loss_gradient(x, w, b, actions, returns)
    descent = -np.concatenate([gw.ravel(), gb.ravel()])
    cosine = float(step @ descent / (np.linalg.norm(step) * np.linalg.norm(descent)))
    before = reference.objective(x @ w + b, actions, returns)
    after = reference.objective(x @ w_after + b_after, actions, returns)
    assert_true(
        cosine > 0.99 and after > before,
        "one train_step should move the weights against the gradient of compute_loss, making "
        "actions with positive returns more likely and those with negative returns less likely "
        f"(the step's direction agreed with that only {cosine:+.2f}, on a scale from -1 to 1)",
    )


# --- 3.6 CartPole rollout ---------------------------------------------------------------------
@pytest.mark.grade("cartpole_rollout", points=1)
def test_cartpole_rollout_records_whole_episodes_from_the_policy(
    kernel: Any, rng: np.random.Generator
) -> None:

    seeds = [int(s) for s in rng.integers(0, 2**31 - 1, size=3)]
    steps = 100  # episodes cut here: a slow choose_action must not eat the grading time
    # logit(right) - logit(left) = 40 angle + 10 angular velocity (+ noise): a decent, mostly
    # decisive controller, so actions that ignore the model stand out.
    w = np.zeros((4, 2), dtype=np.float32)
    w[2, 1], w[3, 1] = 40.0, 10.0
    kernel.call(f"{RL}.build_linear_policy", "_grader_balancer", 4, w, np.zeros(2, np.float32))
    kernel.call(
        f"{RL}.rollout",
        "cartpole",
        seeds,
        steps,
        "_grader_balancer",
        "_grader_cp_memories",
        timeout=60,
    )
    traces = kernel.call(f"{RL}.trace", "_grader_cp_memories")
    assert_true(
        isinstance(traces, list) and len(traces) == len(seeds),
        f"collect_cartpole_rollout should return one Memory per environment ({len(seeds)})",
    )
    for trace, seed in zip(traces, seeds, strict=True):
        check_cartpole_trace(trace, seed, w, steps)


def check_cartpole_trace(trace: dict[str, Any], seed: int, w: np.ndarray, steps: int) -> None:
    from introdl.labs import lab3_rl as rl

    obs, actions, rewards = trace["observations"], trace["actions"], trace["rewards"]
    n = len(actions)
    assert_true(
        n > 0 and len(obs) == n and len(rewards) == n,
        "each Memory should hold as many observations and rewards as actions, one per step",
    )
    env = rl.make_cartpole(seed=seed, max_episode_steps=steps)
    expected, _ = env.reset()
    for t in range(n):
        assert_true(
            close(obs[t], np.broadcast_to(expected, np.shape(obs[t])), rtol=1e-5, atol=1e-5),
            f"step {t}: the recorded observation is not the one the action was chosen from "
            "(record the observation before stepping, then continue from the new one)",
        )
        logits = expected @ w
        p = reference.softmax(logits[None, :])[0]
        assert_true(
            p[int(actions[t])] > 1e-6,
            "the recorded actions do not come from the model's policy: choose them with "
            "choose_action(model, observations, single=False)",
        )
        expected, reward, terminated, truncated, _ = env.step(int(actions[t]))
        assert_true(
            float(rewards[t]) == float(reward),
            f"step {t}: the recorded reward is not the one env.step returned",
        )
        done = terminated or truncated
        assert_true(
            done == (t == n - 1),
            "each Memory should hold exactly one whole episode: keep stepping an environment until "
            "terminated or truncated, then stop stepping it",
        )


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
        learned = sum(v.learned for v in verdicts)
        if learned >= curves.SEEDS_TO_PASS or learned + curves.SEEDS - k < curves.SEEDS_TO_PASS:
            break  # decided
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
    learned = sum(v.learned for v in verdicts)
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
        learned >= curves.SEEDS_TO_PASS,
        f"The grader trained your CartPole agent (create_cartpole_model, choose_action, "
        f"discount_rewards, compute_loss, train_step) with its own seeds; the mean reward over "
        f"{window} episodes should rise to {target:.0f} for at least {curves.SEEDS_TO_PASS} of "
        f"them. {details}.{slow}",
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
    kernel_cpu = [float(kernel.call(f"{RL}.cpu_now"))]  # the kernel's CPU clock, all its threads

    def act(obs: np.ndarray) -> np.ndarray:
        answer = kernel.call(f"{RL}.act_charged", agents, obs, timeout=30)
        assert_true(isinstance(answer, dict), "the grader's evaluation got no actions back")
        kernel_cpu.append(float(answer["cpu"]))
        return as_array(answer["actions"], "the actions").astype(np.int64)

    played = curves.play(
        act,
        len(agents),
        seeds,
        bar=curves.EVAL_MEAN_AT_LEAST,
        cpu=lambda: kernel_cpu[-1] - kernel_cpu[0],
    )
    if played.host_too_slow:
        used = kernel_cpu[-1] - kernel_cpu[0]
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
    for t in sorted(rng.choice(np.arange(1, len(frames)), size=4, replace=False)):
        prev, curr = frames[t - 1], frames[t]
        got = kernel.call("pong_change", prev, curr)
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
    assert_true(
        result.get("steps") == [[80, 80], [80, 80]],
        "collect_pong_rollout should play each game to its end (here: cut after 80 steps); "
        f"the games lasted {result.get('steps')}",
    )
    assert_true(
        bool(result.get("finite")),
        "after two Pong training steps the model's weights are NaN or infinite",
    )
    assert_true(
        bool(result.get("changed")) or result.get("points") == 0,
        "two Pong training steps on games with points scored did not change the model's weights",
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

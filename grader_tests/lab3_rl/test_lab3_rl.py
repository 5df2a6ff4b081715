"""Hidden tests for lab3_rl (policy gradients on CartPole and Pong). Never released to students.

Inputs are drawn at grading time from the `rng` fixture; references are in reference.py. Loops
that call the student's code at every step run inside the kernel (in_kernel.py, installed as
`_grader_lab3_rl`) on environments created there with the grader's seeds; the trained CartPole
policies are then scored in the grader's own environments. Objects the tests create in the kernel
are named `_grader_...`.
"""

from __future__ import annotations

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
    observations = [rng.normal(size=4).astype(np.float32) for _ in range(5)]
    # the five calls in one door call (each call's result is checked as before)
    answers = kernel.call(
        f"{RL}.each", "choose_action", [[o] for o in observations], model="_grader_policy1"
    )
    for answer in answers:
        action = as_array(answer, "choose_action(model, observation)")
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
    answer = kernel.call(
        f"{RL}.each", "choose_action", [[batch]], model="_grader_policy2", single=False
    )[0]
    actions = as_array(answer, "choose_action(model, observations, single=False)").reshape(-1)
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
    kernel.call(f"{RL}.each", "_grader_memory.add_to_memory", [list(step) for step in steps])
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
    cases = []
    for _ in range(3):
        rewards = [float(r) for r in rng.normal(size=int(rng.integers(4, 40)))]
        cases.append((rewards, float(rng.uniform(0.5, 0.99))))
    answers = kernel.call(f"{RL}.each", "discount_rewards", cases)  # the 3 calls in one door call
    for (rewards, gamma), got in zip(cases, answers, strict=True):
        assert_close(
            got,
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
    cases = []
    for _ in range(3):
        n = int(rng.integers(20, 60))
        rewards = np.zeros(n)
        points = rng.choice(np.arange(2, n), size=int(rng.integers(2, 5)), replace=False)
        rewards[points] = rng.choice([-1.0, 1.0], size=len(points))
        cases.append((rewards, float(rng.uniform(0.8, 0.99))))
    answers = kernel.call(
        f"{RL}.each", "discount_rewards_pong", [([float(r) for r in x], g) for x, g in cases]
    )
    for (rewards, gamma), got in zip(cases, answers, strict=True):
        assert_close(
            got,
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
    cases = []
    for _ in range(3):
        n, k = int(rng.integers(3, 50)), int(rng.integers(2, 7))
        logits = (rng.normal(size=(n, k)) * 2).astype(np.float32)
        actions = rng.integers(0, k, size=n).astype(np.int32)
        cases.append((logits, actions, rng.normal(size=n).astype(np.float32)))
    answers = kernel.call(f"{RL}.each", "compute_loss", cases)  # the 3 calls in one door call
    for (logits, actions, returns), answer in zip(cases, answers, strict=True):
        got = as_array(answer, "compute_loss(...)")
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

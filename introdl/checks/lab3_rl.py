"""Public checks for Lab 3 (reinforcement learning on CartPole and Pong), one per graded cell.

Each function is named after the grade cell that calls it. They check shapes, value ranges,
properties (a sampled action follows the policy's probabilities, a training step makes rewarded
actions more likely) and small cases worked out by hand, never against a reference
implementation, so they can ship inside the student's notebook.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import numpy as np

from introdl.checks import CheckFailed, as_array, calling, describe, fail, passed
from introdl.checks import quiet as _quiet
from introdl.checks.lab3_rl_play import (
    _linear_policy,
    cartpole_rollout,
    cartpole_training,
    pong_change,
    pong_model,
    pong_rollout,
    pong_training,
)

__all__ = [
    "CheckFailed",
    "cartpole_model",
    "cartpole_rollout",
    "cartpole_training",
    "choose_action",
    "compute_loss",
    "discount_rewards",
    "discount_rewards_pong",
    "memory",
    "pong_change",
    "pong_model",
    "pong_rollout",
    "pong_training",
    "train_step",
]

_SEED = 6191  # the checks' own inputs are fixed, so a failing check fails again on re-run


def _dense_layers(model: Any) -> list[Any]:
    return [
        layer for layer in getattr(model, "layers", []) if isinstance(layer, keras.layers.Dense)
    ]


def _activation_name(layer: Any) -> str:
    return str(getattr(layer.activation, "__name__", layer.activation))


# --- 3.2 the CartPole agent ------------------------------------------------------------------


def cartpole_model(create_cartpole_model: Callable[..., Any]) -> None:
    """create_cartpole_model() is Dense(32, relu) -> Dense(n_actions) giving logits."""
    with calling("create_cartpole_model()"), _quiet():
        model = create_cartpole_model()
    if not isinstance(model, keras.Model):
        fail(
            f"create_cartpole_model() should return a keras model (keras.Sequential([...])); "
            f"got {type(model).__name__}. Did you forget `return model`?"
        )
    x = np.random.default_rng(_SEED).normal(size=(5, 4)).astype(np.float32)
    with calling("the CartPole model on a batch of 5 observations"), _quiet():
        out = as_array(model(x), "the model's output")
    if out.shape != (5, 2):
        fail(
            f"On a batch of 5 observations of 4 numbers the model should return 5 rows of 2 logits "
            f"(one per action), shape (5, 2); got {out.shape}."
        )
    dense = _dense_layers(model)
    if len(dense) != 2:
        fail(
            f"The model should have exactly two Dense layers (32 hidden units, then one unit per "
            f"action); it has {len(dense)}."
        )
    hidden, output = dense
    if hidden.units != 32 or _activation_name(hidden) != "relu":
        fail(
            f"The first Dense layer should have 32 units with ReLU activation; it has "
            f"{hidden.units} units with activation {_activation_name(hidden)!r}."
        )
    if _activation_name(output) not in ("linear", "None"):
        fail(
            f"The output layer should have no activation (the model returns logits; the softmax "
            f"is applied when sampling); it has activation {_activation_name(output)!r}."
        )
    with calling("create_cartpole_model(3)"), _quiet():
        three = as_array(create_cartpole_model(3)(x), "create_cartpole_model(3)'s output")
    if three.shape != (5, 3):
        fail(
            f"create_cartpole_model(n_actions) should give n_actions logits; with n_actions=3 the "
            f"output has shape {three.shape}, expected (5, 3). Use the argument, not a fixed 2."
        )
    passed(
        "create_cartpole_model(): Dense(32, relu) -> Dense(n_actions) logits, shape (batch, n_actions)"
    )


def choose_action(choose_action: Callable[..., Any]) -> None:
    """choose_action samples from softmax(logits), for one observation or a batch, without predict."""
    probabilities = np.array([0.2, 0.3, 0.5])
    model = _linear_policy(3, list(np.log(probabilities)))
    predict_calls: list[int] = []
    original_predict = model.predict

    def counting_predict(*args: Any, **kwargs: Any) -> Any:
        predict_calls.append(1)
        return original_predict(
            *args, verbose=0, **{k: v for k, v in kwargs.items() if k != "verbose"}
        )

    model.predict = counting_predict
    observation = np.array([0.1, -0.2, 0.3], dtype=np.float32)
    with calling("choose_action(model, observation)"), _quiet():
        single = choose_action(model, observation)
    if predict_calls:
        fail(
            "choose_action calls model.predict, which costs ~50 ms per call (it is made for whole "
            "data sets): training would take hours. Call the model directly: model(observation)."
        )
    value = as_array(single, "choose_action(model, observation)")
    if value.size != 1:
        fail(
            f"With single=True, choose_action should return one action (an integer); got "
            f"{describe(value)} of shape {value.shape}. Take the first entry of the sampled batch."
        )
    if int(value.reshape(())) not in (0, 1, 2) or value.reshape(()) != int(value.reshape(())):
        fail(
            f"choose_action returned {describe(value)}; actions of a 3-action policy are 0, 1 or 2."
        )

    n = 3000
    batch = np.tile(observation, (n, 1))
    with calling("choose_action(model, observations, single=False)"), _quiet():
        many = as_array(
            choose_action(model, batch, single=False), "choose_action(..., single=False)"
        )
    if many.reshape(-1).shape != (n,):
        fail(
            f"With single=False and a batch of {n} observations, choose_action should return {n} "
            f"actions (one per observation); got shape {many.shape}."
        )
    many = many.reshape(-1)
    if not np.all(np.isin(many, [0, 1, 2])):
        fail("choose_action(..., single=False) returned values that are not actions 0, 1 or 2.")
    freq = np.bincount(many.astype(np.int64), minlength=3) / n
    if freq.max() > 0.97:
        fail(
            "choose_action always picks the same action: it should SAMPLE from the policy's "
            "probabilities (tf.random.categorical), not take the most likely action (argmax)."
        )
    # Three standard deviations of a frequency from 3,000 draws are at most 0.03.
    if np.abs(freq - probabilities).max() > 0.05:
        fail(
            f"For a policy with probabilities {probabilities.tolist()} the actions were chosen with "
            f"frequencies {np.round(freq, 3).tolist()}. Sample from the softmax of the logits: "
            "tf.random.categorical(logits, num_samples=1) takes the logits themselves (not "
            "probabilities, not their softmax)."
        )
    passed(
        f"choose_action samples actions with the policy's probabilities "
        f"({[round(float(v), 2) for v in freq]} for {probabilities.tolist()}), one or a batch"
    )


# --- 3.3 memory ------------------------------------------------------------------------------------


def memory(Memory: type) -> None:
    """Memory records observations, actions and rewards; clear empties them; instances are separate."""
    with calling("Memory()"):
        first = Memory()
    for name in ("observations", "actions", "rewards"):
        if not isinstance(getattr(first, name, None), list):
            fail(f"A new Memory should have an empty list `{name}` (set in clear()).")
        if getattr(first, name):
            fail(f"A new Memory's `{name}` should be empty; it holds {getattr(first, name)!r}.")
    steps = [(np.array([0.1, 0.2]), 1, 1.0), (np.array([0.3, 0.4]), 0, 0.5)]
    with calling("memory.add_to_memory(observation, action, reward)"):
        for step in steps:
            first.add_to_memory(*step)
    if first.actions != [1, 0] or first.rewards != [1.0, 0.5] or len(first.observations) != 2:
        fail(
            "After add_to_memory(obs1, 1, 1.0) and add_to_memory(obs2, 0, 0.5), actions should be "
            f"[1, 0] and rewards [1.0, 0.5]; got actions {first.actions!r}, rewards {first.rewards!r}. "
            "Append each argument to its own list."
        )
    if not np.array_equal(first.observations[1], steps[1][0]):
        fail("memory.observations should hold the observations in the order they were added.")
    second = Memory()
    if second.actions or second.observations or second.rewards:
        fail(
            "A second Memory() already holds the first one's steps: every Memory needs its own "
            "lists. Create them in clear() with self.actions = [] (not as class attributes)."
        )
    with calling("memory.clear()"):
        first.clear()
    if first.actions or first.rewards or first.observations:
        fail("After clear(), all three lists should be empty again.")
    passed("Memory records observations, actions and rewards in order, and clear() empties it")


# --- 3.4 returns -----------------------------------------------------------------------------------


def _returns_case(
    func: Callable[..., Any], rewards: list[float], gamma: float, raw: list[float], what: str
) -> np.ndarray:
    with calling(what):
        got = as_array(func(rewards, gamma), what)
    if got.shape != (len(rewards),):
        fail(
            f"{what} should return one value per reward, shape ({len(rewards)},); got {got.shape}."
        )
    if not np.all(np.isfinite(got)):
        fail(f"{what} returned NaN or infinity: {describe(got)}.")
    expected = np.asarray(raw, dtype=np.float64)
    expected = (expected - expected.mean()) / expected.std()
    if np.allclose(got, raw, atol=1e-4):
        fail(
            f"{what} returned the discounted returns {describe(got)} without normalising them: "
            "pass them through normalize(...) before returning."
        )
    if not np.allclose(got, expected, atol=1e-4):
        fail(
            f"{what} should be normalize of the returns {raw}; got {describe(got)} "
            f"(expected {describe(expected)})."
        )
    return got


def discount_rewards(discount_rewards: Callable[..., Any]) -> None:
    """Returns R_t = r_t + gamma R_{t+1}, normalised; gamma is used."""
    # rewards [1, 1, 1] with gamma 0.5: R = [1 + 0.5 + 0.25, 1 + 0.5, 1]
    got = _returns_case(
        discount_rewards,
        [1.0, 1.0, 1.0],
        0.5,
        [1.75, 1.5, 1.0],
        "discount_rewards([1, 1, 1], gamma=0.5)",
    )
    # rewards [0, 0, 2] with gamma 0.9: R = [1.62, 1.8, 2]; also spreads differently with gamma
    _returns_case(
        discount_rewards,
        [0.0, 0.0, 2.0],
        0.9,
        [1.62, 1.8, 2.0],
        "discount_rewards([0, 0, 2], gamma=0.9)",
    )
    passed(
        f"discount_rewards gives normalised discounted returns ({[round(float(v), 3) for v in got]} for "
        "[1, 1, 1] with gamma 0.5)"
    )


def discount_rewards_pong(discount_rewards_pong: Callable[..., Any]) -> None:
    """Pong returns restart at every nonzero reward."""
    # a point lost at step 2, a point won at step 5: R = [0.25, 0.5, -1 | 0.25, 0.5, 1] with gamma 0.5
    rewards = [0.0, 0.0, -1.0, 0.0, 0.0, 1.0]
    raw = [-0.25, -0.5, -1.0, 0.25, 0.5, 1.0]
    what = "discount_rewards_pong([0, 0, -1, 0, 0, 1], gamma=0.5)"
    with calling(what):
        got = as_array(discount_rewards_pong(rewards, 0.5), what)
    if got.shape == (6,) and np.all(np.isfinite(got)):
        # without the restart the +1 leaks backwards: -1 + 0.5 * 0.25 = -0.875 at step 2
        carried = np.array([-0.21875, -0.4375, -0.875, 0.25, 0.5, 1.0])
        carried = (carried - carried.mean()) / carried.std()
        if np.allclose(got, carried, atol=1e-4):
            fail(
                f"{what}: the running sum carried the +1 of the second point into the first point's "
                "steps. Reset the running sum to 0 at every nonzero reward (a point was decided "
                "there) before adding that reward."
            )
    _returns_case(discount_rewards_pong, rewards, 0.5, raw, what)
    passed("discount_rewards_pong restarts the discounted sum at every point and normalises")


# --- 3.5 learning ----------------------------------------------------------------------------------


def compute_loss(compute_loss: Callable[..., Any]) -> None:
    """compute_loss = mean(-log pi(a|s) * R)."""
    logits = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    actions = np.array([0, 0, 1], dtype=np.int32)
    rewards = np.array([1.0, -0.5, 2.0], dtype=np.float32)
    what = "compute_loss(logits, actions, rewards)"
    with calling(what), _quiet():
        got = as_array(compute_loss(logits, actions, rewards), what)
    if got.size != 1:
        fail(f"{what} should be one number (the mean over the batch); got shape {got.shape}.")
    value = float(got.reshape(()))
    nll = np.log1p(np.exp(-np.array([0.0, 2.0, 1.0])))  # -log softmax of the action taken
    expected = float(np.mean(nll * rewards))
    if np.isclose(value, -expected, atol=1e-4):
        fail(
            f"{what} has the wrong sign: it should be the NEGATIVE log-probability times the "
            "return (minimising it makes well-rewarded actions more likely)."
        )
    if np.isclose(value, float(np.sum(nll * rewards)), atol=1e-4):
        fail(f"{what} should be the mean over the batch, not the sum (tf.reduce_mean).")
    if np.isclose(value, float(np.mean(nll)), atol=1e-4):
        fail(
            f"{what} ignores the rewards: weight each step's negative log-probability by its return."
        )
    if not np.isclose(value, expected, atol=1e-4):
        fail(
            f"{what} on a small case worked out by hand should be {expected:.4f}; got {value:.4f}. "
            "Use tf.nn.sparse_softmax_cross_entropy_with_logits(labels=actions, logits=logits) "
            "(the logits, not probabilities), multiply by the rewards, and take the mean."
        )
    passed(
        f"compute_loss is the mean of -log pi(a|s) * R ({value:.4f} on a case worked out by hand)"
    )


def train_step(train_step: Callable[..., Any]) -> None:
    """One step raises the log-probability of an action with a positive return, lowers a negative one."""
    rng = np.random.default_rng(_SEED)
    observations = rng.normal(size=(6, 3)).astype(np.float32)
    actions = np.array([0, 1, 2, 0, 1, 2], dtype=np.int32)
    returns = np.array([1.5, -1.0, 0.5, -0.5, 1.0, -1.5], dtype=np.float32)
    keras.utils.set_random_seed(_SEED)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(3)])
    before = [w.copy() for w in model.get_weights()]

    def logprob() -> np.ndarray:
        z = np.asarray(model(observations), dtype=np.float64)
        z = z - z.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        return np.asarray(logp[np.arange(6), actions])

    start = logprob()
    what = "train_step(model, optimizer, observations, actions, discounted_rewards)"
    with calling(what), _quiet():
        train_step(model, keras.optimizers.SGD(0.05), observations, actions, returns)
    if all(np.array_equal(a, b) for a, b in zip(before, model.get_weights(), strict=True)):
        fail(
            f"{what} did not change the model's weights: compute the gradients of the loss with "
            "tape.gradient and apply them with optimizer.apply_gradients."
        )
    change = logprob() - start
    weighted = float(np.sum(change * returns))
    if weighted < 0:
        fail(
            "After one training step, actions with negative returns became MORE likely and those "
            "with positive returns less likely: the update goes the wrong way. Minimise the loss "
            "of compute_loss (negative log-probability times the return)."
        )
    if not weighted > 0:
        fail("One training step did not change the log-probabilities of the actions taken.")
    passed("train_step makes actions with positive returns more likely and negative ones less")

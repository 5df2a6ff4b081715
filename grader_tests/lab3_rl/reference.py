"""Reference results for the hidden tests of lab3_rl. Never released, never sent to the kernel.

Plain NumPy, written independently of the notebook's solution and of `introdl.labs.lab3_rl`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

Array = np.ndarray[Any, Any]

# The Pong preprocessing recipe of the original lab (its `preprocess_pong`).
CROP = slice(35, 195)
BACKGROUND = (144, 109)


def normalized(x: Array) -> Array:
    values = np.asarray(x, dtype=np.float64)
    return np.asarray((values - values.mean()) / values.std())


def discounted_returns(rewards: Array, gamma: float) -> Array:
    """R_t = sum_k gamma^k r_{t+k}, unnormalised."""
    out = np.zeros(len(rewards))
    running = 0.0
    for t in range(len(rewards) - 1, -1, -1):
        running = running * gamma + float(rewards[t])
        out[t] = running
    return out


def discount_rewards(rewards: Array, gamma: float = 0.95) -> Array:
    return normalized(discounted_returns(rewards, gamma))


def pong_returns(rewards: Array, gamma: float) -> Array:
    """Discounted returns that restart after each point (a nonzero reward), unnormalised."""
    out = np.zeros(len(rewards))
    running = 0.0
    for t in range(len(rewards) - 1, -1, -1):
        if rewards[t] != 0:
            running = 0.0
        running = running * gamma + float(rewards[t])
        out[t] = running
    return out


def discount_rewards_pong(rewards: Array, gamma: float = 0.99) -> Array:
    return normalized(pong_returns(rewards, gamma))


def log_softmax(logits: Array) -> Array:
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    return np.asarray(z - np.log(np.exp(z).sum(axis=-1, keepdims=True)))


def softmax(logits: Array) -> Array:
    return np.asarray(np.exp(log_softmax(logits)))


def policy_loss(logits: Array, actions: Array, returns: Array) -> float:
    """mean_t( -log pi(a_t | s_t) * R_t )."""
    logp = log_softmax(logits)[np.arange(len(actions)), np.asarray(actions)]
    return float(np.mean(-logp * np.asarray(returns, dtype=np.float64)))


def objective(logits: Array, actions: Array, returns: Array) -> float:
    """mean_t( R_t log pi(a_t | s_t) ): what a policy-gradient step should raise."""
    return -policy_loss(logits, actions, returns)


def linear_policy_loss_gradient(
    x: Array, kernel: Array, bias: Array, actions: Array, returns: Array
) -> tuple[Array, Array]:
    """Gradient of `policy_loss` for logits = x @ kernel + bias, w.r.t. (kernel, bias)."""
    inputs = np.asarray(x, dtype=np.float64)
    logits = inputs @ kernel + bias
    onehot = np.eye(kernel.shape[1])[np.asarray(actions)]
    dlogits = (
        (softmax(logits) - onehot) * np.asarray(returns, dtype=np.float64)[:, None] / len(inputs)
    )
    return inputs.T @ dlogits, dlogits.sum(axis=0)


def cartpole_mlp(x: Array, weights: list[Array]) -> Array:
    """Logits of Dense(32, relu) -> Dense(n) with WEIGHTS = [W1, b1, W2, b2]."""
    w1, b1, w2, b2 = (np.asarray(w, dtype=np.float64) for w in weights)
    hidden = np.maximum(np.asarray(x, dtype=np.float64) @ w1 + b1, 0.0)
    return np.asarray(hidden @ w2 + b2)


def _dilate3(mask: Array) -> Array:
    padded = np.pad(mask, 1)
    h, w = mask.shape
    windows = [padded[i : i + h, j : j + w] for i in range(3) for j in range(3)]
    return np.asarray(np.max(np.stack(windows), axis=0))


def preprocess_pong(frame: Array) -> Array:
    """(210, 160, 3) uint8 frame -> (40, 40, 1) float of 0/1: crop, halve, drop background,
    binarise, dilate 3x3, halve."""
    red = np.asarray(frame)[CROP][::2, ::2, 0].astype(np.int64)
    mask = ((red != BACKGROUND[0]) & (red != BACKGROUND[1]) & (red != 0)).astype(np.float64)
    return _dilate3(mask)[::2, ::2, None]


def pong_change(previous: Array, current: Array) -> Array:
    return preprocess_pong(previous) - preprocess_pong(current)

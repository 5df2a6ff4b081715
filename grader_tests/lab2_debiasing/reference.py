"""Reference results for the hidden tests of lab2_debiasing. Never released to students.

NumPy in float64. The lab's convention: `logsigma` is log(sigma^2), the log of the variance.
"""

from __future__ import annotations

from typing import Any

import numpy as np

Array = np.ndarray[Any, Any]


def kl_divergence(mu: Array, logsigma: Array) -> Array:
    """KL(N(mu, exp(logsigma)) || N(0, I)) per sample, summed over the latent axis: (batch,)."""
    mu, logsigma = np.asarray(mu, np.float64), np.asarray(logsigma, np.float64)
    return 0.5 * np.sum(np.exp(logsigma) + mu**2 - 1.0 - logsigma, axis=1)


def reconstruction_error(x: Array, x_recon: Array) -> Array:
    """Mean absolute error per sample over all but the batch axis: (batch,)."""
    diff = np.abs(np.asarray(x, np.float64) - np.asarray(x_recon, np.float64))
    return diff.reshape(len(diff), -1).mean(axis=1)


def vae_loss(
    x: Array, x_recon: Array, mu: Array, logsigma: Array, kl_weight: float = 0.0005
) -> Array:
    return kl_weight * kl_divergence(mu, logsigma) + reconstruction_error(x, x_recon)


def sigmoid_cross_entropy(labels: Array, logits: Array) -> Array:
    """tf.nn.sigmoid_cross_entropy_with_logits, elementwise, in its numerically stable form."""
    z, y = np.asarray(logits, np.float64), np.asarray(labels, np.float64)
    return np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))


def debiasing_total(classification: Array, y: Array, vae: Array) -> float:
    """Mean over the batch of classification loss + [y == 1] * VAE loss, sample by sample."""
    faces = (np.asarray(y).reshape(-1) == 1).astype(np.float64)
    return float(np.mean(np.asarray(classification).reshape(-1) + faces * np.asarray(vae)))


def debiasing_loss(
    x: Array, x_pred: Array, y: Array, y_logit: Array, mu: Array, logsigma: Array
) -> tuple[float, Array]:
    """(total loss, per-sample classification loss (batch, 1)) of the DB-VAE."""
    classification = sigmoid_cross_entropy(y, y_logit)
    return debiasing_total(classification, y, vae_loss(x, x_pred, mu, logsigma)), classification


def grid_latents(
    rng: np.random.Generator, *, n: int, latent_dim: int, bins: int, rare: int
) -> tuple[Array, list[Array], Array]:
    """Latent means whose histograms the grader knows: (mu (n, latent_dim), rare sets, common).

    Every latent takes integer values 0 .. bins-1 before a random affine map, so with `bins`
    histogram bins each value falls in a bin of its own (the bins are (bins-1)/bins wide, and
    each integer sits at least 1/(bins-1) of a bin away from an edge). Most samples spread evenly
    over the lower half of the values; in each of two latents chosen at random, RARE samples of
    their own take the top value alone. The remaining latents spread every sample evenly.
    """
    half = max(2, bins // 2)
    mu = np.empty((n, latent_dim))
    for j in range(latent_dim):
        mu[:, j] = rng.permutation(np.arange(n) % bins)  # every bin equally full
    dims = rng.choice(latent_dim, size=2, replace=False)
    order = rng.permutation(n)
    rare_sets = [order[:rare], order[rare : 2 * rare]]
    for dim, members in zip(dims, rare_sets, strict=True):
        mu[:, dim] = rng.permutation(np.arange(n) % half)
        mu[members, dim] = bins - 1
    common = order[2 * rare :]
    scale = rng.uniform(0.5, 2.0, size=latent_dim)
    shift = rng.uniform(-3.0, 3.0, size=latent_dim)
    return mu * scale + shift, rare_sets, common

"""Public checks of Lab 2 Part 2 that train: adaptive re-sampling and the DB-VAE training step.

Re-exported by `introdl.checks.lab2_debiasing` (the notebook imports `from introdl.checks import
lab2_debiasing as check`); split from it so that each module reads whole.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from introdl.checks import as_array, calling, describe, fail, passed
from introdl.checks import quiet as _quiet

_SEED = 6191  # the checks' own inputs: a check that fails once fails again on re-run


def _f32(array: Any) -> tf.Tensor:
    return tf.constant(np.asarray(array), dtype=tf.float32)


def _rng(offset: int = 0) -> np.random.Generator:
    return np.random.default_rng(_SEED + offset)


# --- 2.5 Adaptive re-sampling --------------------------------------------------------------------


class _LatentsAsImages:
    """A stand-in model whose encoder returns its input as the latent means: `images` ARE latents."""

    def __init__(self, latent_dim: int) -> None:
        self.latent_dim = latent_dim

    def encode(self, x: Any) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        mu = _f32(x)
        return tf.zeros((mu.shape[0], 1)), mu, tf.zeros_like(mu)


def resampling(get_training_sample_probabilities: Callable[..., Any]) -> None:
    """Non-negative, sums to 1, and higher for samples whose latent values are rare."""
    n, latent = 400, 3
    # Values on a grid, so that each falls in a bin of its own: np.histogram's 10 bins between
    # the smallest value 0 and the largest 9 are 0.9 wide.
    mu = np.stack([np.arange(n) % 5, np.arange(n) % 10, np.arange(n) % 5], axis=1).astype(float)
    mu[:10, 0] = 9.0  # 10 images are rare in latent 0 ...
    mu[10:20, 2] = 9.0  # ... and 10 others in latent 2; in latent 1 every bin holds 40 images
    what = "get_training_sample_probabilities(images, dbvae)"
    with calling(
        what, "This check passes a stand-in model whose encode(x) returns x as the means."
    ):
        p = as_array(get_training_sample_probabilities(mu, _LatentsAsImages(latent)), what)
    if p.shape != (n,):
        fail(f"{what} should give one probability per image, shape ({n},); got {p.shape}.")
    if np.any(p < 0) or not np.isclose(p.sum(), 1.0, atol=1e-6):
        fail(
            f"the probabilities should be non-negative and sum to 1; they sum to {p.sum():.4g} "
            f"(smallest {p.min():.3g}). Divide by their sum at the end."
        )
    rare0, rare2, common = p[:10], p[10:20], p[20:]
    found0, found2 = rare0.min() > common.max(), rare2.min() > common.max()
    if not (found0 or found2):
        fail(
            "images whose latent value falls in a sparse histogram bin should get a higher "
            f"probability than every common image; they got {describe(rare0)} vs at most "
            f"{common.max():.4g}. The probability should grow with 1 / (smoothed density of the bin)."
        )
    if not (found0 and found2):
        fail(
            f"images rare in latent {2 if found0 else 0} are up-weighted, but those rare only in "
            f"latent {0 if found0 else 2} are not: combine the latent variables with an element-wise "
            "maximum (np.maximum), do not keep just one of them."
        )
    with calling(f"{what} with smoothing_fac=1e6"):
        flat = as_array(
            get_training_sample_probabilities(mu, _LatentsAsImages(latent), smoothing_fac=1e6),
            what,
        )
    if not np.allclose(flat, 1.0 / n, rtol=1e-3):
        fail(
            "with a huge smoothing_fac every bin looks equally dense, so the probabilities should "
            "be uniform (1 / N each): add smoothing_fac to the histogram density before inverting."
        )
    passed(
        "get_training_sample_probabilities up-weights the images with rare latent values "
        f"(rare: {rare0.mean():.4f}, common: {common.mean():.4f})"
    )


# --- 2.5 The training step -----------------------------------------------------------------------


def train_step(debiasing_train_step: Callable[..., Any], DB_VAE: type) -> None:
    """Repeated steps on one batch lower the loss and change the encoder and the decoder."""
    keras.utils.set_random_seed(_SEED)
    rng = _rng(5)
    b = 4
    x = rng.uniform(size=(b, 64, 64, 3)).astype("float32")
    y = np.array([[1.0], [0.0], [1.0], [0.0]], dtype="float32")
    with calling("DB_VAE(4)"), _quiet():
        model = DB_VAE(4)
        model(_f32(x))
    optimizer = keras.optimizers.Adam(1e-3)
    # A step compiled with @tf.function cannot create a second model's optimizer variables:
    # check the Python function inside it.
    step_function = getattr(debiasing_train_step, "python_function", debiasing_train_step)
    encoder_before = [w.numpy().copy() for w in model.encoder.trainable_weights]
    decoder_before = [w.numpy().copy() for w in model.decoder.trainable_weights]
    losses = []
    for step in range(8):
        with calling(f"debiasing_train_step(model, optimizer, x, y), step {step + 1}"), _quiet():
            loss = as_array(step_function(model, optimizer, x, y), "the returned loss")
        if loss.size != 1:
            fail(
                f"debiasing_train_step should return the total loss, one number; got {loss.shape}."
            )
        losses.append(float(loss.reshape(())))
    if not np.all(np.isfinite(losses)):
        fail(f"the loss became {losses}: check the loss you differentiate.")

    def moved(before: list[np.ndarray], weights: list[Any]) -> bool:
        return any(not np.allclose(a, w.numpy()) for a, w in zip(before, weights, strict=True))

    if not moved(encoder_before, model.encoder.trainable_weights):
        fail(
            "the encoder's weights did not change: compute the gradients of the loss with respect "
            "to model.trainable_variables and apply them with optimizer.apply_gradients."
        )
    if not moved(decoder_before, model.decoder.trainable_weights):
        fail(
            "the decoder's weights did not change: the loss you differentiate must include the "
            "VAE (reconstruction) term, computed on the model's own reconstruction."
        )
    if not np.mean(losses[-2:]) < np.mean(losses[:2]):
        fail(
            f"8 steps on the same batch should lower the loss; it went {describe(np.array(losses))}. "
            "Differentiate the total loss and apply the gradients (not their negatives)."
        )
    passed(
        f"debiasing_train_step lowers the loss on a fixed batch ({losses[0]:.3f} -> {losses[-1]:.3f})"
    )

"""Public checks for Lab 2 Part 2 (debiasing face detection with a DB-VAE), one per graded exercise.

Each function is named after the grade cell that calls it. The checks use shapes, properties and
cases whose answer is known in advance (a reconstruction equal to its input costs nothing, the KL
divergence of N(0, 1) from itself is 0, a variance of 4 gives samples with a standard deviation
of 2), never a reference implementation, so they can ship inside the student's notebook.

Convention of the lab: `logsigma` holds log(sigma^2), the log of the *variance*.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow as tf

from introdl.checks import CheckFailed, as_array, calling, describe, fail, passed
from introdl.checks import quiet as _quiet
from introdl.checks.lab2_debiasing_training import (
    _f32,
    _rng,
    resampling,
    train_step,
)

__all__ = [
    "CheckFailed",
    "dbvae_model",
    "debiasing_loss",
    "resampling",
    "sampling",
    "train_step",
    "vae_loss",
]


def _per_sample(value: Any, what: str, batch: int) -> np.ndarray:
    got = as_array(value, what)
    if got.shape != (batch,):
        hint = (
            " You averaged over the batch too: reduce only over the per-sample axes (axis=1 for "
            "the latent variables, axis=(1, 2, 3) for the pixels)."
            if got.size == 1
            else ""
        )
        fail(
            f"{what} should give one loss per sample, shape ({batch},); got shape {got.shape}.{hint}"
        )
    return got


# --- 2.4 The VAE loss ----------------------------------------------------------------------------


def vae_loss(vae_loss_function: Callable[..., Any]) -> None:
    """Per-sample kl_weight * KL(N(mu, exp(logsigma)) || N(0, I)) + mean |x - x_recon|."""
    rng = _rng()
    batch, latent = 4, 3
    x = _f32(rng.uniform(size=(batch, 8, 8, 3)))
    zeros = _f32(np.zeros((batch, latent)))
    what = "vae_loss_function(x, x, mu=0, logsigma=0)"
    with calling(what):
        got = _per_sample(vae_loss_function(x, x, zeros, zeros), what, batch)
    if not np.allclose(got, 0.0, atol=1e-6):
        fail(
            f"a perfect reconstruction (x_recon = x) with mu = 0 and logsigma = 0 (the prior N(0, 1) "
            f"itself) should cost 0; got {describe(got)}."
        )

    recon = x + _f32(np.full((batch, 8, 8, 3), 0.25))
    with calling("vae_loss_function(x, x + 0.25, mu=0, logsigma=0)"):
        got = as_array(vae_loss_function(x, recon, zeros, zeros), "the loss")
    if not np.allclose(got, 0.25, atol=1e-5):
        hint = (
            " It is 0.25 * kl_weight: weight only the KL term, not the reconstruction error."
            if np.allclose(got, 0.25 * 0.0005, rtol=1e-3)
            else " Use the mean (not the sum, not the square) of |x - x_recon| over height, "
            "width and channels."
        )
        fail(
            "with every pixel of the reconstruction off by 0.25 and the latent loss 0, the loss should "
            f"be the mean absolute error, 0.25 per sample; got {describe(got)}.{hint}"
        )

    mu = _f32(np.tile([[1.0, 0.0, 0.0]], (batch, 1)))
    with calling("vae_loss_function(x, x, mu, logsigma=0, kl_weight=1.0)"):
        got = as_array(vae_loss_function(x, x, mu, zeros, kl_weight=1.0), "the loss")
    if not np.allclose(got, 0.5, atol=1e-5):
        hint = " The KL divergence must not be negative: check its sign." if got.min() < 0 else ""
        fail(
            "with mu = (1, 0, 0), logsigma = 0 and kl_weight = 1, the latent loss is "
            f"1/2 * mu^2 = 0.5 per sample; got {describe(got)}.{hint}"
        )

    logvar = _f32(np.full((batch, latent), np.log(2.0)))
    with calling("vae_loss_function(x, x, mu=0, logsigma=log 2, kl_weight=1.0)"):
        got = as_array(vae_loss_function(x, x, zeros, logvar, kl_weight=1.0), "the loss")
    expected = 0.5 * latent * (2.0 - 1.0 - np.log(2.0))
    if not np.allclose(got, expected, atol=1e-4):
        fail(
            "with mu = 0 and a variance of 2 in each of 3 latent dimensions (logsigma = log 2, since "
            "logsigma is the log of the variance) and kl_weight = 1, the latent loss is "
            f"1/2 * 3 * (2 - 1 - log 2) = {expected:.4f}; got {describe(got)}. Use exp(logsigma) for "
            "the variance sigma^2 and logsigma itself for log(sigma^2)."
        )

    with calling("vae_loss_function with kl_weight 0.001 and 0.002"):
        small = as_array(vae_loss_function(x, recon, mu, logvar, kl_weight=0.001), "the loss")
        double = as_array(vae_loss_function(x, recon, mu, logvar, kl_weight=0.002), "the loss")
    if not np.allclose(double - 0.25, 2 * (small - 0.25), atol=1e-5):
        fail(
            "doubling kl_weight should double the latent part of the loss and leave the "
            "reconstruction part alone: multiply only the KL term by kl_weight."
        )
    passed("vae_loss_function gives kl_weight * KL + mean |x - x_recon| for each sample")


# --- 2.4 Reparameterisation ----------------------------------------------------------------------


def sampling(sampling: Callable[[Any, Any], Any]) -> None:
    """z = mu + exp(logsigma / 2) * eps, with a fresh eps ~ N(0, I) of the shape of mu."""
    n, latent = 4000, 3
    mu = _f32(np.tile([[-2.0, 0.0, 3.0]], (n, 1)))
    logvar = _f32(np.tile([[0.0, np.log(4.0), np.log(0.25)]], (n, 1)))
    with calling("sampling(z_mean, z_logsigma)"):
        z = as_array(sampling(mu, logvar), "sampling(z_mean, z_logsigma)")
    if z.shape != (n, latent):
        fail(
            f"sampling on (batch, latent_dim) = ({n}, {latent}) means should return one sample per "
            f"entry, shape ({n}, {latent}); got {z.shape}. Draw epsilon with the shape of z_mean."
        )
    means, stds = z.mean(axis=0), z.std(axis=0)
    if not np.allclose(means, [-2.0, 0.0, 3.0], atol=0.15):
        fail(
            f"the samples should average to z_mean = [-2, 0, 3]; their averages are {describe(means)}. "
            "Add z_mean to the scaled noise."
        )
    want = np.array([1.0, 2.0, 0.5])
    if not np.allclose(stds, want, rtol=0.1):
        hint = ""
        if np.allclose(stds, want**2, rtol=0.1):
            hint = " They match the variance instead: sigma = exp(logsigma / 2)."
        elif np.allclose(stds, 1.0, rtol=0.1):
            hint = " The noise is not scaled at all: multiply epsilon by sigma."
        fail(
            "logsigma is the log of the variance, so logsigma = [0, log 4, log 1/4] means standard "
            f"deviations [1, 2, 0.5]; the samples have {describe(stds)}.{hint}"
        )
    with calling("sampling(z_mean, z_logsigma) a second time"):
        again = as_array(sampling(mu, logvar), "sampling(z_mean, z_logsigma)")
    if np.allclose(again, z):
        fail("two calls gave the same samples: draw new noise (tf.random.normal) on every call.")
    passed("sampling(z_mean, z_logsigma) draws z = mu + exp(logsigma / 2) * epsilon")


# --- 2.5 The DB-VAE loss -------------------------------------------------------------------------


def _batch(labels: list[float], offset: int) -> tuple[tf.Tensor, ...]:
    rng = _rng(offset)
    b, latent = len(labels), 4
    x = _f32(rng.uniform(size=(b, 8, 8, 3)))
    x_pred = _f32(rng.uniform(size=(b, 8, 8, 3)))
    y = _f32(np.asarray(labels).reshape(b, 1))
    y_logit = _f32(rng.normal(size=(b, 1)))
    mu = _f32(rng.normal(size=(b, latent)))
    logsigma = _f32(rng.normal(scale=0.5, size=(b, latent)))
    return x, x_pred, y, y_logit, mu, logsigma


def _unpack(result: Any, what: str) -> tuple[float, np.ndarray]:
    if not isinstance(result, tuple | list) or len(result) != 2:
        fail(f"{what} should return two values: (total_loss, classification_loss).")
    total = as_array(result[0], "total_loss")
    if total.size != 1:
        fail(
            f"total_loss should be one number, the mean over the batch; got shape {total.shape}. "
            "Average with tf.reduce_mean."
        )
    return float(total.reshape(())), as_array(result[1], "classification_loss")


def debiasing_loss(
    debiasing_loss_function: Callable[..., Any], vae_loss_function: Callable[..., Any]
) -> None:
    """Total = mean(classification loss + [is a face] * VAE loss); returns (total, class loss)."""
    x, x_pred, y, y_logit, mu, logsigma = _batch([0.0, 0.0, 0.0], 1)
    what = "debiasing_loss_function(...) on a batch of non-faces"
    with calling(what):
        total, class_loss = _unpack(
            debiasing_loss_function(x, x_pred, y, y_logit, mu, logsigma), what
        )
    if class_loss.size != 3:
        fail(
            f"classification_loss should hold one value per sample (3 here); got shape {class_loss.shape}."
        )
    logits = y_logit.numpy().reshape(-1)
    bce = np.logaddexp(0.0, logits)  # cross-entropy of label 0: log(1 + e^logit)
    if not np.allclose(class_loss.reshape(-1), bce, atol=1e-5):
        fail(
            "classification_loss should be the sigmoid cross-entropy of the labels and the logits "
            "(tf.nn.sigmoid_cross_entropy_with_logits(labels=y, logits=y_logit)), per sample; for "
            f"label 0 that is log(1 + e^logit) = {describe(bce)}; got {describe(class_loss.reshape(-1))}."
        )
    if not np.isclose(total, bce.mean(), atol=1e-5):
        fail(
            "for a batch of non-faces the total loss should be the mean classification loss only "
            f"({bce.mean():.4f}): the VAE term counts only for faces (y == 1); got {total:.4f}."
        )

    labels = [1.0, 0.0, 1.0, 1.0]
    x, x_pred, y, y_logit, mu, logsigma = _batch(labels, 2)
    what = "debiasing_loss_function(...) on a batch of 3 faces and 1 non-face"
    with calling(what):
        total, class_loss = _unpack(
            debiasing_loss_function(x, x_pred, y, y_logit, mu, logsigma), what
        )
    with calling("vae_loss_function(x, x_pred, mu, logsigma)"):
        vae = as_array(vae_loss_function(x, x_pred, mu, logsigma), "vae_loss_function(...)")
    per_sample = class_loss.reshape(-1) + np.asarray(labels) * vae.reshape(-1)
    if not np.isclose(total, per_sample.mean(), rtol=1e-4, atol=1e-5):
        hint = ""
        if np.isclose(total, class_loss.mean() + np.mean(labels) * vae.mean(), rtol=1e-4):
            hint = (
                " Your total matches mean(classification) + mean(face) * mean(VAE): a (batch, 1) "
                "tensor times a (batch,) tensor broadcasts to (batch, batch). Make the shapes match "
                "(e.g. take [:, 0] of the (batch, 1) tensors) before multiplying."
            )
        fail(
            "the total should be the batch mean of classification_loss + face_indicator * vae_loss, "
            f"sample by sample ({per_sample.mean():.4f} here); got {total:.4f}.{hint}"
        )
    passed("debiasing_loss_function adds the VAE loss for faces only and averages over the batch")


# --- 2.5 The DB-VAE model ------------------------------------------------------------------------


def _shape(value: Any, shape: tuple[int, ...], what: str) -> np.ndarray:
    got = as_array(value, what)
    if got.shape != shape:
        fail(f"{what} should have shape {shape}; got {got.shape}.")
    return got


def dbvae_model(DB_VAE: type) -> None:
    """encode / reparameterize / decode / call / predict return what their docstrings say."""
    latent, b = 6, 2
    with calling(f"DB_VAE({latent})"), _quiet():
        model = DB_VAE(latent)
    x = _f32(_rng(3).uniform(size=(b, 64, 64, 3)))
    with calling("dbvae.encode(x)"), _quiet():
        encoded = model.encode(x)
    if not isinstance(encoded, tuple | list) or len(encoded) != 3:
        fail("encode(x) should return three tensors: (y_logit, z_mean, z_logsigma).")
    y_logit = _shape(encoded[0], (b, 1), "y_logit from encode(x)")
    z_mean = _shape(encoded[1], (b, latent), "z_mean from encode(x)")
    z_logsigma = _shape(encoded[2], (b, latent), "z_logsigma from encode(x)")
    if np.allclose(z_mean, z_logsigma):
        fail(
            "z_mean and z_logsigma are equal: take them from different columns of the encoder output."
        )
    with calling("dbvae.reparameterize(z_mean, z_logsigma)"), _quiet():
        z = _shape(model.reparameterize(encoded[1], encoded[2]), (b, latent), "reparameterize(...)")
    with calling("dbvae.decode(z)"), _quiet():
        _shape(model.decode(_f32(z)), (b, 64, 64, 3), "decode(z)")
    with calling("dbvae(x)"), _quiet():
        outputs = model(x)
    if not isinstance(outputs, tuple | list) or len(outputs) != 4:
        fail(
            "calling the model, dbvae(x), should return four tensors: (y_logit, z_mean, z_logsigma, recon)."
        )
    for value, shape, name in zip(
        outputs,
        ((b, 1), (b, latent), (b, latent), (b, 64, 64, 3)),
        ("y_logit", "z_mean", "z_logsigma", "recon"),
        strict=True,
    ):
        _shape(value, shape, f"{name} from dbvae(x)")
    if not np.allclose(as_array(outputs[1], "z_mean"), z_mean, atol=1e-5):
        fail("dbvae(x) should encode x with self.encode: its z_mean differs from encode(x)'s.")
    with calling("dbvae.predict(x)"), _quiet():
        logit = _shape(model.predict(x), (b, 1), "predict(x)")
    if not np.allclose(logit, y_logit, atol=1e-5):
        fail("predict(x) should return the y_logit of encode(x) (the face / not-face logit).")
    passed(
        f"DB_VAE({latent}): encode, reparameterize, decode, call and predict give the right shapes"
    )

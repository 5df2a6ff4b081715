"""Hidden tests for lab2_debiasing (debiasing face detection with a DB-VAE). Never released.

Inputs are drawn at grading time from the `rng` fixture; references are in reference.py. The
lab's convention, stated in the notebook: `logsigma` is log(sigma^2), the log of the variance.
Objects the tests make in the student's kernel have names starting with `_grader_`; the kernel
helpers in in_kernel.py turn the grader's NumPy arrays into tf tensors, as the notebook's own
code passes them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from grader_tests.lab2_debiasing import reference
from grader_tests.lab2_debiasing.inputs import (
    IN_KERNEL,
    LOSS_RATIO,
    TRAIN_STEPS,
    call,
    debiasing_batch,
    debiasing_result,
    f32,
    images,
    mixed_labels,
    per_sample,
    probabilities,
    train,
    vae_inputs,
)
from introdl.grading.authoring import as_array, assert_close, assert_shape, assert_true, close

pytestmark = pytest.mark.budget(seconds=60)


@pytest.fixture(scope="module")
def kernel(student: Any) -> Any:
    """The student's kernel with the grader's in_kernel.py installed."""
    student.install(IN_KERNEL)
    return student


# --- 2.4a the VAE loss ------------------------------------------------------------------------
@pytest.mark.grade("vae_loss", points=1.5)
def test_vae_loss_matches_the_reference_on_random_tensors(kernel, rng) -> None:
    x, x_recon, mu, logsigma = vae_inputs(rng)
    kl_weight = float(rng.uniform(0.05, 2.0))
    got = per_sample(
        call(kernel, "vae_loss_function", x, x_recon, mu, logsigma, kl_weight=kl_weight),
        len(x),
        "vae_loss_function",
    )
    assert_close(
        got,
        reference.vae_loss(x, x_recon, mu, logsigma, kl_weight),
        "vae_loss_function should be kl_weight * 1/2 sum(exp(logsigma) + mu^2 - 1 - logsigma) "
        "+ mean |x - x_recon|, per sample (logsigma is the log of the variance)",
    )
    default = call(kernel, "vae_loss_function", x, x_recon, mu, logsigma)
    assert_close(
        default,
        reference.vae_loss(x, x_recon, mu, logsigma, 0.0005),
        "vae_loss_function's kl_weight should default to 0.0005",
    )


@pytest.mark.grade("vae_loss", points=0.75)
def test_vae_loss_scales_its_latent_term_with_kl_weight(kernel, rng) -> None:
    x, x_recon, mu, logsigma = vae_inputs(rng)
    w = float(rng.uniform(0.1, 1.0))
    low = as_array(
        call(kernel, "vae_loss_function", x, x_recon, mu, logsigma, kl_weight=w), "the loss"
    )
    high = as_array(
        call(kernel, "vae_loss_function", x, x_recon, mu, logsigma, kl_weight=3 * w), "the loss"
    )
    none = as_array(
        call(kernel, "vae_loss_function", x, x_recon, mu, logsigma, kl_weight=0.0), "the loss"
    )
    assert_close(
        high - low,
        2 * w * reference.kl_divergence(mu, logsigma),
        "tripling kl_weight should add twice kl_weight * KL: only the latent term is weighted",
    )
    assert_close(
        none,
        reference.reconstruction_error(x, x_recon),
        "with kl_weight = 0 the loss should be the mean absolute reconstruction error alone",
    )


@pytest.mark.grade("vae_loss", points=0.75)
def test_vae_loss_has_no_latent_cost_at_the_prior(kernel, rng) -> None:
    x, x_recon, mu, _ = vae_inputs(rng)
    zeros = np.zeros_like(mu)
    got = per_sample(
        call(kernel, "vae_loss_function", x, x_recon, zeros, zeros, kl_weight=5.0),
        len(x),
        "vae_loss_function",
    )
    assert_close(
        got,
        reference.reconstruction_error(x, x_recon),
        "at mu = 0 and logsigma = 0 (the prior N(0, 1) itself) the KL term should be 0",
    )
    same = call(kernel, "vae_loss_function", x, x, mu, zeros, kl_weight=1.0)
    assert_true(
        bool(np.all(as_array(same, "the loss") >= -1e-6)),
        "the KL divergence is never negative: check its sign",
    )


# --- 2.4b sampling ------------------------------------------------------------------------------
@pytest.mark.grade("sampling", points=1.5)
def test_sampling_statistics_match_the_mean_and_the_declared_variance(kernel, rng) -> None:
    n, latent = 20000, int(rng.integers(2, 6))
    mu = rng.uniform(-3, 3, size=latent)
    # |log variance| >= 0.5: sigma and sigma^2 differ by at least 28%, far beyond sampling noise
    logvar = rng.choice([-1, 1], size=latent) * rng.uniform(0.5, 2.0, size=latent)
    z = assert_shape(
        call(
            kernel,
            "sampling",
            np.tile(mu, (n, 1)).astype("float32"),
            np.tile(logvar, (n, 1)).astype("float32"),
        ),
        (n, latent),
        "sampling(z_mean, z_logsigma) should return one sample per entry of z_mean",
    )
    sigma = np.exp(logvar / 2)
    assert_true(
        bool(np.all(np.abs(z.mean(axis=0) - mu) < 6 * sigma / np.sqrt(n))),
        "the samples of sampling(z_mean, z_logsigma) should average to z_mean",
    )
    assert_true(
        bool(np.all(np.abs(z.std(axis=0) / sigma - 1) < 6 / np.sqrt(2 * n))),
        "the samples should have standard deviation exp(z_logsigma / 2): z_logsigma is the log of "
        "the variance, so sigma = exp(z_logsigma / 2)",
    )


@pytest.mark.grade("sampling", points=0.5)
def test_sampling_draws_fresh_independent_noise(kernel, rng) -> None:
    n, latent = 2000, int(rng.integers(2, 6))
    zeros = np.zeros((n, latent), dtype="float32")
    first = as_array(call(kernel, "sampling", zeros, zeros), "sampling(...)")
    second = as_array(call(kernel, "sampling", zeros, zeros), "sampling(...)")
    assert_true(
        not close(first, second, rtol=1e-5, atol=1e-8),
        "two calls of sampling should draw new noise (tf.random.normal inside the function)",
    )
    assert_true(
        bool(np.all(np.abs(first.std(axis=0) - 1) < 0.15)),
        "every sample in the batch needs its own noise: draw epsilon with the shape of z_mean",
    )


# --- 2.5a the DB-VAE loss -----------------------------------------------------------------------


@pytest.mark.grade("debiasing_loss", points=1.5)
def test_debiasing_loss_matches_the_reference_on_random_batches(kernel, rng) -> None:
    inputs = debiasing_batch(rng, mixed_labels(rng))
    x, x_pred, y, _, mu, logsigma = inputs
    total, classification = debiasing_result(kernel, inputs)
    expected_total, expected_classification = reference.debiasing_loss(*inputs)
    assert_close(
        classification.reshape(-1),
        expected_classification.reshape(-1),
        "classification_loss should be the sigmoid cross-entropy of y and y_logit, per sample",
    )
    # Graded on its own: a total built from the student's own VAE loss counts as right too.
    own_vae = as_array(call(kernel, "vae_loss_function", x, x_pred, mu, logsigma), "vae loss")
    candidates = [expected_total]
    if own_vae.shape == (len(x),):
        candidates.append(reference.debiasing_total(expected_classification, y, own_vae))
    assert_true(
        any(close(total, c) for c in candidates),
        "total_loss should be the batch mean of classification_loss + face_indicator * vae_loss, "
        "sample by sample (mind (batch, 1) x (batch,) broadcasting to (batch, batch))",
    )


@pytest.mark.grade("debiasing_loss", points=1)
def test_debiasing_loss_ignores_the_vae_term_for_non_faces(kernel, rng) -> None:
    labels = mixed_labels(rng)
    inputs = debiasing_batch(rng, labels)
    total, _ = debiasing_result(kernel, inputs)
    x, x_pred, y, y_logit, mu, logsigma = inputs
    # Every non-face's VAE loss goes UP, so a total that wrongly counts non-faces moves, whatever
    # it weights them with: no two changes can cancel (as +0.0585 and -0.0586 once did when the
    # reconstructions moved either way). Per pixel, the value in [0, 1] farthest from x is
    # at least as far as any reconstruction; mu moves away from the prior's mean 0.
    non_face = labels == 0
    changed = x_pred.copy()
    changed[non_face] = np.where(x[non_face] < 0.5, 1.0, 0.0)
    changed_mu = mu.copy()
    changed_mu[non_face] += np.where(mu[non_face] >= 0, 3.0, -3.0)
    total_changed, _ = debiasing_result(kernel, (x, changed, y, y_logit, changed_mu, logsigma))
    assert_true(
        close(total_changed, total),
        "the reconstructions and latents of non-faces (y == 0) should not change the total loss: "
        "the VAE term counts for faces only",
    )
    non_faces = debiasing_batch(rng, np.zeros(int(rng.integers(2, 7))))
    total_non, _ = debiasing_result(kernel, non_faces)
    assert_close(
        total_non,
        float(np.mean(reference.sigmoid_cross_entropy(non_faces[2], non_faces[3]))),
        "for a batch of non-faces the total loss should be the mean classification loss alone",
    )


@pytest.mark.grade("debiasing_loss", points=0.5)
def test_debiasing_loss_adds_the_vae_term_for_faces(kernel, rng) -> None:
    faces = debiasing_batch(rng, np.ones(int(rng.integers(2, 7))))
    total, _ = debiasing_result(kernel, faces)
    x, x_pred, y, y_logit, mu, logsigma = faces
    classification = reference.sigmoid_cross_entropy(y, y_logit)
    own_vae = as_array(call(kernel, "vae_loss_function", x, x_pred, mu, logsigma), "vae loss")
    candidates = [reference.debiasing_loss(*faces)[0]]
    if own_vae.shape == (len(x),):  # graded on its own, as above
        candidates.append(reference.debiasing_total(classification, y, own_vae))
    assert_true(
        any(close(total, c) for c in candidates),
        "for a batch of faces the total loss should be the mean of classification + VAE loss",
    )


# --- 2.5b the DB-VAE model ----------------------------------------------------------------------


@pytest.mark.grade("dbvae_model", points=2)
def test_dbvae_methods_return_the_documented_shapes(kernel, rng) -> None:
    latent, batch = int(rng.integers(2, 13)), int(rng.integers(1, 6))
    kernel.call("DB_VAE", latent, store_as="_grader_dbvae")
    x = images(rng, batch)
    encoded = call(kernel, "_grader_dbvae.encode", x)
    assert_true(
        isinstance(encoded, tuple | list) and len(encoded) == 3,
        "DB_VAE.encode(x) should return (y_logit, z_mean, z_logsigma)",
    )
    for value, shape, name in zip(
        encoded,
        ((batch, 1), (batch, latent), (batch, latent)),
        ("y_logit", "z_mean", "z_logsigma"),
        strict=True,
    ):
        assert_shape(value, shape, f"encode(x): {name} has the wrong shape for DB_VAE({latent})")
    z = call(kernel, "_grader_dbvae.reparameterize", encoded[1], encoded[2])
    assert_shape(
        z, (batch, latent), "reparameterize(z_mean, z_logsigma) should be (batch, latent_dim)"
    )
    recon = call(kernel, "_grader_dbvae.decode", as_array(z, "z"))
    assert_shape(recon, (batch, 64, 64, 3), "decode(z) should return images (batch, 64, 64, 3)")
    outputs = call(kernel, "_grader_dbvae", x)
    assert_true(
        isinstance(outputs, tuple | list) and len(outputs) == 4,
        "calling the DB_VAE should return (y_logit, z_mean, z_logsigma, recon)",
    )
    for value, shape, name in zip(
        outputs,
        ((batch, 1), (batch, latent), (batch, latent), (batch, 64, 64, 3)),
        ("y_logit", "z_mean", "z_logsigma", "recon"),
        strict=True,
    ):
        assert_shape(value, shape, f"DB_VAE call: {name} has the wrong shape")
    assert_shape(
        call(kernel, "_grader_dbvae.predict", x),
        (batch, 1),
        "predict(x) should be (batch, 1) logits",
    )


@pytest.mark.grade("dbvae_model", points=1)
def test_dbvae_call_and_predict_agree_with_encode(kernel, rng) -> None:
    latent, batch = int(rng.integers(2, 9)), int(rng.integers(2, 5))
    kernel.call("DB_VAE", latent, store_as="_grader_dbvae2")
    x = images(rng, batch)
    y_logit, z_mean, z_logsigma = (
        as_array(v, "encode") for v in call(kernel, "_grader_dbvae2.encode", x)
    )
    outputs = call(kernel, "_grader_dbvae2", x)
    assert_close(
        outputs[1],
        z_mean,
        "the DB_VAE call should return the z_mean of encode(x)",
        rtol=1e-4,
        atol=1e-4,
    )
    assert_close(
        outputs[2],
        z_logsigma,
        "the DB_VAE call should return the z_logsigma of encode(x)",
        rtol=1e-4,
        atol=1e-4,
    )
    assert_close(
        call(kernel, "_grader_dbvae2.predict", x),
        y_logit,
        "predict(x) should return encode(x)'s y_logit",
        rtol=1e-4,
        atol=1e-4,
    )
    mu = f32(rng, batch, latent)
    tiny = np.full((batch, latent), -30.0, dtype="float32")  # sigma = exp(-15)
    assert_close(
        call(kernel, "_grader_dbvae2.reparameterize", mu, tiny),
        mu,
        "reparameterize(mu, logsigma) with a vanishing variance should return mu (use sampling)",
        rtol=1e-4,
        atol=1e-4,
    )


# --- 2.5c re-sampling ---------------------------------------------------------------------------


@pytest.mark.grade("resampling", points=1)
def test_resampling_weights_are_a_probability_distribution(kernel, rng) -> None:
    n, latent = int(rng.integers(200, 600)), int(rng.integers(2, 12))
    latents = rng.normal(size=(n, latent)) * rng.uniform(0.2, 3.0, size=latent)
    p = probabilities(kernel, latents)
    assert_true(bool(np.all(np.isfinite(p))), "the re-sampling probabilities should be finite")
    assert_true(bool(np.all(p >= 0)), "the re-sampling probabilities should not be negative")
    assert_true(
        close(p.sum(), 1.0, rtol=1e-5, atol=1e-6),  # np.random.choice's own check is tight
        f"the re-sampling probabilities should sum to 1 (np.random.choice needs it); they sum to {p.sum():.4g}",
    )


@pytest.mark.grade("resampling", points=1.5)
def test_resampling_favours_latent_values_in_sparse_bins(kernel, rng) -> None:
    bins = int(rng.choice([6, 10, 16]))
    n, latent = int(rng.integers(300, 600)), int(rng.integers(2, 9))
    latents, rare_sets, common = reference.grid_latents(
        rng, n=n, latent_dim=latent, bins=bins, rare=int(rng.integers(3, 11))
    )
    p = probabilities(kernel, latents, bins=bins)
    for k, rare in enumerate(rare_sets):
        assert_true(
            bool(p[rare].min() > p[common].max()),
            "images whose latent value lies in a sparse histogram bin should get a higher "
            "probability than every common image"
            + (
                ""
                if k == 0
                else " (also when the rare latent is not the last one: combine the latent variables "
                "with an element-wise maximum)"
            ),
        )


@pytest.mark.grade("resampling", points=0.5)
def test_resampling_flattens_with_a_large_smoothing_factor(kernel, rng) -> None:
    n, latent = int(rng.integers(200, 500)), int(rng.integers(2, 8))
    latents, _, _ = reference.grid_latents(rng, n=n, latent_dim=latent, bins=10, rare=5)
    p = probabilities(kernel, latents, smoothing_fac=1e6)
    assert_close(
        p,
        np.full(n, 1.0 / n),
        "with a huge smoothing_fac every bin looks equally dense: the probabilities should be uniform",
        rtol=1e-3,
        atol=0,
    )


# --- 2.5d the training step ---------------------------------------------------------------------


@pytest.mark.trains
@pytest.mark.grade("train_step", points=1.5)
@pytest.mark.budget(seconds=120)
def test_training_steps_lower_the_total_loss_on_a_fixed_batch(kernel, rng, seed) -> None:
    losses, _ = train(kernel, rng, seed, steps=TRAIN_STEPS)
    assert_true(bool(np.all(np.isfinite(losses))), "the loss should stay finite during training")
    assert_true(
        losses[-3:].mean() < LOSS_RATIO * losses[:3].mean(),
        f"{TRAIN_STEPS} steps of debiasing_train_step on one batch should lower the total loss "
        f"clearly; it went from {losses[:3].mean():.3f} to {losses[-3:].mean():.3f} (means of 3 steps)",
    )


@pytest.mark.trains
@pytest.mark.grade("train_step", points=0.5)
@pytest.mark.budget(seconds=90)
def test_training_step_updates_encoder_and_decoder(kernel, rng, seed) -> None:
    _, (encoder_moved, decoder_moved) = train(kernel, rng, seed, steps=2)
    assert_true(
        encoder_moved > 0,
        "debiasing_train_step should update the encoder: apply the gradients of the total loss "
        "to model.trainable_variables",
    )
    assert_true(
        decoder_moved > 0,
        "debiasing_train_step should update the decoder too: differentiate the total loss, VAE "
        "term included, computed on the model's own reconstruction",
    )

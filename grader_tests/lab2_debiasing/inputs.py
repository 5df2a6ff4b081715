"""The inputs lab2_debiasing's hidden tests draw, and the calls they make into the kernel.

A topic module of the suite (docs/hidden-tests.md): random images, latents and batches drawn from
the test's `rng`, the door calls that pass them to the student's functions through in_kernel.py
(as float32 tensors, as the notebook's own code passes them), and the train-step test's training
run. test_lab2_debiasing.py holds the tests; calibrate.py measures the train-step ratio with `train`'s
kernel side.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from introdl.grading.authoring import as_array, assert_shape, assert_true

# The train-step test: steps on one fixed batch, and the most the mean of the last 3 losses may be
# of the first 3. The reference's ratio stays near 0.3-0.4 (CALIBRATION.md).
TRAIN_STEPS = 10
LOSS_RATIO = 0.8

IN_KERNEL = Path(__file__).with_name("in_kernel.py")  # installed in the student's kernel


def call(kernel: Any, name: str, *args: Any, **kwargs: Any) -> Any:
    """The submission's NAME called on float32 tensors (an error names the student's function)."""
    return kernel.call(f"{kernel.install(IN_KERNEL)}.call", name, *args, **kwargs)


def f32(rng: np.random.Generator, *shape: int, scale: float = 1.0) -> np.ndarray:
    return (rng.normal(size=shape) * scale).astype("float32")


def vae_inputs(rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    batch, latent = int(rng.integers(2, 7)), int(rng.integers(2, 11))
    h, w = int(rng.integers(4, 17)), int(rng.integers(4, 17))
    x = rng.uniform(size=(batch, h, w, 3)).astype("float32")
    x_recon = rng.uniform(size=(batch, h, w, 3)).astype("float32")
    return x, x_recon, f32(rng, batch, latent), f32(rng, batch, latent, scale=0.8)


def per_sample(value: Any, batch: int, what: str) -> np.ndarray:
    return assert_shape(
        value,
        (batch,),
        f"{what} should return one loss per sample, shape (batch,), not a mean over the batch",
    )


def debiasing_batch(rng: np.random.Generator, labels: np.ndarray) -> tuple[np.ndarray, ...]:
    batch, latent = len(labels), int(rng.integers(2, 9))
    h = int(rng.integers(4, 13))
    x = rng.uniform(size=(batch, h, h, 3)).astype("float32")
    x_pred = rng.uniform(size=(batch, h, h, 3)).astype("float32")
    y = labels.reshape(batch, 1).astype("float32")
    return (
        x,
        x_pred,
        y,
        f32(rng, batch, 1, scale=2.0),
        f32(rng, batch, latent),
        f32(rng, batch, latent, scale=0.8),
    )


def debiasing_result(kernel: Any, inputs: tuple[np.ndarray, ...]) -> tuple[float, np.ndarray]:
    result = call(kernel, "debiasing_loss_function", *inputs)
    assert_true(
        isinstance(result, tuple | list) and len(result) == 2,
        "debiasing_loss_function should return (total_loss, classification_loss)",
    )
    total = as_array(result[0], "total_loss")
    assert_true(total.size == 1, "total_loss should be one number, the mean over the batch")
    return float(total.reshape(())), as_array(result[1], "classification_loss")


def mixed_labels(rng: np.random.Generator) -> np.ndarray:
    batch = int(rng.integers(4, 9))
    labels = rng.integers(0, 2, size=batch)
    labels[:2] = (1, 0)  # at least one face and one non-face
    return rng.permutation(labels)


def images(rng: np.random.Generator, batch: int) -> np.ndarray:
    return rng.uniform(size=(batch, 64, 64, 3)).astype("float32")


def probabilities(kernel: Any, latents: np.ndarray, **kwargs: Any) -> np.ndarray:
    lab = kernel.install(IN_KERNEL)
    p = as_array(
        kernel.call(f"{lab}.probabilities", latents.astype("float32"), **kwargs),
        "get_training_sample_probabilities(...)",
    )
    assert_true(
        p.shape == (len(latents),),
        f"get_training_sample_probabilities should return one probability per image, shape "
        f"({len(latents)},); got {p.shape}",
    )
    return p


def train(
    kernel: Any, rng: np.random.Generator, seed: int, steps: int
) -> tuple[np.ndarray, list[float]]:
    batch = 8
    x = images(rng, batch)
    y = np.array([1, 0] * (batch // 2), dtype="float32").reshape(batch, 1)
    latent = int(rng.integers(4, 9))
    lab = kernel.install(IN_KERNEL)
    result = kernel.call(f"{lab}.train", x, y, latent, steps, seed, timeout=120)
    losses, moved = result
    values = [as_array(v, "the loss debiasing_train_step returned") for v in losses]
    assert_true(
        all(v.size == 1 for v in values),
        "debiasing_train_step should return the total loss, a single number",
    )
    return np.array([float(v.reshape(())) for v in values]), [float(m) for m in moved]

"""Grader code that runs INSIDE the student's kernel for lab2_debiasing's hidden tests.

Installed by the tests with ``student.install(Path(__file__).with_name("in_kernel.py"))`` as
``_grader_lab2_debiasing``; the door binds `NOTEBOOK` to the notebook's namespace. It turns the
grader's NumPy arrays into float32 tensors (as the notebook's own code passes them), stands in
for a DB-VAE where a test needs known latents, and runs training steps whose model and optimizer
must stay in the kernel. Nothing here is secret (the kernel can read it) or trusted (the grader
checks what comes back). Standard library, NumPy, TensorFlow and Keras only.
"""

from typing import Any

import keras
import numpy as np
import tensorflow as tf

NOTEBOOK: dict[str, Any] = {}  # the notebook's namespace, bound by the door


def student(name: str) -> Any:
    """The notebook's NAME; a dotted path reaches attributes (``"_grader_dbvae.encode"``)."""
    first, *rest = name.split(".")
    value = NOTEBOOK[first]
    for attribute in rest:
        value = getattr(value, attribute)
    return value


def _tensor(value: Any) -> Any:
    return tf.constant(value, dtype=tf.float32) if isinstance(value, np.ndarray) else value


def call(name: str, *args: Any, **kwargs: Any) -> Any:
    """The submission's NAME called with every array argument as a float32 tensor."""
    function = student(name)
    return function(*[_tensor(a) for a in args], **{k: _tensor(v) for k, v in kwargs.items()})


class Latents:
    """A stand-in DB-VAE whose encoder returns its input as the latent means."""

    def __init__(self, dims: int) -> None:
        self.latent_dim = dims

    def encode(self, x: Any) -> tuple[Any, Any, Any]:
        mu = tf.constant(x, dtype=tf.float32)
        return tf.zeros((mu.shape[0], 1)), mu, tf.zeros_like(mu)

    def __call__(self, x: Any) -> tuple[Any, Any, Any, Any]:
        y_logit, mu, logsigma = self.encode(x)
        return y_logit, mu, logsigma, x


def probabilities(latents: np.ndarray, **kwargs: Any) -> Any:
    """The submission's re-sampling probabilities for images whose latent means are LATENTS."""
    get_probabilities = NOTEBOOK["get_training_sample_probabilities"]
    return get_probabilities(latents, Latents(latents.shape[1]), **kwargs)


def train(
    x: np.ndarray, y: np.ndarray, latent_dim: int, steps: int, seed: int
) -> tuple[list[np.ndarray], list[float]]:
    """Losses returned by the submission's step, and how far encoder and decoder weights moved."""
    keras.utils.set_random_seed(int(seed))
    model = NOTEBOOK["DB_VAE"](latent_dim)
    x_t, y_t = tf.constant(x, dtype=tf.float32), tf.constant(y, dtype=tf.float32)
    model(x_t)
    optimizer = keras.optimizers.Adam(1e-3)
    parts = (model.encoder, model.decoder)
    before = [[np.array(w.numpy()) for w in part.trainable_weights] for part in parts]
    # A step compiled with @tf.function cannot create a second model's optimizer variables:
    # grade the Python function inside it, eagerly.
    train_step = NOTEBOOK["debiasing_train_step"]
    step = getattr(train_step, "python_function", train_step)
    losses = [np.asarray(step(model, optimizer, x_t, y_t)) for _ in range(steps)]
    moved = [
        float(
            sum(
                np.abs(np.array(w.numpy()) - b).sum()
                for w, b in zip(part.trainable_weights, old, strict=False)
            )
        )
        for part, old in zip(parts, before, strict=False)
    ]
    return losses, moved

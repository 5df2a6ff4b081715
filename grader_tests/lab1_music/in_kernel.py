"""Grader code that runs INSIDE the student's kernel for lab1_music's hidden tests.

Installed by the tests with ``student.install(Path(__file__).with_name("in_kernel.py"))`` as
``_grader_lab1_music``; the door binds `NOTEBOOK` to the notebook's namespace. Models, the
optimizer and the compiled training step cannot cross the door, so they stay here, by name;
only plain data (token arrays, logits, losses, text) goes back. Nothing here is secret (the
kernel can read it) or trusted (the grader checks what comes back).
"""

from collections.abc import Iterator
from typing import Any

import keras
import numpy as np
import tensorflow as tf

NOTEBOOK: dict[str, Any] = {}  # the notebook's namespace, bound by the door
MODELS: dict[str, Any] = {}  # the student's models, built here by name
TRAINING: dict[str, Any] = {}  # the optimizer, the compiled step and the training songs
FORWARD: dict[str, Any] = {}  # compiled forward passes of the models, by name


def seed(value: int) -> None:
    keras.utils.set_random_seed(int(value))


def layers(layer: Any) -> Iterator[Any]:
    for sub in getattr(layer, "layers", []):
        yield sub
        yield from layers(sub)


def reset(model: Any) -> None:
    for layer in layers(model):
        if getattr(layer, "stateful", False):
            layer.reset_states()


def build(
    name: str, vocab_size: int, embedding_dim: int, rnn_units: int, batch_size: int
) -> list[list[int]]:
    built = NOTEBOOK["build_model"](vocab_size, embedding_dim, rnn_units, batch_size)
    built(np.zeros((batch_size, 2), dtype="int32"))  # create the weights
    reset(built)
    MODELS[name] = built
    FORWARD.pop(name, None)
    return [list(w.shape) for w in built.get_weights()]


def logits(name: str, x: np.ndarray) -> np.ndarray:
    model = MODELS[name]
    reset(model)
    out: np.ndarray = np.asarray(model(x), dtype="float32")
    return out


def batched_logits(name: str, x: np.ndarray, batch_size: int) -> np.ndarray:
    """Logits of the rows of X, batch_size rows per call from a reset state; the forward pass is
    compiled once (eager, one (32, 100) batch took ~0.75 s on 2 busy cores; compiled, ~0.01 s)."""
    model = MODELS[name]
    if name not in FORWARD:
        FORWARD[name] = tf.function(model)
    forward = FORWARD[name]
    out = []
    for start in range(0, len(x), batch_size):
        reset(model)
        out.append(np.asarray(forward(x[start : start + batch_size]), dtype="float32"))
    return np.concatenate(out)


def trainer(name: str, learning_rate: float) -> None:
    adam = keras.optimizers.Adam(learning_rate)
    adam.build(MODELS[name].trainable_variables)  # before tf.function: no new variables
    TRAINING["optimizer"] = adam
    TRAINING["step"] = tf.function(NOTEBOOK["train_step"])


def loss_value(loss: Any) -> float:
    return float(np.mean(np.asarray(loss)))


def train_on_batch(name: str, x: np.ndarray, y: np.ndarray, steps: int) -> list[float]:
    model = MODELS[name]
    reset(model)
    step, optimizer = TRAINING["step"], TRAINING["optimizer"]
    return [loss_value(step(model, optimizer, x, y)) for _ in range(steps)]


def set_songs(ids: np.ndarray) -> None:
    """The vectorized training songs `train_on_songs` draws its batches from."""
    TRAINING["songs"] = np.asarray(ids)


def train_on_songs(name: str, steps: int, seq_length: int, batch_size: int) -> list[float]:
    model = MODELS[name]
    step, optimizer = TRAINING["step"], TRAINING["optimizer"]
    get_batch = NOTEBOOK["get_batch"]
    losses = []
    for _ in range(steps):
        x, y = get_batch(TRAINING["songs"], seq_length, batch_size)
        losses.append(loss_value(step(model, optimizer, x, y)))
    return losses


def copy_weights(source: str, target: str) -> None:
    MODELS[target].set_weights(MODELS[source].get_weights())


def fix_logits(name: str, bias: np.ndarray) -> None:
    """All weights 0 except the output bias: the logits are `bias` whatever the input."""
    model = MODELS[name]
    weights = [np.zeros_like(w) for w in model.get_weights()]
    for i in reversed(range(len(weights))):
        if weights[i].shape == bias.shape:
            weights[i] = bias.astype(weights[i].dtype)
            break
    else:
        raise ValueError("the model has no output bias of shape (vocab_size,)")
    model.set_weights(weights)


def generate(name: str, start_string: str, generation_length: int) -> Any:
    return NOTEBOOK["generate_text"](MODELS[name], start_string, generation_length)

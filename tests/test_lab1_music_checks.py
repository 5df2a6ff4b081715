"""Do the public checks of Lab 1 Part 2 pass correct work and explain typical mistakes in words?

Each check runs on a correct implementation (it must print one "✓" line and nothing on stderr)
and on mistakes students make (it must fail with a message that points at the fix).
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import pytest
import tensorflow as tf

from introdl.checks import CheckFailed
from introdl.checks import lab1_music as check

VOCAB = [chr(c) for c in (10, *range(32, 127)) if chr(c) not in "$%&@`"][:83]  # 83 characters
CHAR2IDX = {c: i for i, c in enumerate(VOCAB)}
IDX2CHAR = np.array(VOCAB)
V = len(VOCAB)


def passes(run: Callable[[], None], capsys: pytest.CaptureFixture[str]) -> str:
    run()
    out = capsys.readouterr()
    assert out.err == "", out.err
    lines = out.out.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("✓"), lines
    return lines[0]


def fails(run: Callable[[], None], *words: str) -> str:
    with pytest.raises(CheckFailed) as info:
        run()
    message = str(info.value)
    for word in words:
        assert word in message, f"{word!r} not in: {message}"
    return message


# --- Vectorize ----------------------------------------------------------------------------------------


def vectorize_string(string: str) -> np.ndarray:
    return np.array([CHAR2IDX[c] for c in string])


def test_vectorize_check(capsys: pytest.CaptureFixture[str]) -> None:
    """Does the vectorize check pass a char2idx lookup, and catch lists, floats and wrong codes?"""
    passes(lambda: check.vectorize(vectorize_string, CHAR2IDX), capsys)
    fails(
        lambda: check.vectorize(lambda s: [CHAR2IDX[c] for c in s], CHAR2IDX),
        "NumPy array",
        "np.array",
    )
    fails(
        lambda: check.vectorize(lambda s: vectorize_string(s).astype(float), CHAR2IDX),
        "integer",
    )
    fails(lambda: check.vectorize(lambda s: np.array([ord(c) for c in s]), CHAR2IDX), "char2idx")
    fails(lambda: check.vectorize(lambda s: vectorize_string(s[1:]), CHAR2IDX), "shape")


def test_a_todo_left_in_place_stays_not_implemented() -> None:
    """Does an exercise not done yet raise NotImplementedError (not a check failure)?"""

    def todo(*args: Any) -> Any:
        raise NotImplementedError

    with pytest.raises(NotImplementedError):
        check.vectorize(todo, CHAR2IDX)
    with pytest.raises(NotImplementedError):
        check.batches(todo)


# --- Batches ----------------------------------------------------------------------------------------


def get_batch(v: np.ndarray, seq_length: int, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    idx = np.random.choice(v.shape[0] - 1 - seq_length, batch_size)
    x = np.stack([v[i : i + seq_length] for i in idx])
    y = np.stack([v[i + 1 : i + seq_length + 1] for i in idx])
    return x, y


def test_batches_check(capsys: pytest.CaptureFixture[str]) -> None:
    """Does the batches check pass random shifted windows, and name each typical mistake?"""
    passes(lambda: check.batches(get_batch), capsys)

    def not_shifted(v: np.ndarray, n: int, b: int) -> tuple[np.ndarray, np.ndarray]:
        x, _ = get_batch(v, n, b)
        return x, x

    fails(lambda: check.batches(not_shifted), "shifted by one")

    def shifted_twice(v: np.ndarray, n: int, b: int) -> tuple[np.ndarray, np.ndarray]:
        x, _ = get_batch(v[:-1], n, b)
        return x, x + 2

    fails(lambda: check.batches(shifted_twice), "shifted by one step")

    def fixed(v: np.ndarray, n: int, b: int) -> tuple[np.ndarray, np.ndarray]:
        x = np.stack([v[i : i + n] for i in range(b)])
        return x, x + 1

    fails(lambda: check.batches(fixed), "at random")
    fails(
        lambda: check.batches(lambda v, n, b: (v[: n * b].reshape(n, b), v[1 : n * b + 1])),
        "shape",
    )
    fails(lambda: check.batches(lambda v, n, b: get_batch(v, n, b)[0]), "two arrays")


# --- Model ----------------------------------------------------------------------------------------


def build_model(vocab_size: int, embedding_dim: int, rnn_units: int, batch_size: int) -> Any:
    return keras.Sequential(
        [
            keras.Input(batch_shape=(batch_size, None), dtype="int32"),
            keras.layers.Embedding(vocab_size, embedding_dim),
            keras.layers.LSTM(rnn_units, return_sequences=True, stateful=True),
            keras.layers.Dense(vocab_size),
        ]
    )


def model_with(*layers: Callable[[int, int, int], Any]) -> Callable[..., Any]:
    def build(vocab_size: int, embedding_dim: int, rnn_units: int, batch_size: int) -> Any:
        made = [f(vocab_size, embedding_dim, rnn_units) for f in layers]
        return keras.Sequential([keras.Input(batch_shape=(batch_size, None), dtype="int32"), *made])

    return build


def embedding(v: int, e: int, u: int) -> Any:
    return keras.layers.Embedding(v, e)


def test_model_check(capsys: pytest.CaptureFixture[str]) -> None:
    """Does the model check pass the lab's model, and explain a missing time axis, a missing
    Dense layer and a softmax output?"""
    passes(lambda: check.model(build_model, V), capsys)
    last_only = model_with(
        embedding, lambda v, e, u: keras.layers.LSTM(u), lambda v, e, u: keras.layers.Dense(v)
    )
    fails(lambda: check.model(last_only, V), "return_sequences=True")
    no_dense = model_with(embedding, lambda v, e, u: keras.layers.LSTM(u, return_sequences=True))
    fails(lambda: check.model(no_dense, V), "Dense layer of vocab_size")
    softmax = model_with(
        embedding,
        lambda v, e, u: keras.layers.LSTM(u, return_sequences=True),
        lambda v, e, u: keras.layers.Dense(v, activation="softmax"),
    )
    fails(lambda: check.model(softmax, V), "probabilities", "logits")


# --- Loss ----------------------------------------------------------------------------------------


def test_loss_check(capsys: pytest.CaptureFixture[str]) -> None:
    """Does the loss check accept a mean or per-character cross-entropy of logits, and catch the
    probabilities mistake and swapped arguments?"""

    def per_character(labels: Any, logits: Any) -> Any:
        return keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)

    passes(lambda: check.loss(lambda a, b: tf.reduce_mean(per_character(a, b)), V), capsys)
    passes(lambda: check.loss(per_character, V), capsys)
    fails(
        lambda: check.loss(lambda a, b: keras.losses.sparse_categorical_crossentropy(a, b), V),
        "from_logits=True",
    )
    fails(lambda: check.loss(lambda a, b: per_character(b, a), V), "compute_loss(labels, logits)")
    fails(lambda: check.loss(lambda a, b: None, V), "return")


# --- Training step ----------------------------------------------------------------------------------


def train_step(model: Any, optimizer: Any, x: Any, y: Any) -> Any:
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(
            keras.losses.sparse_categorical_crossentropy(
                y, model(x, training=True), from_logits=True
            )
        )
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
    return loss


def test_train_step_check(capsys: pytest.CaptureFixture[str]) -> None:
    """Does the training-step check pass a correct step (compiled or not), and catch a step that
    never applies its gradients, and one that climbs the loss?"""
    passes(lambda: check.train_step(train_step, build_model, V), capsys)
    passes(lambda: check.train_step(tf.function(train_step), build_model, V), capsys)

    def no_update(model: Any, optimizer: Any, x: Any, y: Any) -> Any:
        return tf.reduce_mean(
            keras.losses.sparse_categorical_crossentropy(y, model(x), from_logits=True)
        )

    fails(lambda: check.train_step(no_update, build_model, V), "apply_gradients")

    def ascent(model: Any, optimizer: Any, x: Any, y: Any) -> Any:
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(
                keras.losses.sparse_categorical_crossentropy(y, model(x), from_logits=True)
            )
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip([-g for g in grads], model.trainable_variables, strict=True))
        return loss

    fails(lambda: check.train_step(ascent, build_model, V), "not their negatives")


# --- Training curve and generation ------------------------------------------------------------------


def test_rnn_loss_check(capsys: pytest.CaptureFixture[str]) -> None:
    """Does the training check pass a falling curve from ln(83), and catch flat or broken ones?"""
    start = float(np.log(V))
    passes(lambda: check.rnn_loss(list(np.linspace(start, 2.0, 40)), V), capsys)
    fails(lambda: check.rnn_loss([start] * 40, V), "should fall")
    fails(lambda: check.rnn_loss([start, float("nan")], V), "NaN")
    fails(lambda: check.rnn_loss([], V), "training iteration")
    fails(lambda: check.rnn_loss(list(np.linspace(1.0, 0.5, 40)), V), "Rebuild the model")


def test_generation_check(capsys: pytest.CaptureFixture[str]) -> None:
    """Does the generation check pass sampled text, and catch a wrong length, foreign characters
    and deterministic (argmax) text?"""
    rng = np.random.default_rng(0)

    def sampled(model: Any, start: str, generation_length: int = 1000) -> str:
        return start + "".join(rng.choice(VOCAB, size=generation_length))

    passes(lambda: check.generation(sampled, None, VOCAB), capsys)
    fails(lambda: check.generation(lambda m, s, generation_length=1: s, None, VOCAB), "followed by")
    fails(
        lambda: check.generation(
            lambda m, s, generation_length=1: s + "é" * generation_length, None, VOCAB
        ),
        "outside the vocabulary",
    )
    fails(
        lambda: check.generation(
            lambda m, s, generation_length=1: s + "a" * generation_length, None, VOCAB
        ),
        "argmax",
    )

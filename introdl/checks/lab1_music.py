"""Public checks for Lab 1 Part 2 (music generation with an RNN), one per graded exercise.

Each function is named after the grade cell that calls it (`check.batches(get_batch)` runs in
the cell whose grade id is `batches`). They check shapes, types, value ranges and cases whose
answer is known (uniform logits cost ln(vocab_size); a window of 0, 1, 2, ... is followed by
1, 2, 3, ...), never a reference implementation, so they can ship inside the student's notebook.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from introdl.checks import CheckFailed, as_array, calling, describe, fail, passed
from introdl.checks import quiet as _quiet

__all__ = [
    "CheckFailed",
    "batches",
    "generation",
    "loss",
    "model",
    "rnn_loss",
    "train_step",
    "vectorize",
]

# The checks draw their own inputs from a fixed generator, so a check that fails once fails
# again on re-run (and a student can reproduce it).
_SEED = 6191
_SAMPLE = "X:7\nT:The Check Reel\nM:C|\nL:1/8\nK:D Major\n|:dAFA DFAd|fdcd FAdf:|!"


def _is_int_array(value: Any) -> bool:
    return isinstance(value, np.ndarray) and np.issubdtype(value.dtype, np.integer)


def _mean_loss(value: Any, what: str) -> float:
    """A loss as one number: the mean of a per-character loss, or the scalar itself."""
    array = as_array(value, what)
    if array.size == 0:
        fail(f"{what} is empty; it should be the cross-entropy loss.")
    return float(array.mean())


# --- Vectorizing the text ------------------------------------------------------------------------


def vectorize(vectorize_string: Callable[[str], Any], char2idx: Mapping[str, int]) -> None:
    """vectorize_string(s) is the NumPy array of char2idx[c] for every character c of s."""
    idx2char = {i: c for c, i in char2idx.items()}
    sample = "".join(c for c in _SAMPLE if c in char2idx)
    with calling("vectorize_string(sample)"):
        got = vectorize_string(sample)
    if not isinstance(got, np.ndarray):
        fail(
            f"vectorize_string should return a NumPy array (np.ndarray); got {type(got).__name__}. "
            "Wrap the list of indices with np.array(...)."
        )
    if not np.issubdtype(got.dtype, np.integer):
        fail(
            f"vectorize_string should return integer indices; got dtype {got.dtype}. "
            "Look each character up in char2idx (its values are ints)."
        )
    if got.shape != (len(sample),):
        fail(
            f"vectorize_string on a string of {len(sample)} characters should return shape "
            f"({len(sample)},), one index per character; got {got.shape}."
        )
    decoded = "".join(idx2char.get(int(i), "?") for i in got)
    if decoded != sample:
        first = next(i for i, (a, b) in enumerate(zip(decoded, sample, strict=True)) if a != b)
        fail(
            f"vectorize_string(s)[{first}] should be char2idx[{sample[first]!r}] = "
            f"{char2idx[sample[first]]}; got {int(got[first])}. Map every character with char2idx."
        )
    passed(f"vectorize_string maps each of {len(sample)} characters to its index in char2idx")


# --- Batches --------------------------------------------------------------------------------------


def batches(get_batch: Callable[[Any, int, int], Any]) -> None:
    """get_batch(v, seq_length, batch_size) gives random windows x of v and y = x shifted by one."""
    n = 200
    counting = np.arange(n)  # entry i is i: a window shows where it came from
    seq_length, batch_size = 12, 5
    starts: set[int] = set()
    drawn: list[np.ndarray] = []
    for attempt in range(6):
        with calling(
            f"get_batch(np.arange({n}), seq_length={seq_length}, batch_size={batch_size})"
        ):
            result = get_batch(counting, seq_length, batch_size)
        if not isinstance(result, tuple | list) or len(result) != 2:
            fail("get_batch should return two arrays: (x_batch, y_batch).")
        x, y = result
        for name, value in (("x_batch", x), ("y_batch", y)):
            if not _is_int_array(value):
                what = value.dtype if isinstance(value, np.ndarray) else type(value).__name__
                fail(f"{name} should be a NumPy array of integer indices; got {what}.")
            if value.shape != (batch_size, seq_length):
                fail(
                    f"{name} should have shape (batch_size, seq_length) = ({batch_size}, {seq_length}); "
                    f"got {value.shape}."
                )
        if attempt == 0 and np.array_equal(x, y):
            fail(
                "y_batch equals x_batch: the targets must be the inputs shifted by one character "
                "(the character that comes next), not the inputs themselves."
            )
        window = x[:, :1] + np.arange(seq_length)
        if not np.array_equal(x, window):
            fail(
                f"on the sequence 0, 1, 2, ..., {n - 1}, each row of x_batch should be a contiguous "
                f"window like [s, s+1, ..., s+{seq_length - 1}]; got rows such as {x[0].tolist()}. "
                "Slice vectorized_songs[i : i + seq_length]."
            )
        if not np.array_equal(y, x + 1):
            fail(
                "y_batch should be x_batch shifted by one step (the next character at every position): "
                f"for the input row {x[0].tolist()} the target row is {(x[0] + 1).tolist()}; got "
                f"{y[0].tolist()}. Slice vectorized_songs[i + 1 : i + seq_length + 1]."
            )
        if x.min() < 0 or y.max() > n - 1:
            fail("get_batch returned windows that leave the sequence.")
        starts.update(int(s) for s in x[:, 0])
        drawn.append(x)
    if len(starts) < 3 or all(np.array_equal(drawn[0], x) for x in drawn[1:]):
        fail(
            f"six calls of get_batch gave the same windows (starting at {sorted(starts)}): choose "
            "the start positions at random (np.random.choice) on every call."
        )
    passed(
        f"get_batch gives random ({batch_size}, {seq_length}) windows, targets shifted by one step"
    )


# --- The model ------------------------------------------------------------------------------------


def model(build_model: Callable[..., Any], vocab_size: int) -> None:
    """build_model(...) maps (batch, time) indices to (batch, time, vocab_size) logits."""
    rng = np.random.default_rng(_SEED)
    for batch_size, length in ((3, 7), (1, 4)):
        what = f"build_model(vocab_size, embedding_dim=8, rnn_units=16, batch_size={batch_size})"
        with calling(what), _quiet():
            net = build_model(vocab_size, 8, 16, batch_size)
        if not isinstance(net, keras.Model):
            fail(f"{what} should return a Keras model; got {type(net).__name__}.")
        x = rng.integers(0, vocab_size, size=(batch_size, length))
        with calling(f"the model on a ({batch_size}, {length}) batch of indices"), _quiet():
            out = as_array(net(x), "the model's output")
        want = (batch_size, length, vocab_size)
        if out.shape != want:
            hint = ""
            if out.ndim == 2:
                hint = " The time axis is missing: give the LSTM return_sequences=True."
            elif out.shape[-1] != vocab_size:
                hint = f" End with a Dense layer of vocab_size = {vocab_size} units."
            fail(
                f"on a ({batch_size}, {length}) batch the model should output (batch_size, "
                f"sequence_length, vocab_size) = {want}; got {out.shape}.{hint}"
            )
        if not np.all(np.isfinite(out)):
            fail("the model's output contains NaN or infinite values.")
        if np.all(out >= 0) and np.allclose(out.sum(axis=-1), 1.0, atol=1e-3):
            fail(
                "the model's outputs sum to 1 over the vocabulary: they are probabilities. Output "
                "logits instead (a Dense layer without activation); the loss applies the softmax."
            )
    passed(f"the model maps (batch, time) indices to (batch, time, {vocab_size}) logits")


# --- The loss -------------------------------------------------------------------------------------


def loss(compute_loss: Callable[[Any, Any], Any], vocab_size: int) -> None:
    """compute_loss(labels, logits) is the sparse categorical cross-entropy of logits."""
    rng = np.random.default_rng(_SEED)
    labels = rng.integers(0, vocab_size, size=(2, 5))
    hint = "Call it as compute_loss(labels, logits): the true indices first, then the logits."

    def run(logits: np.ndarray, case: str) -> float:
        with calling(f"compute_loss(labels, logits) with {case}", hint), _quiet():
            value = compute_loss(labels, logits.astype("float32"))
        array = as_array(value, "compute_loss(labels, logits)")
        if array.shape not in ((), labels.shape):
            fail(
                f"compute_loss should return one loss per character, shape {labels.shape}, or their "
                f"mean (a scalar); got shape {array.shape}."
            )
        return _mean_loss(array, "compute_loss(labels, logits)")

    uniform = run(np.zeros((2, 5, vocab_size)), "all logits 0")
    expected = math.log(vocab_size)
    if not np.isclose(uniform, expected, atol=1e-3):
        fail(
            f"with every logit 0 the model predicts each of the {vocab_size} characters with "
            f"probability 1/{vocab_size}, so the loss is ln({vocab_size}) = {expected:.4f}; got "
            f"{uniform:.4g}. Use sparse categorical cross-entropy with from_logits=True."
        )
    sure = np.zeros((2, 5, vocab_size))
    np.put_along_axis(sure, labels[..., None], 2.0, axis=-1)
    expected = math.log(math.exp(2.0) + vocab_size - 1) - 2.0
    got = run(sure, "logit 2 on the right character")
    if not np.isclose(got, expected, atol=1e-3):
        fail(
            f"with logit 2 on the right character and 0 elsewhere, the right character gets "
            f"probability e²/(e² + {vocab_size - 1}), so the loss is {expected:.4f}; got {got:.4g}. "
            "Are the outputs treated as logits (from_logits=True)?"
        )
    passed("compute_loss is the cross-entropy of the logits against the labels")


# --- One training step ----------------------------------------------------------------------------


def train_step(
    train_step: Callable[[Any, Any, Any, Any], Any],
    build_model: Callable[..., Any],
    vocab_size: int,
) -> None:
    """Repeated train_step(model, optimizer, x, y) on one batch drive its loss down."""
    keras.utils.set_random_seed(_SEED)
    rng = np.random.default_rng(_SEED)
    batch_size, length = 4, 16
    x = rng.integers(0, vocab_size, size=(batch_size, length))
    y = rng.integers(0, vocab_size, size=(batch_size, length))
    with calling("build_model(vocab_size, 16, 32, batch_size=4)"), _quiet():
        net = build_model(vocab_size, 16, 32, batch_size)
        net(x)  # creates the weights, so that the optimizer can create its slots next
    optimizer = keras.optimizers.Adam(learning_rate=0.02)
    optimizer.build(net.trainable_variables)
    # Compiled, as the training cell runs it: eager LSTM steps are about ten times slower.
    step = tf.function(train_step)
    hint = (
        "The training cell compiles train_step with tf.function: keep it free of .numpy() calls "
        "and other Python side effects."
    )
    before = [np.array(w) for w in net.get_weights()]
    losses: list[float] = []
    for number in range(30):
        with calling("train_step(model, optimizer, x, y)", hint), _quiet():
            value = step(net, optimizer, x, y)
        losses.append(_mean_loss(value, f"train_step's loss at step {number + 1}"))
    if not all(math.isfinite(v) for v in losses):
        fail(f"train_step returned a non-finite loss: {describe(np.array(losses))}.")
    if all(np.array_equal(a, np.array(b)) for a, b in zip(before, net.get_weights(), strict=True)):
        fail(
            "30 calls of train_step left the model's weights unchanged: apply the gradients with "
            "optimizer.apply_gradients(zip(grads, model.trainable_variables))."
        )
    if not losses[-1] < losses[0] - 1.0:
        fail(
            f"30 steps on the same batch should drive its loss well down (a small model memorises "
            f"one batch); it went from {losses[0]:.3f} to {losses[-1]:.3f}. Check that the gradients "
            "are those of the loss with respect to model.trainable_variables, and that they are "
            "applied (not their negatives)."
        )
    passed(f"30 train_steps on one batch lower its loss from {losses[0]:.2f} to {losses[-1]:.2f}")


# --- Training -------------------------------------------------------------------------------------


def rnn_loss(history: Sequence[float], vocab_size: int) -> None:
    """The training loss started near ln(vocab_size) and went down."""
    values = as_array(list(history), "history").astype(float).ravel()
    if values.size < 2:
        fail("history should hold the loss of every training iteration; train for a few first.")
    if not np.all(np.isfinite(values)):
        fail("the training loss became NaN or infinite; lower the learning rate and train again.")
    start = math.log(vocab_size)
    if abs(values[0] - start) > 1.0:
        fail(
            f"an untrained model should start near ln({vocab_size}) = {start:.2f} (every character "
            f"equally likely); the first loss was {values[0]:.3f}. Rebuild the model before training."
        )
    tail = values[-max(1, values.size // 10) :].mean()
    if not tail < values[0] - 0.5:
        fail(
            f"the loss went from {values[0]:.3f} to {tail:.3f} (mean of the last iterations): it "
            "should fall clearly. Check train_step, or train for more iterations."
        )
    passed(f"the training loss fell from {values[0]:.2f} to {tail:.2f}")


# --- Generation -----------------------------------------------------------------------------------


def generation(
    generate_text: Callable[..., Any], model: Any, vocab: Sequence[str], start_string: str = "X"
) -> None:
    """generate_text(model, start, n) returns start + n sampled characters of the vocabulary."""
    n = 40
    texts = []
    for _ in range(2):
        with calling(f"generate_text(model, {start_string!r}, generation_length={n})"), _quiet():
            text = generate_text(model, start_string, generation_length=n)
        if not isinstance(text, str):
            fail(f"generate_text should return a string; got {type(text).__name__}.")
        if len(text) != len(start_string) + n or not text.startswith(start_string):
            fail(
                f"generate_text(model, {start_string!r}, generation_length={n}) should return the "
                f"start string followed by {n} new characters ({len(start_string) + n} in all); got "
                f"{len(text)} characters starting {text[:10]!r}."
            )
        foreign = sorted(set(text) - set(vocab))
        if foreign:
            fail(
                f"generate_text produced characters outside the vocabulary: {foreign[:5]}. Turn "
                "each sampled index back into a character with idx2char."
            )
        texts.append(text)
    if texts[0] == texts[1]:
        fail(
            "two calls of generate_text gave the same text: sample the next character from the "
            "predicted distribution (tf.random.categorical), rather than always taking the argmax."
        )
    passed(f"generate_text samples {n} characters of the vocabulary after the start string")

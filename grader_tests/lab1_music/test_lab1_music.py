"""Hidden tests for Lab 1 Part 2 (music generation with an RNN). Never released to students.

The student's notebook has run (with the smoke budget) in the sandboxed kernel; these tests call
its functions through `student`. Whatever needs a kernel object (a model, an optimizer) lives in
the kernel by name, handled by the grader's functions in in_kernel.py (installed in the kernel);
only plain data (token arrays, logits, text) crosses. The quality test trains the student's model
with the student's `get_batch` and `train_step`, with the grader's seed, sizes and budget, and
measures the loss on held-out tunes here, in the grader's process. Thresholds: CALIBRATION.md.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from grader_tests.lab1_music import reference
from grader_tests.lab1_music.training import (
    GENERATED_CHARACTERS,
    GENERATION_TRIES,
    Training,
    build,
    call_get_batch,
    generate,
    logits_of,
    mean_cross_entropy,
    prepare,
    train_on_songs,
    training_verdict,
    tune_after_training,
    window_starts,
)
from introdl.grading.authoring import assert_close, close


def loss_as_mean(value: object, shape: tuple[int, ...], what: str) -> float:
    array = np.asarray(value, dtype=float)
    assert array.shape in ((), shape), (
        f"{what} should be one loss per character, shape {shape}, or their mean (a scalar); "
        f"got shape {array.shape}"
    )
    return float(array.mean())


# --- Vectorizing ----------------------------------------------------------------------------------


@pytest.mark.grade("vectorize", points=1)
@pytest.mark.budget(seconds=30)
def test_vectorize_round_trips_random_text(student, rng):
    vocab = reference.vocabulary()
    for length in (1, int(rng.integers(2, 50)), int(rng.integers(200, 800))):
        text = "".join(rng.choice(vocab, size=length))
        got = np.asarray(student.call("vectorize_string", text))
        assert got.shape == (length,), (
            f"vectorize_string on a string of {length} characters should return {length} indices, "
            f"shape ({length},); got shape {got.shape}"
        )
        assert np.issubdtype(got.dtype, np.integer), (
            f"vectorize_string should return integer indices; got dtype {got.dtype}"
        )
        inside = got.min() >= 0 and got.max() < len(vocab)
        assert inside, "vectorize_string returned indices outside 0 .. vocab_size - 1"
        assert reference.decode(got) == text, (
            "mapping the indices of vectorize_string back with idx2char should give the string "
            "back; use char2idx for every character"
        )


@pytest.mark.grade("vectorize", points=1)
@pytest.mark.budget(seconds=30)
def test_vectorize_returns_an_integer_numpy_array(student, rng):
    song = reference.decode(reference.split_ids()[0][: int(rng.integers(100, 400))])
    got = student.call("vectorize_string", song)
    assert isinstance(got, np.ndarray), (
        f"vectorize_string should return a NumPy array (np.ndarray); got {type(got).__name__}"
    )
    assert np.issubdtype(got.dtype, np.integer), (
        f"vectorize_string should return an array of integers; got dtype {got.dtype}"
    )
    assert np.array_equal(got, reference.encode(song)), (
        "vectorize_string should give each character's index in char2idx"
    )


# --- Batches ----------------------------------------------------------------------------------------


@pytest.mark.grade("batches", points=1)
@pytest.mark.budget(seconds=30)
def test_batches_have_the_requested_shape_and_integer_dtype(student, rng):
    values = rng.permutation(int(rng.integers(500, 3000))).astype(np.int64)
    for _ in range(3):
        seq_length, batch_size = int(rng.integers(2, 60)), int(rng.integers(1, 17))
        call_get_batch(student, values, seq_length, batch_size)


@pytest.mark.grade("batches", points=1)
@pytest.mark.budget(seconds=30)
def test_targets_are_the_inputs_shifted_by_one(student, rng):
    # Distinct values: each one tells where in the sequence it was taken from.
    values = rng.permutation(int(rng.integers(1000, 5000))).astype(np.int64)
    for _ in range(3):
        seq_length, batch_size = int(rng.integers(3, 80)), int(rng.integers(2, 12))
        x, y = call_get_batch(student, values, seq_length, batch_size)
        assert not np.array_equal(x, y), (
            "y_batch equals x_batch: the targets must be the inputs shifted by one character"
        )
        window_starts(values, x, y)


@pytest.mark.grade("batches", points=1)
@pytest.mark.budget(seconds=30)
def test_windows_stay_inside_the_sequence(student, rng):
    seq_length = int(rng.integers(5, 30))
    for _ in range(12):
        values = rng.permutation(seq_length + int(rng.integers(3, 8))).astype(np.int64)
        x, y = call_get_batch(student, values, seq_length, 8)
        window_starts(values, x, y)


@pytest.mark.grade("batches", points=1)
@pytest.mark.budget(seconds=30)
def test_batches_are_random_across_calls(student, rng):
    values = rng.permutation(20_000).astype(np.int64)
    calls = [window_starts(values, *call_get_batch(student, values, 20, 8)) for _ in range(4)]
    assert not all(np.array_equal(calls[0], c) for c in calls[1:]), (
        "four calls of get_batch returned the same windows: draw random start positions on every call"
    )
    starts = np.concatenate(calls)
    assert np.unique(starts).size >= 16, (
        f"4 calls of 8 windows started at only {np.unique(starts).size} distinct positions of "
        "20,000: choose the start positions uniformly at random"
    )


# --- The model ----------------------------------------------------------------------------------


@pytest.mark.grade("model", points=1)
@pytest.mark.budget(seconds=60)
def test_model_outputs_batch_time_vocab(student, rng):
    prepare(student)
    for batch_size, length, vocab in ((1, 1, 83), (2, 9, 83), (5, 31, int(rng.integers(10, 60)))):
        embedding_dim, rnn_units = int(rng.integers(4, 17)), int(rng.integers(8, 33))
        build(student, "_grader_shape_model", vocab, embedding_dim, rnn_units, batch_size)
        x = rng.integers(0, vocab, size=(batch_size, length))
        out = logits_of(student, "_grader_shape_model", x)
        assert out.shape == (batch_size, length, vocab), (
            f"build_model({vocab}, {embedding_dim}, {rnn_units}, batch_size={batch_size}) on a "
            f"{(batch_size, length)} batch should output (batch, time, vocab_size) = "
            f"{(batch_size, length, vocab)}; got {out.shape}"
        )


@pytest.mark.grade("model", points=1)
@pytest.mark.budget(seconds=30)
def test_model_outputs_logits_not_probabilities(student, rng):
    prepare(student)
    build(student, "_grader_logit_model", 83, 16, 32, 4)
    out = logits_of(student, "_grader_logit_model", rng.integers(0, 83, size=(4, 12)))
    assert np.isfinite(out).all(), "the model's outputs should be finite numbers"
    sums = out.sum(axis=-1)
    probabilities = (out >= 0).all() and close(sums, np.ones_like(sums), rtol=1e-5, atol=1e-3)
    assert not probabilities, (
        "the model's outputs are probabilities (non-negative, summing to 1): the last Dense layer "
        "should output logits, without a softmax activation"
    )
    assert out.std() > 0, "the model's outputs are all equal: they should depend on the weights"


@pytest.mark.grade("model", points=1)
@pytest.mark.budget(seconds=30)
def test_model_remembers_earlier_characters(student, rng):
    prepare(student)
    build(student, "_grader_memory_model", 83, 16, 32, 2)
    x = rng.integers(0, 83, size=(2, 10))
    changed = x.copy()
    changed[:, 0] = (x[:, 0] + 1 + rng.integers(0, 81, size=2)) % 83
    late = slice(3, None)  # time steps after the change
    out = logits_of(student, "_grader_memory_model", x)[:, late]
    out_changed = logits_of(student, "_grader_memory_model", changed)[:, late]
    assert not close(out, out_changed, rtol=1e-5, atol=1e-7), (
        "changing the first character of a window left the model's later outputs unchanged: the "
        "model should carry information forward in time (an LSTM between the embedding and the "
        "output layer)"
    )


# --- The loss ---------------------------------------------------------------------------------------


def check_loss(student, labels: np.ndarray, logits: np.ndarray) -> None:
    got = student.call("compute_loss", labels, logits)
    mean = loss_as_mean(got, labels.shape, "compute_loss(labels, logits)")
    expected = reference.cross_entropy(labels, logits)
    if np.asarray(got).shape == labels.shape:
        assert_close(
            got,
            expected,
            "compute_loss should be the cross-entropy of the logits at each label",
            rtol=1e-4,
            atol=1e-4,
        )
    assert_close(
        mean,
        expected.mean(),
        "compute_loss should be the mean sparse categorical cross-entropy of the logits "
        "(from_logits=True) against the labels",
        rtol=1e-4,
        atol=1e-4,
    )


@pytest.mark.grade("loss", points=1)
@pytest.mark.budget(seconds=30)
def test_loss_matches_cross_entropy_on_random_logits(student, rng):
    batch, time = int(rng.integers(1, 9)), int(rng.integers(1, 60))
    labels = rng.integers(0, 83, size=(batch, time))
    logits = (rng.normal(size=(batch, time, 83)) * 3).astype("float32")
    check_loss(student, labels, logits)


@pytest.mark.grade("loss", points=1)
@pytest.mark.budget(seconds=30)
def test_loss_matches_cross_entropy_for_other_vocabulary_sizes(student, rng):
    for vocab in (2, int(rng.integers(5, 30)), 200):
        labels = rng.integers(0, vocab, size=(3, 17))
        logits = (rng.normal(size=(3, 17, vocab)) * 8).astype("float32")
        check_loss(student, labels, logits)


# --- One training step --------------------------------------------------------------------------


@pytest.mark.grade("train_step", points=2)
@pytest.mark.budget(seconds=60)
def test_train_step_lowers_the_loss_on_one_batch(student, rng, seed):
    lab = prepare(student, seed)
    build(student, "_grader_step_model", 83, 16, 32, 4)
    student.call(f"{lab}.trainer", "_grader_step_model", 0.02)
    x = rng.integers(0, 83, size=(4, 16))
    y = rng.integers(0, 83, size=(4, 16))
    before = mean_cross_entropy(student, "_grader_step_model", x, y, 83)
    returned = student.call(f"{lab}.train_on_batch", "_grader_step_model", x, y, 30, timeout=60)
    after = mean_cross_entropy(student, "_grader_step_model", x, y, 83)
    assert all(math.isfinite(v) for v in returned), "train_step returned a loss that is not finite"
    assert abs(returned[0] - before) < 0.5, (
        f"train_step should return the batch's loss; its first value was {returned[0]:.3f} while "
        f"the batch's cross-entropy was {before:.3f}"
    )
    assert after < before - 1.0, (
        f"30 train_steps on one batch should drive its loss well down (a small model memorises a "
        f"batch); it went from {before:.3f} to {after:.3f}. Apply the gradients of the loss with "
        "respect to model.trainable_variables with optimizer.apply_gradients"
    )


# --- The RNN learns the tunes ------------------------------------------------------------------


_TRAINED: dict[int, Training | str] = {}  # per student: the result, or why training failed


@pytest.fixture
def trained(student, seed) -> Training:
    """The student's model trained by the grader, once per grading (the first test pays)."""
    key = id(student)
    if key not in _TRAINED:
        try:
            _TRAINED[key] = train_on_songs(student, seed)
        except BaseException as err:  # a time budget running out too: later tests must not retry
            _TRAINED[key] = str(err) or type(err).__name__
            raise
    result = _TRAINED[key]
    if isinstance(result, str):
        pytest.fail(f"training your model failed earlier: {result}")
    return result


@pytest.mark.trains
@pytest.mark.grade("rnn_loss", points=5)
@pytest.mark.budget(seconds=150)
def test_rnn_learns_the_tunes(trained):
    assert trained.passed, training_verdict(trained)


# --- Generation -----------------------------------------------------------------------------------


@pytest.mark.grade("generation", points=1)
@pytest.mark.budget(seconds=60)
def test_generate_text_returns_start_and_requested_length(student, rng, seed):
    prepare(student, seed)
    build(student, "_grader_gen_small", 83, 8, 16, 1)
    vocab = reference.vocabulary()
    for _ in range(2):
        start = "".join(rng.choice(vocab, size=int(rng.integers(1, 6))))
        length = int(rng.integers(20, 120))
        text = generate(student, "_grader_gen_small", start, length)
        expected = len(text) == len(start) + length and text.startswith(start)
        assert expected, (
            f"generate_text(model, start_string, {length}) should return the start string followed "
            f"by {length} generated characters ({len(start) + length} in all); got {len(text)}"
        )
        foreign = sorted(set(text) - set(vocab))
        assert not foreign, (
            f"generate_text produced characters outside the vocabulary: {foreign[:5]}"
        )


@pytest.mark.grade("generation", points=1)
@pytest.mark.budget(seconds=60)
def test_generate_text_samples_from_the_predicted_distribution(student, rng, seed):
    lab = prepare(student, seed)
    build(student, "_grader_gen_fixed", 83, 8, 16, 1)
    favourite = int(rng.integers(0, 83))
    bias = np.zeros(83, dtype="float32")
    bias[favourite] = math.log(82)  # this character has probability 1/2, every other 1/164
    student.call(f"{lab}.fix_logits", "_grader_gen_fixed", bias)
    length = 400
    text = generate(student, "_grader_gen_fixed", "X", length)[-length:]
    share = text.count(reference.vocabulary()[favourite]) / length
    assert 0.35 <= share <= 0.65, (
        f"with the model predicting one character with probability 1/2 at every step, it made up "
        f"{share:.0%} of {length} generated characters: sample each next character from the "
        "predicted distribution (tf.random.categorical on the logits), not the argmax"
    )
    others = {c for c in text if c != reference.vocabulary()[favourite]}
    assert len(others) >= 40, (
        f"only {len(others)} different characters besides the likely one appeared in {length} "
        "samples: sample from the whole predicted distribution"
    )


@pytest.mark.trains
@pytest.mark.grade("generation", points=2)
@pytest.mark.budget(seconds=200)
def test_generated_text_after_training_holds_a_tune(student, trained):
    # Training stopped early when its test was judged: tries of 1500 then 2000 characters on that
    # model, and if neither holds a tune, the rest of the budget and the 2 tries of 2000 a correct
    # model had before the early stop. CALIBRATION.md, "Verdicts in seconds".
    if tune_after_training(student, trained).passed:
        return
    raise AssertionError(
        f"after the grader trained your model ({trained.steps} steps, held-out loss "
        f"{trained.after:.2f}), {GENERATION_TRIES} calls of generate_text(model, 'X', "
        f"{GENERATED_CHARACTERS}) held no complete tune (a snippet "
        "between blank lines starting with an X: line, with a K: line and notes). Feed each "
        "sampled character back in, and keep the LSTM's state between steps (reset it only at "
        "the start)"
    )

"""Reference computations for the music lab's hidden tests (grader side only, NumPy).

Nothing here is sent into the student's kernel: the tests send inputs (token arrays, random
logits) and compare what comes back with these functions in the grader's own process.
"""

from __future__ import annotations

import functools

import numpy as np

from introdl.data import load_songs

HELDOUT_SONGS = 80  # the last 80 tunes (~19,000 characters) are never trained on


@functools.cache
def vocabulary() -> tuple[str, ...]:
    """The lab's vocabulary, built as the notebook's locked cell builds it (83 characters)."""
    return tuple(sorted(set("\n\n".join(load_songs()))))


def encode(text: str) -> np.ndarray:
    """TEXT as indices into `vocabulary()`, int64, shape (len(text),)."""
    index = {char: i for i, char in enumerate(vocabulary())}
    return np.array([index[char] for char in text], dtype=np.int64)


def decode(ids: np.ndarray) -> str:
    chars = vocabulary()
    return "".join(chars[int(i)] for i in np.asarray(ids).ravel())


@functools.cache
def split_ids() -> tuple[np.ndarray, np.ndarray]:
    """(training ids, held-out ids): every tune but the last HELDOUT_SONGS, and those last ones."""
    songs = load_songs()
    train = encode("\n\n".join(songs[:-HELDOUT_SONGS]))
    heldout = encode("\n\n".join(songs[-HELDOUT_SONGS:]))
    return train, heldout


def heldout_windows(length: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    """COUNT consecutive non-overlapping windows of the held-out tunes: inputs and next characters.

    Both (count, length) int64; raises ValueError when the held-out text is too short.
    """
    _, ids = split_ids()
    if count * length + 1 > ids.size:
        raise ValueError(f"{count} windows of {length} need more than {ids.size} held-out ids")
    starts = np.arange(count) * length
    x = np.stack([ids[s : s + length] for s in starts])
    y = np.stack([ids[s + 1 : s + length + 1] for s in starts])
    return x, y


def log_softmax(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    return np.asarray(z - np.log(np.exp(z).sum(axis=-1, keepdims=True)))


def cross_entropy(labels: np.ndarray, logits: np.ndarray) -> np.ndarray:
    """Per-position sparse categorical cross-entropy of LOGITS (..., V) at LABELS (...)."""
    picked = np.take_along_axis(log_softmax(logits), np.asarray(labels)[..., None], axis=-1)
    return np.asarray(-picked[..., 0])

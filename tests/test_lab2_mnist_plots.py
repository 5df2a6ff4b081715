"""The MNIST lab's pictures: each is one picture in one axes (a grid of 32-40 axes took 0.7-2 s
of a check's notebook run to lay out and draw), with every digit whole and every caption."""

from __future__ import annotations

import matplotlib

matplotlib.use("agg")

import matplotlib.pyplot as plt
import numpy as np

from introdl.labs import lab2_mnist as lab


def digits(n: int) -> np.ndarray:
    """N distinct random digits (N, 28, 28, 1), pixels in [0, 1] with 0 and 1 in each."""
    images = np.random.default_rng(0).uniform(size=(n, 28, 28, 1)).astype(np.float32)
    images[:, 0, 0], images[:, 0, 1] = 0.0, 1.0
    return images


def shown(fig: object) -> tuple[object, np.ndarray]:
    (ax,) = fig.axes  # type: ignore[attr-defined]
    (image,) = ax.get_images()
    return ax, np.asarray(image.get_array())


def test_show_digits_draws_every_digit_whole_with_its_label_in_one_axes() -> None:
    images, labels = digits(35), np.arange(35) % 10
    fig = lab.show_digits(images, labels, rows=4, cols=8)
    ax, grid = shown(fig)
    for index in range(32):  # the 3 beyond rows * cols are left out
        row, col = divmod(index, 8)
        top, left = row * 40, col * 34
        assert np.array_equal(grid[top : top + 28, left : left + 28], images[index, :, :, 0])
    assert [t.get_text() for t in ax.texts] == [str(v) for v in labels[:32]]
    plt.close("all")


def test_show_predictions_draws_digits_captions_and_bars_in_one_axes() -> None:
    images, labels = digits(20), np.arange(20) % 10
    probabilities = np.full((20, 10), 0.02)
    probabilities[np.arange(20), (labels + (np.arange(20) % 2)) % 10] = 0.82  # odd ones wrong
    fig = lab.show_predictions(images, probabilities, labels, rows=4, cols=5)
    ax, grid = shown(fig)
    captions = [t for t in ax.texts]
    assert len(captions) == 20
    for index, caption in enumerate(captions):
        row, col = divmod(index, 5)
        top, left = row * 42, col * 78
        assert np.array_equal(grid[top : top + 28, left : left + 28], images[index, :, :, 0])
        predicted = int(np.argmax(probabilities[index]))
        assert caption.get_text() == f"{predicted} 82% (true {labels[index]})"
        wrong = index % 2 == 1
        assert caption.get_color() == (lab.WRONG_COLOUR if wrong else lab.CORRECT_COLOUR)
    bars = ax.patches
    assert len(bars) == 200
    heights = np.array([-bar.get_height() for bar in bars]).reshape(20, 10) / 27.5
    assert np.allclose(heights, probabilities)
    plt.close("all")

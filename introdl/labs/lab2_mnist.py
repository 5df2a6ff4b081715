"""Pictures for the MNIST lab: a grid of digits, the model's predictions on them, a loss curve.

Each function draws one matplotlib figure and returns it; the notebook shows it inline. Nothing
here trains or grades anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

CORRECT_COLOUR = "tab:blue"
WRONG_COLOUR = "tab:red"


def _pixels(image: Any) -> np.ndarray:
    """One digit as a (28, 28) array, whether it came as (28, 28) or (28, 28, 1)."""
    return np.squeeze(np.asarray(image))


def _mosaic(images: Any, cols: int, cell: tuple[int, int], gap: tuple[int, int]) -> np.ndarray:
    """IMAGES as (28, 28) digits, each scaled to [0, 1], laid COLS a row on white (0) in cells of
    CELL (height, width) pixels with GAP (below, right) between them: one picture for one axes (a
    grid of axes costs a tenth of a second or more each to lay out and draw)."""
    digits = [_pixels(image).astype(np.float32) for image in images]
    rows = max(1, -(-len(digits) // cols))
    height, width = cell
    grid = np.zeros((rows * (height + gap[0]), cols * (width + gap[1])), np.float32)
    for index, digit in enumerate(digits):
        row, col = divmod(index, cols)
        low, span = float(digit.min()), float(np.ptp(digit))
        top, left = row * (height + gap[0]), col * (width + gap[1])
        grid[top : top + digit.shape[0], left : left + digit.shape[1]] = (digit - low) / (span or 1)
    return grid


def show_digits(images: Any, labels: Any, rows: int = 4, cols: int = 8, title: str = "") -> Any:
    """The first rows * cols digits of IMAGES, each captioned with its label (one picture)."""
    import matplotlib.pyplot as plt

    count = min(rows * cols, len(images))
    grid = _mosaic([images[i] for i in range(count)], cols, (28, 28), (12, 6))
    fig, ax = plt.subplots(figsize=(1.3 * cols, 1.5 * rows))
    ax.imshow(grid, cmap="binary", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xlim(-0.5, cols * 34 - 6 - 0.5)
    ax.set_ylim(rows * 40 - 0.5, -0.5)
    ax.axis("off")
    for index in range(count):
        row, col = divmod(index, cols)
        ax.text(col * 34 + 14, row * 40 + 29, str(int(labels[index])), ha="center", va="top")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def show_predictions(
    images: Any, probabilities: Any, labels: Any, rows: int = 4, cols: int = 5, start: int = 0
) -> Any:
    """Digits with the model's probabilities beside each: predicted digit, confidence, true label.

    A correct prediction is blue and a wrong one red; the bar chart shows the probability the
    model gave to each digit 0-9 (the true digit's bar is outlined). One picture in one axes.
    """
    import matplotlib.pyplot as plt

    probabilities = np.asarray(probabilities)  # (N, 10)
    count = max(0, min(rows * cols, len(images) - start))
    # Each slot: the digit (28 x 28), then its ten bars (3 wide, 4 apart), the caption below.
    slot_w, slot_h = 78, 42
    grid = np.zeros((rows * slot_h, cols * slot_w), np.float32)
    digits = _mosaic([images[start + i] for i in range(count)], 1, (28, 28), (0, 0))
    xs, heights, bottoms, colours, edges = [], [], [], [], []
    fig, ax = plt.subplots(figsize=(2.6 * cols, 1.7 * rows))
    for slot in range(count):
        index = start + slot
        row, col = divmod(slot, cols)
        top, left = row * slot_h, col * slot_w
        grid[top : top + 28, left : left + 28] = digits[28 * slot : 28 * slot + 28]
        predicted = int(np.argmax(probabilities[index]))
        truth = int(labels[index])
        colour = CORRECT_COLOUR if predicted == truth else WRONG_COLOUR
        for digit in range(10):
            xs.append(left + 32 + 4 * digit + 1.5)
            heights.append(-27.5 * float(probabilities[index, digit]))
            bottoms.append(top + 27.5)
            colours.append(colour if digit == predicted else "lightgrey")
            edges.append("black" if digit == truth else "none")
        ax.text(
            left + 14,
            top + 29,
            f"{predicted} {100 * probabilities[index, predicted]:.0f}% (true {truth})",
            color=colour,
            fontsize=8,
            va="top",
        )
    ax.imshow(grid, cmap="binary", vmin=0, vmax=1, interpolation="nearest")
    if xs:
        ax.bar(xs, heights, width=3, bottom=bottoms, color=colours, edgecolor=edges, linewidth=0.6)
    # The bars' baselines and their 0-1 frames, as one set of lines.
    frame_x, frame_y = [], []
    for slot in range(count):
        row, col = divmod(slot, cols)
        top, left = row * slot_h, col * slot_w
        frame_x += [left + 31, left + 31, left + 72, left + 72, np.nan]
        frame_y += [top, top + 27.5, top + 27.5, top, np.nan]
    ax.plot(frame_x, frame_y, color="grey", linewidth=0.5)
    ax.set_xlim(-0.5, cols * slot_w - 0.5)
    ax.set_ylim(rows * slot_h - 0.5, -0.5)
    ax.axis("off")
    fig.tight_layout()
    return fig


def smooth(values: Sequence[float], factor: float = 0.9) -> np.ndarray:
    """Exponential moving average of VALUES (FACTOR: how much of the past to keep)."""
    out = np.empty(len(values))
    running = float(values[0]) if len(values) else 0.0
    for i, value in enumerate(values):
        running = factor * running + (1 - factor) * float(value)
        out[i] = running
    return out


def plot_loss(losses: Sequence[float], factor: float = 0.9, title: str = "") -> Any:
    """The loss of each training step (faint) and its moving average, on a log scale."""
    import matplotlib.pyplot as plt

    losses = [float(v) for v in losses]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    steps = np.arange(1, len(losses) + 1)
    ax.plot(steps, losses, color="tab:blue", alpha=0.3, label="loss of each step")
    ax.plot(steps, smooth(losses, factor), color="tab:blue", label="moving average")
    if losses and min(losses) > 0:
        ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel("cross-entropy loss")
    ax.legend()
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig

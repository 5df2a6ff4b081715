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


def show_digits(images: Any, labels: Any, rows: int = 4, cols: int = 8, title: str = "") -> Any:
    """The first rows * cols digits of IMAGES, each captioned with its label."""
    import matplotlib.pyplot as plt

    count = min(rows * cols, len(images))
    fig, axes = plt.subplots(rows, cols, figsize=(1.3 * cols, 1.5 * rows), squeeze=False)
    for index, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if index >= count:
            ax.axis("off")
            continue
        ax.imshow(_pixels(images[index]), cmap="binary")
        ax.set_xlabel(str(int(labels[index])))
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def show_predictions(
    images: Any, probabilities: Any, labels: Any, rows: int = 4, cols: int = 5, start: int = 0
) -> Any:
    """Digits with the model's probabilities beside each: predicted digit, confidence, true label.

    A correct prediction is blue and a wrong one red; the bar chart shows the probability the
    model gave to each digit 0-9 (the true digit's bar is outlined).
    """
    import matplotlib.pyplot as plt

    probabilities = np.asarray(probabilities)  # (N, 10)
    fig, axes = plt.subplots(rows, 2 * cols, figsize=(2.6 * cols, 1.7 * rows), squeeze=False)
    for slot in range(rows * cols):
        index = start + slot
        picture, bars = axes.flat[2 * slot], axes.flat[2 * slot + 1]
        for ax in (picture, bars):
            ax.set_xticks([])
            ax.set_yticks([])
        if index >= len(images):
            picture.axis("off")
            bars.axis("off")
            continue
        predicted = int(np.argmax(probabilities[index]))
        truth = int(labels[index])
        colour = CORRECT_COLOUR if predicted == truth else WRONG_COLOUR
        picture.imshow(_pixels(images[index]), cmap="binary")
        picture.set_xlabel(
            f"{predicted} {100 * probabilities[index, predicted]:.0f}% (true {truth})",
            color=colour,
            fontsize=8,
        )
        drawn = bars.bar(range(10), probabilities[index], color="lightgrey")
        drawn[predicted].set_color(colour)
        drawn[truth].set_edgecolor("black")
        bars.set_ylim(0, 1)
        bars.set_xticks(range(10))
        bars.tick_params(labelsize=6)
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

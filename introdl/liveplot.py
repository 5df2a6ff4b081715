"""A training curve that redraws itself in place while a notebook cell trains.

    plot = LossPlot(total=num_training_iterations)
    for step in range(num_training_iterations):
        ...
        history.append(loss)
        plot.update(history)
    plot.update(history, final=True)

The picture is drawn `every` seconds after the plot is made, then at most every `every` seconds
(drawing costs ~50-200 ms), and at the final update unless already up to date, in one output area
of the cell, updated through an IPython display handle. Outside IPython, `update` does nothing.
"""

from __future__ import annotations

import io
import time
from collections.abc import Sequence
from typing import Any

__all__ = ["LossPlot"]


class LiveFigure:
    """A figure redrawn in place in the notebook, at most every `every` seconds; subclasses
    say how it is drawn (`render`: values -> PNG bytes)."""

    every: float = 2.0

    def __init__(self, every: float = 2.0) -> None:
        self.every = every  # seconds between redraws
        self._handle: Any = None
        # The first drawing comes EVERY seconds after the plot is made, or at the final update: a
        # short run (the smoke budget's few steps, in a check) is drawn once, not twice.
        self._last = time.monotonic()
        self._shown: tuple[float, ...] | None = None  # the values drawn last

    def render(self, values: Sequence[float]) -> bytes:
        raise NotImplementedError

    def update(self, values: Sequence[float], *, final: bool = False) -> None:
        """Redraw with VALUES if `every` seconds have passed since the last redraw, or FINAL."""
        now = time.monotonic()
        if not final and now - self._last < self.every:
            return
        shown = tuple(values)
        if final and shown == self._shown:
            return  # the picture already shows these values (a short run: drawn at its last step)
        self._last = now
        try:
            from IPython import get_ipython
            from IPython.display import Image, display
        except ImportError:
            return
        if get_ipython() is None:
            return
        image = Image(data=self.render(values), format="png")
        self._shown = shown
        if self._handle is None:
            self._handle = display(image, display_id=True)
        else:
            self._handle.update(image)


class LossPlot(LiveFigure):
    """A live plot of a loss curve (a figure redrawn in place in the notebook)."""

    def __init__(
        self,
        total: int | None = None,
        every: float = 2.0,
        xlabel: str = "training iteration",
        ylabel: str = "loss",
        title: str = "training loss",
    ) -> None:
        super().__init__(every)
        self.total = total  # number of iterations planned (fixes the x axis), if known
        self.xlabel, self.ylabel, self.title = xlabel, ylabel, title

    def render(self, values: Sequence[float]) -> bytes:
        """The plot of VALUES as PNG bytes."""
        # A bare Figure, not pyplot: the inline backend would show a pyplot figure a second time
        # when the cell ends.
        from matplotlib.figure import Figure

        fig = Figure(figsize=(7, 3.2), layout="constrained")
        ax = fig.subplots()
        ax.plot(range(1, len(values) + 1), values, color="tab:blue", linewidth=1)
        if self.total:
            ax.set_xlim(0, self.total)
        if values:
            last = values[-1]
            done = f"{len(values)}/{self.total}" if self.total else f"{len(values)}"
            ax.set_title(f"{self.title}: iteration {done}, loss {last:.3f}")
        else:
            ax.set_title(self.title)
        ax.set_xlabel(self.xlabel)
        ax.set_ylabel(self.ylabel)
        ax.grid(alpha=0.3)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=80)
        return buffer.getvalue()

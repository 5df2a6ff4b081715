"""The live training plots (introdl/liveplot.py) in a real IPython shell: a short run (the smoke
budget's few steps, as in a check) is drawn once, at its final update, not also at its first step
(a drawing costs 0.1-0.2 s of a check's notebook run); a long run is drawn as it goes."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence

import pytest
from IPython.core.interactiveshell import InteractiveShell

from introdl.liveplot import LossPlot


class CountedPlot(LossPlot):
    """A LossPlot that notes the values of every drawing."""

    def __init__(self, every: float) -> None:
        super().__init__(total=10, every=every)
        self.drawn: list[list[float]] = []

    def render(self, values: Sequence[float]) -> bytes:
        self.drawn.append(list(values))
        return super().render(values)


@pytest.fixture
def shell() -> Iterator[InteractiveShell]:
    yield InteractiveShell.instance()
    InteractiveShell.clear_instance()


def test_a_short_run_is_drawn_once_at_its_end(shell: InteractiveShell) -> None:
    plot = CountedPlot(every=3600)
    history = [4.4]
    plot.update(history)  # the first step, just after the plot was made: not drawn yet
    history.append(3.9)  # the list grows in place, as in the notebooks' loops
    plot.update(history)
    plot.update(history, final=True)  # the end: drawn with every value
    assert plot.drawn == [[4.4, 3.9]]
    plot.update(history, final=True)  # already up to date
    assert len(plot.drawn) == 1


def test_a_long_run_is_drawn_as_it_goes_and_at_its_end(shell: InteractiveShell) -> None:
    plot = CountedPlot(every=1.0)
    history = [4.4]
    time.sleep(1.05)
    plot.update(history)  # EVERY has passed since the plot was made
    history.append(3.9)
    plot.update(history)  # too soon after the last drawing
    time.sleep(1.05)
    history.append(3.5)
    plot.update(history)
    plot.update(history, final=True)  # the picture already shows these values
    assert plot.drawn == [[4.4], [4.4, 3.9, 3.5]]
    history.append(3.1)
    plot.update(history, final=True)
    assert plot.drawn[-1] == [4.4, 3.9, 3.5, 3.1]

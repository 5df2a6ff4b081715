"""The course's regrade window, read from its nbgrader_config.py.

    c.Regrades.opens_after_hours = 24   # requests open this long after feedback is released
    c.Regrades.closes_after_days = 7    # and close this long after it (answered ones then close)
    c.Regrades.max_reason_chars = 4000  # the longest reason a student may write

Both are counted from the first release of the student's feedback for the lab. nbgrader ignores
the section (traitlets warns only about sections of classes it knows).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from traitlets import Float, Int
from traitlets.config import Configurable
from traitlets.config.loader import ConfigFileNotFound, PyFileConfigLoader

from introdl.grading.api import BadInput

HOUR = 3600.0
DAY = 86400.0


class Regrades(Configurable):
    """When students may ask for a regrade, after their feedback is released (issue 24)."""

    opens_after_hours = Float(
        24.0, help="hours after feedback is released before a student may file a request"
    ).tag(config=True)
    closes_after_days = Float(
        7.0, help="days after feedback is released when requests close (answered ones close too)"
    ).tag(config=True)
    max_reason_chars = Int(4000, help="the longest reason a student may give").tag(config=True)


@dataclass(frozen=True)
class Window:
    """The regrade window of one course, in seconds after a feedback release."""

    opens_after: float
    closes_after: float
    max_reason_chars: int

    def opens(self, released: float) -> float:
        return released + self.opens_after

    def closes(self, released: float) -> float:
        return released + self.closes_after


def regrade_window(course: Path) -> Window:
    """COURSE's window (defaults when nbgrader_config.py sets none); BadInput names the file."""
    path = course / "nbgrader_config.py"
    try:
        config = PyFileConfigLoader(path.name, path=str(course)).load_config()
    except ConfigFileNotFound:
        config = None
    except Exception as err:  # a syntax error in the file: say which file
        raise BadInput(f"{path}: cannot be read ({type(err).__name__}: {err})") from err
    settings = Regrades(config=config) if config is not None else Regrades()
    opens, closes = float(settings.opens_after_hours), float(settings.closes_after_days)
    if opens < 0:
        raise BadInput(f"{path}: c.Regrades.opens_after_hours must be 0 or more (it is {opens:g})")
    if closes <= 0:
        raise BadInput(
            f"{path}: c.Regrades.closes_after_days must be more than 0 (it is {closes:g})"
        )
    if closes * DAY <= opens * HOUR:
        raise BadInput(
            f"{path}: c.Regrades.closes_after_days ({closes:g} days) must end after "
            f"c.Regrades.opens_after_hours ({opens:g} hours), or no request could ever be filed"
        )
    if settings.max_reason_chars < 1:
        raise BadInput(f"{path}: c.Regrades.max_reason_chars must be at least 1")
    return Window(opens * HOUR, closes * DAY, int(settings.max_reason_chars))

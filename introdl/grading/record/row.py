"""One line of a class's table: what `introdl grade` shows and returns for each submission."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Row:
    """One line of the class table."""

    student: str
    score: float
    max_score: float
    status: str  # graded | unchanged | error
    message: str = ""

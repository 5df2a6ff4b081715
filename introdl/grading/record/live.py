"""A grading as it happens: the events `grade_submission` sends while it runs, for a live view.

The check service shows a student each result as it lands (docs/hub.md, "A verdict that
streams"): the notebook's cells as they run (and its public checks, the grade cells), the hidden
tests planned, then each test's outcome, fast tests first. Events are plain JSON-able dicts:

- `{"event": "notebook", "code_cells": N}`: the notebook starts (N code cells);
- `{"event": "cell", "code_cell": K, "grade_id": ID | None, "status": S}`: the K-th code cell
  (1-based, as JupyterLab counts code cells) ended with status S;
- `{"event": "tests", "planned": [{"name", "grade_id", "max_score", "visibility", "trains"}]}`:
  the hidden tests, in the order they will run;
- `{"event": "test", "result": TestResult.to_json()}`: one hidden test's outcome.

A listener that raises never breaks a grading: its error is logged and the grading goes on.
Events carry no test source, no inputs or expected values: only what results.json records.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger("introdl.grading")

Event = dict[str, Any]
Listener = Callable[[Event], None]


def notify(listener: Listener | None, event: Event) -> None:
    """Send EVENT to LISTENER (if any); a failing listener is logged, never raised."""
    if listener is None:
        return
    try:
        listener(event)
    except Exception:  # a live view must never cost a student their grading
        log.exception("a progress listener failed on %s", event.get("event"))

"""A lab's own grading limits: `grader_tests/<lab>/limits.toml` tightens the engine's defaults.

A lab with a grading-time limit (its issue: "at most 3 minutes, whatever the notebook's own
training budget") caps the notebook phase here, so a student who hard-codes a long training loop
(ignoring `introdl.budget`) has that cell interrupted, and the later cells and the hidden tests
still run. For example::

    # grader_tests/lab1_music/limits.toml
    cell_timeout = 60      # seconds for one notebook cell
    notebook_timeout = 100 # seconds for the whole notebook

Any numeric field of `Limits` may appear. A lab may only tighten a limit, never loosen it: the
smaller of the lab's value and the grader's (its `--limits`, or the defaults) wins.
"""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path
from typing import Any

from introdl.grading.errors import BadInput
from introdl.grading.limits import Limits

FILE = "limits.toml"


def lab_limits(suite_dir: Path, base: Limits) -> Limits:
    """BASE tightened by SUITE_DIR/limits.toml (BASE itself when the lab has no such file)."""
    path = suite_dir / FILE
    if not path.is_file():
        return base
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise BadInput(f"{path}: not valid TOML ({err}); fix or delete it") from err
    fields = {f.name for f in dataclasses.fields(Limits)}
    changes: dict[str, Any] = {}
    for key, value in data.items():
        if key not in fields:
            raise BadInput(
                f"{path}: unknown limit {key!r}; known limits: {', '.join(sorted(fields))}"
            )
        current = getattr(base, key)
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise BadInput(f"{path}: {key} must be a positive number, not {value!r}")
        changes[key] = min(current, type(current)(value))
    return dataclasses.replace(base, **changes)

"""Validating notebooks with nbgrader's own Validator, read through its API.

`nbgrader validate` exits 0 even when validation fails, so its exit code cannot be trusted; the
Validator's result dictionary can.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nbgrader.validator import Validator
from traitlets.config.loader import PyFileConfigLoader

from introdl.grading.errors import BadInput


def course_config(root: Path) -> Any:
    """The traitlets Config of the course (nbgrader_config.py at ROOT)."""
    return PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config()


def validate_notebook(root: Path, path: Path) -> dict[str, list[dict[str, str]]]:
    """nbgrader's validation result for PATH: keys `failed`, `changed`, `type_changed` when bad."""
    validator = Validator(config=course_config(root))
    result: dict[str, list[dict[str, str]]] = validator.validate(str(path))
    return result


def validate_source(root: Path, lab: str) -> str:
    """Validate the source notebook of LAB (solutions in place, so every check must pass)."""
    path = root / "source" / lab / f"{lab}.ipynb"
    result = validate_notebook(root, path)
    if result:
        problems = "\n".join(
            f"- {kind}: {item.get('raw_error') or item.get('source', '')[:300]}"
            for kind, items in result.items()
            for item in items
        )
        raise BadInput(
            f"{path.relative_to(root)} does not validate; fix the source notebook:\n{problems}"
        )
    return str(path.relative_to(root))

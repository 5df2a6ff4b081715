"""The course: where it lives, its nbgrader configuration, and running nbgrader on it.

The repository root holds nbgrader_config.py, source/<lab>/ and release/<lab>/. nbgrader is
imported inside the functions that need it: it is slow to import, and grading workers avoid it.

`nbgrader validate` exits 0 even when validation fails, so its exit code cannot be trusted; the
Validator's result dictionary can (`validate_notebook`).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from introdl.grading.errors import BadInput
from introdl.labs import LABS  # the one list of labs; tests patch course.LABS to add one


def course_root(start: Path | None = None) -> Path:
    """The course directory: $INTRODL_COURSE_ROOT, or the nearest parent holding nbgrader_config.py."""
    env = os.environ.get("INTRODL_COURSE_ROOT")
    if env:
        root = Path(env).resolve()
        if not (root / "nbgrader_config.py").is_file():
            raise BadInput(
                f"INTRODL_COURSE_ROOT={env} has no nbgrader_config.py; point it at the course repository"
            )
        return root
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / "nbgrader_config.py").is_file() and (candidate / "source").is_dir():
            return candidate
    raise BadInput(
        f"no course found at or above {here}: run this from the course repository "
        "(the folder with nbgrader_config.py and source/), or set INTRODL_COURSE_ROOT"
    )


def labs_with_source(root: Path) -> list[str]:
    """Lab ids that have a source notebook, in course order."""
    return [lab for lab in LABS if (root / "source" / lab / f"{lab}.ipynb").is_file()]


def resolve_labs(root: Path, lab: str) -> list[str]:
    """`all` or one lab id, checked against the source folder."""
    available = labs_with_source(root)
    if lab == "all":
        return available
    if lab not in available:
        known = ", ".join(available) or "none yet"
        raise BadInput(f"no source notebook source/{lab}/{lab}.ipynb; labs with a source: {known}")
    return [lab]


def nbgrader(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run a real nbgrader command from the course root; raise BadInput with its log on failure."""
    # nbgrader runs `alembic` (database migrations) from PATH: put this environment's bin first.
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "nbgrader", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise BadInput(f"`nbgrader {' '.join(args)}` failed in {cwd}:\n{proc.stdout}{proc.stderr}")
    return proc


def course_config(root: Path) -> Any:
    """The traitlets Config of the course (nbgrader_config.py at ROOT)."""
    from traitlets.config.loader import PyFileConfigLoader

    return PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config()


def validate_notebook(root: Path, path: Path) -> dict[str, list[dict[str, str]]]:
    """nbgrader's validation result for PATH: keys `failed`, `changed`, `type_changed` when bad."""
    from nbgrader.validator import Validator

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

"""Where the course lives: the repository root holds nbgrader_config.py and the lab folders."""

from __future__ import annotations

import os
from pathlib import Path

from introdl.grading.errors import BadInput

LABS = ("lab1_tensorflow", "lab1_music", "lab2_mnist", "lab2_debiasing", "lab3_rl")


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

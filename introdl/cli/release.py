"""Generating student releases from the source notebooks with nbgrader (`introdl release`)."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from introdl.grading.course import course_root, nbgrader, resolve_labs
from introdl.grading.errors import BadInput
from introdl.hub.course_limits import write_student_limits


@dataclass(frozen=True)
class ReleaseResult:
    labs: tuple[str, ...]
    notebooks: tuple[str, ...]
    configs: tuple[str, ...] = ()  # the course image's copy of the hand-in rules, regenerated


def generate(root: Path, lab: str) -> list[Path]:
    """Regenerate release/<lab>/ from source/<lab>/ with `nbgrader generate_assignment`."""
    check_source_notebook(root / "source" / lab / f"{lab}.ipynb")
    nbgrader("generate_assignment", lab, "--force", "--log-level=WARN", cwd=root)
    return sorted((root / "release" / lab).glob("*.ipynb"))


def check_source_notebook(path: Path) -> None:
    """A source notebook that is not valid JSON stops the release with the file named."""
    try:
        json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise BadInput(
            f"{path} is not a readable notebook ({err}); fix or restore it from git"
        ) from err


def release(*, lab: str = "all") -> ReleaseResult:
    """Regenerate the student release of LAB (or every lab) from its source notebook."""
    root = course_root()
    labs = resolve_labs(root, lab)
    made: list[str] = []
    for one in labs:
        made += [str(p.relative_to(root)) for p in generate(root, one)]
    config = write_student_limits(root)
    configs = (str(config.relative_to(root)),) if config else ()
    return ReleaseResult(labs=tuple(labs), notebooks=tuple(made), configs=configs)


def generate_into(root: Path, lab: str, workdir: Path) -> Path:
    """Regenerate LAB's release in a scratch course under WORKDIR; returns the release notebook.

    Used to check that the committed release is current without touching the real course.
    """
    shutil.copy(root / "nbgrader_config.py", workdir / "nbgrader_config.py")
    shutil.copytree(root / "source" / lab, workdir / "source" / lab)
    nbgrader(
        "generate_assignment",
        lab,
        "--force",
        "--log-level=WARN",
        f"--CourseDirectory.root={workdir}",
        f"--CourseDirectory.db_url=sqlite:///{workdir / 'gradebook.db'}",
        cwd=workdir,
    )
    return workdir / "release" / lab / f"{lab}.ipynb"

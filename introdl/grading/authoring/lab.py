"""One lab's files as the kit sees them: its source and release notebooks, its grading folder, its
variants, and the modules of its grading folder loaded the way the grader loads the suite."""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import nbformat

from introdl.grading.course import course_root
from introdl.grading.submission import grade_points

# Every lab's grading folder holds these (docs/hidden-tests.md); topic modules may sit beside them.
REQUIRED_FILES = (
    "__init__.py",
    "in_kernel.py",
    "reference.py",
    "limits.toml",
    "datasets.txt",
    "CALIBRATION.md",
    "calibrate.py",
)


@dataclass(frozen=True)
class Lab:
    """LAB in the course at ROOT (default: the course this process runs in)."""

    name: str
    root: Path

    @classmethod
    def named(cls, name: str, root: Path | None = None) -> Lab:
        return cls(name, (root or course_root()).resolve())

    @property
    def source(self) -> Path:
        return self.root / "source" / self.name / f"{self.name}.ipynb"

    @property
    def release(self) -> Path:
        return self.root / "release" / self.name / f"{self.name}.ipynb"

    @property
    def suite(self) -> Path:
        """The lab's grading folder, grader_tests/<lab>/."""
        return self.root / "grader_tests" / self.name

    @property
    def fixtures(self) -> Path:
        """The lab's known-wrong and correct-but-different variants."""
        return self.root / "tests" / "fixtures" / self.name

    def points(self) -> dict[str, float]:
        """{grade id: points} of the release's autograded cells (what the suite must add up to)."""
        return grade_points(nbformat.read(self.release, as_version=4))

    def source_cells(self) -> dict[str, str]:
        """The source notebook's code by cell id; answer cells are also reachable by grade id
        (cell ids win a clash)."""
        source = nbformat.read(self.source, as_version=4)
        cells = {str(cell.get("id")): str(cell.source) for cell in source.cells}
        for cell in source.cells:
            grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
            if grade_id:
                cells.setdefault(grade_id, cell.source)
        return cells

    def answer_cells(self) -> tuple[str, ...]:
        """The grade ids of the source's answer (solution) cells, in notebook order."""
        source = nbformat.read(self.source, as_version=4)
        return tuple(
            cell.metadata["nbgrader"]["grade_id"]
            for cell in source.cells
            if cell.cell_type == "code"
            and cell.get("metadata", {}).get("nbgrader", {}).get("solution")
        )

    def module(self, name: str) -> ModuleType:
        """grader_tests/<lab>/<name>.py as the module `grader_tests.<lab>.<name>`: the same
        module object the hidden-test runner imports when it collects the suite."""
        if not (self.suite / f"{name}.py").is_file():
            raise FileNotFoundError(
                f"{self.suite / name}.py: no such module in {self.name}'s folder"
            )
        # another course's grader_tests imported earlier must not stand in (as in the runner)
        package = sys.modules.get("grader_tests")
        file = getattr(package, "__file__", None)
        if file and not Path(file).resolve().is_relative_to(self.root):
            for loaded in [n for n in sys.modules if n.split(".")[0] == "grader_tests"]:
                del sys.modules[loaded]
        if sys.path[:1] != [str(self.root)]:
            sys.path.insert(0, str(self.root))
        return importlib.import_module(f"grader_tests.{self.name}.{name}")

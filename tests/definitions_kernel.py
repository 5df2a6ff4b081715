"""A real sandboxed kernel holding a lab's definitions, to grade many code variants quickly.

Grading a whole notebook per variant would cost a TensorFlow import and the notebook's data
loading each time. Instead one bwrap kernel (the grader's own sandbox, smoke budget, public data)
runs the source notebook's set-up cells once; each variant then re-runs the notebook's answer
cells and its own code on top, and the real hidden-test runner grades what the kernel defines
now, through the real `student` door.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import nbformat

from introdl.grading.door.student import Student
from introdl.grading.hidden.runner import run_hidden_tests
from introdl.grading.kernel.kernel import SandboxedKernel
from introdl.grading.kernel.launch import start_kernel
from introdl.grading.record.results import TestResult
from introdl.grading.sandbox.public_data import public_data_dir
from introdl.grading.submission import grade_points
from tests.sandboxed import ROOT, test_slot


class DefinitionsKernel:
    """LAB's set-up cells run once in a sandboxed kernel; `define` swaps the answers in and out."""

    def __init__(
        self, lab: str, setup_cells: Sequence[str], answer_cells: Sequence[str], workdir: Path
    ) -> None:
        self.lab = lab
        source = nbformat.read(ROOT / "source" / lab / f"{lab}.ipynb", as_version=4)
        release = nbformat.read(ROOT / "release" / lab / f"{lab}.ipynb", as_version=4)
        self.points = grade_points(release)
        cells = {cell.get("id"): cell.source for cell in source.cells}
        for cell in source.cells:  # cells are also reachable by grade id (cell ids win a clash)
            grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
            if grade_id:
                cells.setdefault(grade_id, cell.source)
        missing = [c for c in [*setup_cells, *answer_cells] if c not in cells]
        if missing:
            raise ValueError(f"source/{lab}/{lab}.ipynb has no cells with (grade) ids {missing}")
        self.answers = [(cell_id, cells[cell_id]) for cell_id in answer_cells]
        self.kernel: SandboxedKernel = start_kernel(
            workdir=workdir,
            datadir=public_data_dir(),
            backend="bwrap",
            slot=test_slot(),
            env={"INTRODL_BUDGET": "smoke"},
        )
        try:
            for cell_id in setup_cells:
                self.execute(cells[cell_id], f"the source's cell {cell_id!r}")
        except BaseException:
            self.kernel.shutdown()
            raise

    def execute(self, code: str, what: str) -> None:
        result = self.kernel.execute(code, timeout=300)
        if result.status != "ok":
            raise AssertionError(f"{what} failed in the kernel: {result.ename}: {result.evalue}")

    def define(self, variant_code: str = "", variant_name: str = "the variant") -> None:
        """Define the source's answers, then run VARIANT_CODE (which may replace some of them)."""
        for cell_id, code in self.answers:
            self.execute(code, f"the source's cell {cell_id!r}")
        if variant_code:
            self.execute(variant_code, variant_name)

    def student(self) -> Student:
        return Student(self.kernel)

    def grade(self, seed: int, only: Sequence[str] = ()) -> list[TestResult]:
        """The hidden suite's results for what the kernel defines now."""
        suite = ROOT / "grader_tests" / self.lab
        return run_hidden_tests(
            suite, Student(self.kernel), seed=seed, points=self.points, only=only
        )

    def shutdown(self) -> None:
        self.kernel.shutdown()

"""A real sandboxed kernel holding a lab's definitions, to grade many variants quickly.

Grading a whole notebook per variant would cost a TensorFlow import and the notebook's data
loading each time. Instead one kernel (the grader's own sandbox, smoke budget, public data) runs
the source notebook's set-up cells once; each variant then re-runs the notebook's answer cells and
its own code on top, and the real hidden-test runner grades what the kernel defines now, through
the real `student` door. Whole gradings (sandbox, notebook, hidden tests) are `grade_file`.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import nbformat

from introdl.grading.authoring.lab import Lab
from introdl.grading.authoring.variants import Variant
from introdl.grading.door.student import Student
from introdl.grading.grade import GradeOptions, grade_submission
from introdl.grading.hidden.runner import run_hidden_tests
from introdl.grading.kernel.kernel import SandboxedKernel
from introdl.grading.kernel.launch import start_kernel
from introdl.grading.record.results import Results, TestResult
from introdl.grading.sandbox.public_data import public_data_dir
from introdl.grading.submission import submission_at


def calibration_slot() -> int:
    """A sandbox slot (uid) away from batch grading's and the engine tests' slots."""
    return 3900 + os.getpid() % 90


class DefinitionsKernel:
    """LAB's set-up cells run once in a sandboxed kernel; `define` swaps the answers in and out.

    SETUP_CELLS and ANSWER_CELLS are cell ids (or grade ids) of the source notebook; ANSWER_CELLS
    None means its answer (solution) cells.
    """

    def __init__(
        self,
        lab: Lab,
        setup_cells: Sequence[str],
        answer_cells: Sequence[str] | None,
        workdir: Path,
        *,
        slot: int | None = None,
        backend: str = "bwrap",
    ) -> None:
        self.lab = lab
        self.points = lab.points()
        cells = lab.source_cells()
        answers = lab.answer_cells() if answer_cells is None else tuple(answer_cells)
        missing = [c for c in [*setup_cells, *answers] if c not in cells]
        if missing:
            raise ValueError(f"{lab.source} has no cells with (grade) ids {missing}")
        self.answers = [(cell_id, cells[cell_id]) for cell_id in answers]
        self.kernel: SandboxedKernel = start_kernel(
            workdir=workdir,
            datadir=public_data_dir(lab.root, lab.name),
            backend=backend,
            slot=calibration_slot() if slot is None else slot,
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

    def define(self, variant: Variant | None = None) -> None:
        """Define the source's answers, then run VARIANT's code (which replaces some of them)."""
        for cell_id, code in self.answers:
            self.execute(code, f"the source's cell {cell_id!r}")
        if variant is not None:
            self.execute(variant.code, variant.name)

    def student(self) -> Student:
        return Student(self.kernel)

    def grade(self, seed: int, only: Sequence[str] = ()) -> list[TestResult]:
        """The hidden suite's results for what the kernel defines now."""
        return run_hidden_tests(
            self.lab.suite, Student(self.kernel), seed=seed, points=self.points, only=only
        )

    def shutdown(self) -> None:
        self.kernel.shutdown()

    def __enter__(self) -> DefinitionsKernel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()


def grade_file(
    lab: Lab,
    nb: nbformat.NotebookNode,
    *,
    seed: int,
    only: Sequence[str] = (),
    slot: int | None = None,
    backend: str = "bwrap",
) -> Results:
    """Grade notebook NB as a submission of LAB through the whole pipeline (sandbox, notebook,
    hidden tests), as `introdl grade-notebook` does."""
    with tempfile.TemporaryDirectory(prefix="introdl-kit-") as tmp:
        folder = Path(tmp) / "variant" / lab.name
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / f"{lab.name}.ipynb")
        options = GradeOptions(backend=backend, seed=seed, only=tuple(only))
        graded = grade_submission(
            lab.root,
            submission_at(folder, lab.name, student="variant"),
            options,
            slot=calibration_slot() if slot is None else slot,
        )
    return graded.results

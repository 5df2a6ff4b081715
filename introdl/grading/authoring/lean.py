"""A variant as a lean notebook: the source's set-up and definition cells plus the variant's code.

Used where a variant is graded through the whole pipeline without the notebook's training (lab3_rl)
or run in this process (`namespace`: calibration loops and the public checks' tests). The lean
notebook is the source notebook reduced to its first code cell (the set-up) and its definition
cells (cells that only import and define functions or classes: solutions and given helpers, no
training, no plots), with the variant's code appended as a last cell: later definitions win, so
every function that calls the replaced one by name uses it. The answer cells keep their nbgrader
metadata, so the grading engine recognises the lab (it puts the public-check cells back from the
release, where they fail harmlessly without the training).
"""

from __future__ import annotations

import ast
import copy
from typing import Any

import nbformat

from introdl.grading.authoring.lab import Lab
from introdl.grading.authoring.variants import Variant


def is_definition_cell(source: str) -> bool:
    """A cell that only imports and defines functions or classes (runs in no time)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return False
    allowed = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef)
    return bool(tree.body) and all(isinstance(node, allowed) for node in tree.body)


def lean_notebook(lab: Lab, variant: Variant | None = None) -> nbformat.NotebookNode:
    """LAB's source set-up and definition cells, plus VARIANT's code as the last cell."""
    nb: nbformat.NotebookNode = nbformat.read(lab.source, as_version=4)
    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    keep = [code_cells[0]] + [c for c in code_cells[1:] if is_definition_cell(c.source)]
    lean = copy.deepcopy(nb)
    lean.cells = [copy.deepcopy(c) for c in keep]
    for cell in lean.cells:
        cell.outputs = []
        cell.execution_count = None
    if variant is not None:
        lean.cells.append(nbformat.v4.new_code_cell(variant.code, id="variant"))
    return lean


def namespace(lab: Lab, variant: Variant | None = None) -> dict[str, Any]:
    """The lean notebook's definitions, executed in this process (not sandboxed: trusted code)."""
    ns: dict[str, Any] = {"__name__": f"{lab.name}_notebook"}
    for index, cell in enumerate(lean_notebook(lab, variant).cells):
        exec(compile(cell.source, f"<{lab.name} cell {index}>", "exec"), ns)
    return ns

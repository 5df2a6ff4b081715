"""Running notebooks the way students and the course tests do (nbclient, a real kernel)."""

from __future__ import annotations

import ast
import os
from collections.abc import Iterator
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbformat import NotebookNode

ROOT = Path(__file__).resolve().parents[1]


def execute(
    path: Path, *, budget: str = "smoke", allow_errors: bool = False, timeout: int = 900
) -> NotebookNode:
    """Execute a notebook in its own folder with INTRODL_BUDGET set; returns the executed copy."""
    nb = nbformat.read(path, as_version=4)
    env_before = os.environ.get("INTRODL_BUDGET")
    os.environ["INTRODL_BUDGET"] = budget
    try:
        client = NotebookClient(
            nb,
            timeout=timeout,
            kernel_name="python3",
            allow_errors=allow_errors,
            resources={"metadata": {"path": str(path.parent)}},
        )
        client.execute()
    finally:
        if env_before is None:
            os.environ.pop("INTRODL_BUDGET", None)
        else:
            os.environ["INTRODL_BUDGET"] = env_before
    return nb


def errors(nb: NotebookNode) -> Iterator[tuple[int, NotebookNode, NotebookNode]]:
    """(cell index, cell, error output) for every error output in the notebook."""
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.output_type == "error":
                yield index, cell, output


def assigned_names(source: str) -> set[str]:
    """Names a cell binds at top level (assignments, defs, classes, imports)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.alias):
            names.add((node.asname or node.name).split(".")[0])
    return names


def is_grade_cell(cell: NotebookNode) -> bool:
    return bool(cell.get("metadata", {}).get("nbgrader", {}).get("grade", False))

"""The student phase: run a submitted notebook cell by cell in its sandboxed kernel.

Each code cell gets `Limits.cell_timeout` seconds, and the notebook as a whole
`Limits.notebook_timeout`; a cell that overruns is interrupted (and the sandbox killed if the
interrupt is ignored). Cells after a killed or dead kernel, or past the notebook's budget, are
recorded as ``skipped``. The kernel stays alive afterwards for the hidden tests. When a cell's or
the notebook's time runs out while the sandbox used little CPU, the kernel records why
(``host_busy``: the grading host was too busy; kernel/cpu.py).
"""

from __future__ import annotations

import copy
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

import nbformat

from introdl.grading.errors import BadInput
from introdl.grading.kernel.kernel import SandboxedKernel
from introdl.grading.kernel.outputs import OutputBudget
from introdl.grading.kernel.protocol import SandboxEvent

CellStatus = Literal["ok", "error", "timeout", "killed", "died", "skipped"]


@dataclass
class CellRecord:
    """What happened to one code cell."""

    index: int  # position in the notebook's cells (markdown cells included)
    cell_id: str | None
    grade_id: str | None  # nbgrader's grade_id, when the cell has one
    status: CellStatus
    code_number: int | None = None  # 1-based, among code cells only: as the student counts them
    heading: str | None = None  # the nearest markdown heading above the cell, as plain text
    duration: float = 0.0
    ename: str | None = None
    evalue: str | None = None
    traceback: list[str] = field(default_factory=list)
    outputs: list[dict[str, Any]] = field(default_factory=list)
    truncated: bool = False
    execution_count: int | None = None


@dataclass
class NotebookRun:
    """The student phase of one submission."""

    cells: list[CellRecord]
    events: list[SandboxEvent]
    duration: float
    kernel_alive: bool  # whether hidden tests can still reach the kernel

    @property
    def counts(self) -> dict[str, int]:
        """How many cells ended in each status."""
        counts: dict[str, int] = {}
        for cell in self.cells:
            counts[cell.status] = counts.get(cell.status, 0) + 1
        return counts

    def to_dict(self, *, with_outputs: bool = False) -> dict[str, Any]:
        """Plain data for results.json (outputs left out unless asked for)."""
        cells = [asdict(c) for c in self.cells]
        if not with_outputs:
            for cell in cells:
                cell.pop("outputs")
        return {
            "cells": cells,
            "events": [asdict(e) for e in self.events],
            "duration": self.duration,
            "kernel_alive": self.kernel_alive,
            "counts": self.counts,
        }

    def executed_notebook(self, notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
        """A copy of `notebook` with the recorded (capped) outputs and execution counts."""
        result = copy.deepcopy(notebook)
        by_index = {c.index: c for c in self.cells}
        for index, cell in enumerate(result.cells):
            record = by_index.get(index)
            if cell.cell_type != "code" or record is None:
                continue
            cell.outputs = [nbformat.from_dict(o) for o in record.outputs]
            cell.execution_count = record.execution_count
        return result


def load_notebook(notebook: Path | nbformat.NotebookNode) -> nbformat.NotebookNode:
    if isinstance(notebook, nbformat.NotebookNode):
        return notebook
    try:
        node = nbformat.read(str(notebook), as_version=4)
        return cast(nbformat.NotebookNode, node)
    except Exception as err:
        raise BadInput(
            f"{notebook} is not a readable notebook ({err}); resubmit a .ipynb file"
        ) from err


def run_notebook(
    kernel: SandboxedKernel,
    notebook: Path | nbformat.NotebookNode,
    on_cell: Callable[[CellRecord], None] | None = None,
) -> NotebookRun:
    """Execute the code cells of `notebook` in `kernel`; never raises for what the cells do.

    ON_CELL (if given) is called with each code cell's record once the cell has ended (skipped
    cells included), in order: the live view of a grading (introdl/grading/record/live.py)."""
    nb = load_notebook(notebook)
    limits = kernel.limits
    start, window = time.monotonic(), kernel.meter.mark()
    deadline = start + limits.notebook_timeout
    budget = OutputBudget(limits.notebook_output_bytes)
    events_before = len(kernel.events)
    records: list[CellRecord] = []
    skip_reason: str | None = None
    heading: str | None = None
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            heading = last_heading(str(cell.source)) or heading
        if cell.cell_type != "code":
            continue
        record = CellRecord(
            index,
            cell.get("id"),
            cell.get("metadata", {}).get("nbgrader", {}).get("grade_id"),
            "skipped",
            code_number=len(records) + 1,
            heading=heading,
        )
        records.append(record)
        if skip_reason is None and kernel.dead:
            skip_reason = "the kernel is no longer running"
        remaining = deadline - time.monotonic()
        if skip_reason is None and remaining <= 0:
            skip_reason = f"the notebook's {limits.notebook_timeout:.0f} s budget was used up"
            kernel.record("budget_exhausted", skip_reason, index)
            kernel.judge(window, limits.notebook_timeout, index)
        if skip_reason is not None:
            record.evalue = skip_reason
            _ended(on_cell, record)
            continue
        if not cell.source.strip():
            record.status = "ok"
            _ended(on_cell, record)
            continue
        by_budget = remaining < limits.cell_timeout
        result = kernel.execute(
            cell.source, timeout=min(limits.cell_timeout, remaining), budget=budget, cell=index
        )
        if by_budget and result.status in ("timeout", "killed"):
            kernel.record(
                "budget_exhausted", "the notebook's time budget ran out in this cell", index
            )
        record.status = result.status
        record.duration = result.duration
        record.ename, record.evalue = result.ename, result.evalue
        record.traceback = result.traceback
        record.outputs = result.outputs
        record.truncated = result.truncated
        record.execution_count = result.execution_count
        _ended(on_cell, record)
    kernel.timings["notebook"] = round(time.monotonic() - start, 3)
    return NotebookRun(
        records,
        kernel.events[events_before:],
        kernel.timings["notebook"],
        kernel.alive,
    )


def _ended(on_cell: Callable[[CellRecord], None] | None, record: CellRecord) -> None:
    if on_cell is not None:
        on_cell(record)


HEADING_CHARS = 80  # a heading is the student's text: kept short wherever it is shown
_ATX = re.compile(r"^ {0,3}#{1,6}(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")
_HTML = re.compile(r"<h[1-6][^>]*>(.*?)</h[1-6]>", re.I | re.S)
_TAG = re.compile(r"<[^>]*>")
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")


def last_heading(markdown: str) -> str | None:
    """The last heading of a markdown cell as JupyterLab's table of contents shows it (`#`
    headings, underlined ones, <h1>-<h6>; none inside fenced code), in plain text and short;
    None when the cell has none."""
    found: str | None = None
    fenced = False
    previous = ""
    for line in markdown.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            atx = _ATX.match(line)
            if atx:
                found = atx.group(1) or found
            elif _SETEXT.match(line) and previous.strip() and not _ATX.match(previous):
                found = previous
            for html in _HTML.findall(line):
                found = _TAG.sub("", html)
        previous = "" if fenced else line
    if found is None:
        return None
    text = " ".join(_UNPRINTABLE.sub(" ", found.replace("`", "").replace("**", "")).split())
    if len(text) > HEADING_CHARS:
        text = text[: HEADING_CHARS - 1].rstrip() + "…"
    return text or None

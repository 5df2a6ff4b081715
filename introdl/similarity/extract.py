"""What a student wrote: the answer cells of a notebook, minus what the release already holds.

A submission's solution regions are its answer cells (nbgrader `solution: true`, matched to the
release by grade id). Inside each, a line the release's cell also has (compared in order, by
difflib, without indentation, comments or spaces and with every name but attributes read as one,
so renaming a variable of a template line leaves it template) is template: it is shown in the
report but never fingerprinted.
A notebook without answer-cell metadata (a file from another course, a public solution) and a .py
file are read whole and compared against every line of the release instead.
"""

from __future__ import annotations

import difflib
import json
import keyword
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAX_NOTEBOOK_BYTES = 50 * 1024 * 1024
# ~25,000 lines; a class of normal answers is ~10 s per 300 students, this alone ~8 s
MAX_CODE_CHARS = 1_000_000
WHOLE_FILE = "(whole file)"
COMMENT = re.compile(r"#[^'\"]*$")
NAME = re.compile(r"(?<![.\w])[A-Za-z_]\w*")


class Unreadable(Exception):
    """A file that cannot be compared; reported with this message and skipped."""


@dataclass(frozen=True)
class Region:
    """One answer cell (or a whole file): its source and the lines its author wrote."""

    grade_id: str
    source: str
    own_lines: frozenset[int]  # 1-based numbers of the lines that are not the release's


@dataclass(frozen=True)
class Document:
    """One submission or one reference-corpus file, as regions of code."""

    name: str  # a student id, or a corpus file's path relative to its folder
    path: str
    regions: tuple[Region, ...]


@dataclass(frozen=True)
class Cell:
    grade_id: str | None
    solution: bool
    source: str


@dataclass(frozen=True)
class Template:
    """The release notebook: its answer cells by grade id, and all its code lines."""

    cells: dict[str, str]
    lines: frozenset[str]  # the line_key of every non-empty code line of the release
    code: tuple[str, ...]  # every code cell of the release, in order


def _source(cell: dict[str, Any]) -> str:
    src = cell.get("source", "")
    if isinstance(src, list):
        return "".join(str(s) for s in src)
    return str(src)


def read_cells(path: Path) -> list[Cell]:
    """The code cells of the notebook at PATH, or Unreadable saying what is wrong with it."""
    if path.is_symlink():
        raise Unreadable(f"{path} is a symbolic link, not a notebook")
    try:
        if path.stat().st_size > MAX_NOTEBOOK_BYTES:
            raise Unreadable(f"{path} is larger than {MAX_NOTEBOOK_BYTES // 2**20} MB")
        nb = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise Unreadable(
            f"{path} is not a readable notebook ({type(err).__name__}: {err})"
        ) from err
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise Unreadable(f"{path} is JSON but not a notebook (no list of cells)")
    cells = []
    for cell in nb["cells"]:
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        meta = cell.get("metadata", {})
        grader = meta.get("nbgrader", {}) if isinstance(meta, dict) else {}
        grader = grader if isinstance(grader, dict) else {}
        gid = grader.get("grade_id")
        cells.append(
            Cell(gid if isinstance(gid, str) else None, bool(grader.get("solution")), _source(cell))
        )
    return cells


def read_template(path: Path) -> Template:
    """The release notebook at PATH as a Template (Unreadable if it cannot be read)."""
    cells = read_cells(path)
    answers = {c.grade_id: c.source for c in cells if c.solution and c.grade_id}
    lines = frozenset(k for c in cells for line in c.source.splitlines() if (k := line_key(line)))
    return Template(answers, lines, tuple(c.source for c in cells))


def line_key(line: str) -> str:
    """LINE as compared with the release's: no comment, no spaces, names (not attributes) as V."""
    code = COMMENT.sub("", line)
    code = NAME.sub(lambda m: m.group() if keyword.iskeyword(m.group()) else "V", code)
    return "".join(code.split())


def own_lines_against(source: str, template: str) -> frozenset[int]:
    """Lines of SOURCE that difflib does not match to a line of TEMPLATE (see line_key)."""
    mine = [line_key(line) for line in source.splitlines()]
    theirs = [line_key(line) for line in template.splitlines()]
    matcher = difflib.SequenceMatcher(None, mine, theirs, autojunk=False)
    own: set[int] = set()
    for tag, i1, i2, _, _ in matcher.get_opcodes():
        if tag in ("replace", "delete"):
            own.update(range(i1 + 1, i2 + 1))
    return frozenset(n for n in own if mine[n - 1])


def own_lines_in_set(source: str, lines: Iterable[str]) -> frozenset[int]:
    """Lines of SOURCE whose line_key is not among LINES, for files without answer cells."""
    known = set(lines)
    return frozenset(
        n
        for n, line in enumerate(source.splitlines(), 1)
        if (k := line_key(line)) and k not in known
    )


def regions_of(cells: list[Cell], template: Template) -> tuple[Region, ...]:
    """The solution regions of a notebook's CELLS, the release's lines marked as template."""
    answers = [c for c in cells if c.solution and c.grade_id in template.cells]
    if answers:
        seen: set[str] = set()
        regions = []
        for cell in answers:
            assert cell.grade_id is not None
            if (
                cell.grade_id in seen
            ):  # a duplicated answer cell: the first one counts, as in grading
                continue
            seen.add(cell.grade_id)
            own = own_lines_against(cell.source, template.cells[cell.grade_id])
            regions.append(Region(cell.grade_id, cell.source, own))
        return tuple(regions)
    # No answer cells (a public solution, a notebook stripped of its metadata): every code cell.
    return tuple(
        Region(f"cell {i}", c.source, own_lines_in_set(c.source, template.lines))
        for i, c in enumerate(cells, 1)
        if c.source.strip()
    )


def read_document(path: Path, name: str, template: Template) -> Document:
    """A notebook or .py file at PATH as a Document (Unreadable if it cannot be read)."""
    regions: tuple[Region, ...]
    if path.suffix == ".py":
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise Unreadable(f"{path} is not readable ({type(err).__name__}: {err})") from err
        regions = (Region(WHOLE_FILE, text, own_lines_in_set(text, template.lines)),)
    else:
        regions = regions_of(read_cells(path), template)
    size = sum(len(r.source) for r in regions)
    if size > MAX_CODE_CHARS:
        raise Unreadable(
            f"{path} holds {size:,} characters of answer code (more than {MAX_CODE_CHARS:,}); "
            "it was not compared: look at it by hand"
        )
    return Document(name, str(path), regions)

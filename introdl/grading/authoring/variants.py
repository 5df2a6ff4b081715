"""A lab's variants: known-wrong (`wrong-<mistake>.py`) and correct-but-different
(`correct-<how>.py`) versions of the source notebook's answers, in tests/fixtures/<lab>/.

One shape for every lab: a docstring saying the mistake (or the difference) in words, a header
line `# caught-by: <grade ids or test names>` naming the hidden tests that must fail it (empty for
a correct variant), then code that, run after the source's answers, redefines what it changes
(later definitions win). A variant may split its code into sections headed
`# --- <answer grade id> ---`, one per answer cell it replaces, when a test puts it into a
notebook cell by cell (`submission_notebook`).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

from introdl.grading.authoring.lab import Lab

CAUGHT_BY = re.compile(r"^# caught-by:(.*)$", re.MULTILINE)
SECTION = re.compile(r"^# --- (\w+) ---$", re.MULTILINE)


@dataclass(frozen=True)
class Variant:
    name: str  # the file name without .py
    doc: str  # the mistake (or the difference), in words
    caught_by: tuple[str, ...]  # hidden grade ids or test names that must fail it
    code: str  # the whole file: run after the source's answers

    @property
    def wrong(self) -> bool:
        return self.name.startswith("wrong-")

    @property
    def correct(self) -> bool:
        return self.name.startswith("correct-")

    @property
    def sections(self) -> dict[str, str]:
        """{answer grade id: code that replaces that cell}; {} when the file has no sections."""
        parts = SECTION.split(self.code)
        return {parts[i]: parts[i + 1].strip() + "\n" for i in range(1, len(parts), 2)}


def load_variant(path: Path) -> Variant:
    text = path.read_text(encoding="utf-8")
    match = CAUGHT_BY.search(text)
    if match is None:
        raise ValueError(f"{path}: add a '# caught-by: ...' line (empty for a correct variant)")
    caught = tuple(s.strip() for s in match.group(1).split(",") if s.strip())
    variant = Variant(path.stem, ast.get_docstring(ast.parse(text)) or "", caught, text)
    if variant.wrong and not caught:
        raise ValueError(f"{path}: a wrong variant names the hidden tests that catch it")
    if variant.correct and caught:
        raise ValueError(f"{path}: a correct variant is caught by nothing ('# caught-by:')")
    return variant


def variants(lab: Lab) -> list[Variant]:
    """Every variant of LAB, wrong ones first, by name."""
    found = [
        load_variant(path)
        for path in sorted(lab.fixtures.glob("*.py"))
        if path.name.startswith(("wrong-", "correct-"))
    ]
    return sorted(found, key=lambda v: (not v.wrong, v.name))


def variant_named(lab: Lab, name: str) -> Variant | None:
    """The variant NAME of LAB; None for "reference" (the source notebook's own answers)."""
    if name == "reference":
        return None
    by_name = {v.name: v for v in variants(lab)}
    if name not in by_name:
        raise ValueError(f"{lab.name} has no variant {name!r}; it has {sorted(by_name)}")
    return by_name[name]


def submission_notebook(lab: Lab, variant: Variant | None) -> nbformat.NotebookNode:
    """The source notebook with VARIANT's sections in place of the answer cells they name, or,
    for a variant without sections, its code as a last cell: what a student would submit."""
    nb: nbformat.NotebookNode = nbformat.read(lab.source, as_version=4)
    if variant is None:
        return nb
    sections = variant.sections
    if not sections:
        nb.cells.append(nbformat.v4.new_code_cell(variant.code, id="variant"))
        return nb
    for cell in nb.cells:
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if grade_id in sections:
            cell.source = sections[grade_id]
    return nb

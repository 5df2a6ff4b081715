"""Are the lab helpers named by lab id, do the notebooks use only those names, and do the old topic
names still work for notebooks fetched before the switch?"""

from __future__ import annotations

import ast
import importlib
import re
import tempfile
from pathlib import Path

import nbformat
import pytest

from introdl.labs import LABS as COURSE_LABS
from tests.conftest import ROOT

OLD_NAMES = {
    "introdl.music": "introdl.labs.lab1_music",
    "introdl.midi": "introdl.labs.lab1_music_midi",
    "introdl.mnist": "introdl.labs.lab2_mnist",
    "introdl.debiasing": "introdl.labs.lab2_debiasing",
    "introdl.rl": "introdl.labs.lab3_rl",
}
LABS = sorted(p.name for p in (ROOT / "source").iterdir() if p.is_dir())


@pytest.mark.parametrize(("old", "new"), OLD_NAMES.items())
def test_old_helper_name_is_the_same_module(old: str, new: str) -> None:
    """Does `import introdl.<topic>` give the very module `introdl.labs.<lab id>` (one object)?"""
    assert importlib.import_module(old) is importlib.import_module(new)


def test_every_lab_with_helpers_has_them_under_its_id() -> None:
    """Is each helper module in introdl/labs/ named after a lab id (or lab id + a part)?"""
    helpers = [p.stem for p in (ROOT / "introdl" / "labs").glob("*.py") if p.stem != "__init__"]
    assert helpers
    for name in helpers:
        assert any(name == lab or name.startswith(f"{lab}_") for lab in LABS), name


def introdl_imports(path: Path) -> set[str]:
    """The introdl modules a notebook's code cells import (`from introdl import m` counts as m)."""
    notebook = nbformat.read(path, as_version=4)
    code = "\n".join(c.source for c in notebook.cells if c.cell_type == "code")
    names = set(re.findall(r"^\s*(?:from|import)\s+(introdl[\w.]*)", code, re.M))
    names |= {
        f"introdl.{m}"
        for names_list in re.findall(r"^\s*from introdl import ([\w, ]+)", code, re.M)
        for m in (part.strip() for part in names_list.split(","))
        if (ROOT / "introdl" / f"{m}.py").exists()
    }
    return names


@pytest.mark.parametrize("folder", ["source", "release"])
@pytest.mark.parametrize("lab", LABS)
def test_notebooks_use_only_the_lab_id_names(folder: str, lab: str) -> None:
    """Does every source and released notebook import its helpers as `introdl.labs.<lab id>`,
    never by an old name (the shim exists only for notebooks fetched before the switch)?"""
    names = introdl_imports(ROOT / folder / lab / f"{lab}.ipynb")
    assert not names & set(OLD_NAMES), f"{folder}/{lab} imports {sorted(names & set(OLD_NAMES))}"


def test_old_names_are_caught_in_every_import_form() -> None:
    """Would `from introdl import music`, `import introdl.rl` and `from introdl.mnist import x`
    each be seen as an old name?"""
    cells = [
        "from introdl import budget, music",
        "import introdl.rl",
        "from introdl.mnist import show_digits",
    ]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "old.ipynb"
        nbformat.write(notebook, path)
        found = introdl_imports(path)
    assert found & set(OLD_NAMES) == {"introdl.music", "introdl.rl", "introdl.mnist"}


@pytest.mark.parametrize("lab", LABS)
def test_released_notebook_imports_resolve(lab: str) -> None:
    """Does every `introdl...` module a released notebook imports still import?"""
    names = introdl_imports(ROOT / "release" / lab / f"{lab}.ipynb")
    assert names, f"release/{lab} imports nothing from introdl"
    for name in sorted(names):
        importlib.import_module(name)


def lab_lists(source: str) -> list[int]:
    """Lines where SOURCE spells out a list or tuple of three or more lab ids."""
    return [
        node.lineno
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Tuple | ast.List)
        and len(node.elts) >= 3
        and all(isinstance(e, ast.Constant) and e.value in COURSE_LABS for e in node.elts)
    ]


def test_the_list_of_labs_is_written_once() -> None:
    """Is `introdl.labs.LABS` the only place in the package, tests and benchmarks that lists the
    labs (the engine, the hub and the tests import it), and does it match source/?"""
    assert sorted(COURSE_LABS) == LABS
    spelled = {
        str(path.relative_to(ROOT)): lines
        for folder in ("introdl", "tests", "benchmarks")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if (lines := lab_lists(path.read_text(encoding="utf-8")))
    }
    assert spelled == {"introdl/labs/__init__.py": [spelled["introdl/labs/__init__.py"][0]]}


def test_a_second_list_of_labs_would_be_caught() -> None:
    """Would a module that writes the labs out again be found (a tuple or a list, not a pair)?"""
    labs = ", ".join(repr(lab) for lab in COURSE_LABS)
    assert lab_lists(f"LABS = ({labs})\nother = [{labs}]\npair = ('lab1_music', 'lab3_rl')") == [
        1,
        2,
    ]

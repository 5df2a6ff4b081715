"""Does every import in introdl/ point one way, and is every module short enough to read whole?

The grading engine is folders in the order a submission flows through them (docs/grading.md);
each imports only the ones below it. Read with `ast` (nothing is imported), counting imports
inside functions and under TYPE_CHECKING too: a loop hidden in a lazy import is still a loop.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

PACKAGE = ROOT / "introdl"
MAX_LINES = 400
# Lab-helper modules still past MAX_LINES, with the work that will split them (issue 14, point 4).
# The test fails when one of them shrinks, so this list only ever gets shorter.
# Modules allowed past MAX_LINES, each with its reason (none today; the test fails when one
# listed here shrinks, so the list cannot go stale).
TOO_LONG: dict[str, str] = {}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The introdl modules that the module NAME at PATH imports, anywhere in its body."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # `from pkg import mod` imports the module pkg.mod; `from mod import name` imports mod
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                for alias in node.names
            ]
        else:
            continue
        found.update(t for t in targets if t in known and t != name)
    return found


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {name: imports_of(name, path, set(mods)) for name, path in mods.items()}


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def folder_of(module: str) -> str:
    """introdl.grading.sandbox.bwrap -> introdl.grading.sandbox; flat modules stand alone."""
    parts = module.split(".")
    if parts[:2] == ["introdl", "grading"] and len(parts) > 3:
        return ".".join(parts[:3])
    return module


def test_no_module_imports_itself_back() -> None:
    """Is the import graph of introdl/ free of cycles (lazy and TYPE_CHECKING imports included)?"""
    edges = graph()
    assert "introdl.grading.kernel.kernel" in edges  # the walk found the packages
    cycle = find_cycle(edges)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_grading_folders_import_only_downwards() -> None:
    """Taken as whole folders (sandbox/, kernel/, door/, hidden/, record/, commands/), do imports
    still point one way?"""
    folders: dict[str, set[str]] = {}
    for module, targets in graph().items():
        here = folder_of(module)
        folders.setdefault(here, set()).update(
            folder_of(t) for t in targets if folder_of(t) != here
        )
    cycle = find_cycle(folders)
    assert cycle is None, "folders import each other: " + " -> ".join(cycle or [])


def test_the_kernel_imports_none_of_its_callers() -> None:
    """Does the kernel class leave starting it, running notebooks and the door to its callers?"""
    imported = graph()["introdl.grading.kernel.kernel"]
    below = {
        "introdl.grading.kernel.protocol",
        "introdl.grading.kernel.outputs",
        "introdl.grading.kernel.cpu",
    }
    assert {m for m in imported if m.startswith("introdl.grading.kernel.")} <= below
    assert not {m for m in imported if m.startswith("introdl.grading.door")}


def test_lab_helpers_never_import_grading() -> None:
    """Do the modules students import stay clear of the grading engine (one-way dependency)?"""
    # The command line, the similarity report, the check service and the staff loop are staff
    # tooling above the engine; everything else (the lab helpers, and introdl.hub, whose exchange
    # client runs in students' servers) stays clear of it.
    staff_side = (
        "introdl.grading",
        "introdl.cli",
        "introdl.similarity",
        "introdl.checkwork",
        "introdl.staff",
        "introdl.lms",
    )
    for module, targets in graph().items():
        if not module.startswith(staff_side):
            assert not [t for t in targets if t.startswith("introdl.grading")], module


# What sits above the engine and uses it: the command line, the hub and its services, the
# similarity report, the staff tools, the LMS. The engine imports none of them.
ABOVE_THE_ENGINE = (
    "introdl.cli",
    "introdl.hub",
    "introdl.checkwork",
    "introdl.similarity",
    "introdl.staff",
    "introdl.lms",
)


def upward_imports(edges: dict[str, set[str]]) -> dict[str, set[str]]:
    """Engine module -> the modules above the engine that it imports (lazily or not)."""
    found = {
        module: {t for t in targets if t.startswith(ABOVE_THE_ENGINE)}
        for module, targets in edges.items()
        if module.startswith("introdl.grading")
    }
    return {module: up for module, up in found.items() if up}


def test_the_engine_imports_nothing_above_it() -> None:
    """Does introdl/grading/ stay clear of the CLI, the hub, the check service, the similarity
    report, the staff tools and the LMS (they call the engine, never the other way)?"""
    assert upward_imports(graph()) == {}


def test_an_upward_import_would_be_caught() -> None:
    """Would an engine module that imports the hub, the CLI or a staff tool be named?"""
    edges = {
        "introdl.grading.commands.release": {"introdl.hub.course_limits", "introdl.grading.course"},
        "introdl.grading.cli": {"introdl.similarity.command", "introdl.lms.command"},
        "introdl.grading.batch": {"introdl.grading.grade"},
        "introdl.cli": {"introdl.grading.batch"},
    }
    assert upward_imports(edges) == {
        "introdl.grading.commands.release": {"introdl.hub.course_limits"},
        "introdl.grading.cli": {"introdl.similarity.command", "introdl.lms.command"},
    }


def test_no_module_is_too_long_to_read_whole() -> None:
    """Is every module of introdl/ at most 400 lines (the known exceptions still listed)?"""
    lengths = {
        name: len(path.read_text(encoding="utf-8").splitlines()) for name, path in modules().items()
    }
    too_long = {name: n for name, n in lengths.items() if n > MAX_LINES}
    assert set(too_long) <= set(TOO_LONG), {n: too_long[n] for n in set(too_long) - set(TOO_LONG)}
    shrunk = set(TOO_LONG) - set(too_long)
    assert not shrunk, f"now within {MAX_LINES} lines: take {sorted(shrunk)} off TOO_LONG"


def test_the_cycle_finder_names_a_cycle() -> None:
    """Would a loop actually be caught and named?"""
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None

"""Does every import in introdl/ point one way, and is every module short enough to read whole?

The grading engine is folders in the order a submission flows through them (docs/grading.md);
each imports only the ones below it. Read with `ast` (nothing is imported), counting imports
inside functions and under TYPE_CHECKING too: a loop hidden in a lazy import is still a loop.
"""

from __future__ import annotations

import ast
from pathlib import Path

from introdl.grading.authoring import REQUIRED_FILES
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


# The engine's faces for what sits above it: introdl.grading.api (services and commands) and the
# engine's own commands, which the command line calls (grade, grade-notebook).
ENGINE_FACES = ("introdl.grading.api", "introdl.grading.commands")


def past_the_face(edges: dict[str, set[str]]) -> dict[str, set[str]]:
    """Module above the engine -> the engine modules it imports other than through a face."""
    found = {
        module: {
            t for t in targets if t.startswith("introdl.grading") and not t.startswith(ENGINE_FACES)
        }
        for module, targets in edges.items()
        if module.startswith(ABOVE_THE_ENGINE)
    }
    return {module: inner for module, inner in found.items() if inner}


def test_services_use_the_engine_through_its_face() -> None:
    """Do the CLI, the hub, the check service, the staff tools, the LMS and the similarity report
    reach the engine only through introdl.grading.api (and the engine's commands), never its
    kernel, sandbox or gradebook modules directly?"""
    assert past_the_face(graph()) == {}


def test_a_reach_past_the_face_would_be_caught() -> None:
    """Would a service importing the engine's kernel launcher directly be named?"""
    edges = {
        "introdl.checkwork.workers": {"introdl.grading.kernel.launch", "introdl.grading.api"},
        "introdl.cli": {"introdl.grading.commands.grade", "introdl.grading.api"},
        "introdl.grading.batch": {"introdl.grading.grade"},
    }
    assert past_the_face(edges) == {"introdl.checkwork.workers": {"introdl.grading.kernel.launch"}}


def test_the_face_names_only_what_exists() -> None:
    """Does every name of introdl.grading.api resolve to the engine module it names?"""
    import importlib

    from introdl.grading import api

    for name, where in api.WHERE.items():
        assert getattr(importlib.import_module(where), name) is getattr(api, name), name


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


# --- grader_tests/: the lab author's kit (docs/hidden-tests.md) -------------------------------

SUITES = ROOT / "grader_tests"
TESTS = ROOT / "tests"
FACE = "introdl.grading.authoring"
# Everything of introdl a lab's grading folder may import besides the face: the modules students
# import too (lab helpers, data, public checks), never the engine or a staff service.
STAFF_SIDE = (
    "introdl.grading",
    "introdl.similarity",
    "introdl.check",
    "introdl.staff",
    "introdl.lms",
    "introdl.hub",
)
# Within a lab's folder, each module imports only layers below its own: reference.py and
# in_kernel.py at the bottom, topic modules (any other name), the suite's test_*.py files and a
# conftest.py, then calibrate.py, which nothing imports.
LAYERS = {"reference": 0, "in_kernel": 0, "topic": 1, "test": 2, "conftest": 2, "calibrate": 3}
# Still outside the kit, each with its reason; the test fails when one is no longer needed.
PENDING: dict[str, str] = {}


def layer_of(module: str) -> int:
    stem = module.rsplit(".", 1)[-1]
    if stem.startswith("test_"):
        return LAYERS["test"]
    return LAYERS.get(stem, LAYERS["topic"])


def dotted_imports(path: Path, package: str, *, names: bool = True) -> set[str]:
    """Every module name PATH imports (absolute), anywhere in its body, plus the names passed to
    importlib.import_module as a literal: a dynamic import is still an import. With NAMES,
    `from a import b` also gives `a.b` (b may be a module)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            if names:
                found.update(f"{base}.{alias.name}" for alias in node.names)
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.add(node.args[0].value)
    return found


def suite_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(SUITES.rglob("*.py"))}


def suite_graph() -> dict[str, set[str]]:
    """grader_tests' modules -> the grader_tests modules each imports."""
    mods = suite_modules()
    return {
        name: {m for m in dotted_imports(path, name.rpartition(".")[0]) if m in mods and m != name}
        for name, path in mods.items()
    }


def test_grader_tests_import_only_the_kit_of_the_engine() -> None:
    """Does every module of grader_tests/ reach the engine only through its public face,
    introdl.grading.authoring (and otherwise only what students import too)?"""
    outside = {}
    for name, path in suite_modules().items():
        imported = dotted_imports(path, name.rpartition(".")[0], names=False)
        used = {m for m in imported if m.startswith(STAFF_SIDE) and m != FACE}
        if used and name not in PENDING:
            outside[name] = sorted(used)
    assert not outside, f"import these through {FACE} (docs/hidden-tests.md): {outside}"


def test_grader_tests_have_no_cycle_and_import_only_downwards() -> None:
    """Within grader_tests/, is there no import cycle, does no lab import another lab's folder,
    and does each module import only layers below it (reference.py and in_kernel.py at the
    bottom, topic modules, then the suite's test_*.py, then calibrate.py, which nothing imports)?"""
    edges = suite_graph()
    assert "grader_tests.lab2_mnist.test_lab2_mnist" in edges  # the walk found the suites
    cycle = find_cycle(edges)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])
    for module, targets in edges.items():
        lab = module.split(".")[1] if module.count(".") >= 2 else ""
        for target in targets:
            assert target.split(".")[1:2] == [lab], f"{module} imports another lab: {target}"
            if target != f"grader_tests.{lab}":
                assert layer_of(target) < layer_of(module), f"{module} imports up: {target}"


def test_grader_tests_and_tests_do_not_import_each_other() -> None:
    """Do the hidden suites stand without the project's tests, and do the project's tests reach a
    lab's folder only through the kit (`Lab.module`, `run_calibration`), as the grader does?"""
    up = {
        name: found
        for name, path in suite_modules().items()
        if name not in PENDING
        and (found := sorted(m for m in dotted_imports(path, name) if m.split(".")[0] == "tests"))
    }
    assert not up, f"grader_tests/ must stand without tests/: {up}"
    down = {}
    for path in sorted(TESTS.rglob("*.py")):
        if "fixtures" in path.relative_to(TESTS).parts:
            continue  # example courses of the engine's own tests
        name = module_name(path)
        found = sorted(m for m in dotted_imports(path, name) if m.split(".")[0] == "grader_tests")
        if found:
            down[name] = found
    assert not down, f"reach grader_tests/ through introdl.grading.authoring.Lab: {down}"


def test_pending_exceptions_are_still_needed() -> None:
    """Is every module listed in PENDING still outside the kit (else take it off)?"""
    for name in PENDING:
        path = suite_modules()[name]
        imported = dotted_imports(path, name.rpartition(".")[0], names=False)
        outside = [m for m in imported if m.split(".")[0] == "tests" or m.startswith(STAFF_SIDE)]
        assert [m for m in outside if m != FACE], f"{name} is in the kit now: take it off PENDING"


def test_every_lab_folder_has_the_same_shape() -> None:
    """Does every lab's grading folder hold the same required files, a hidden suite, and a
    calibrate.py that the one runner can run (MODES)?"""
    labs = sorted(p for p in SUITES.iterdir() if p.is_dir() and p.name != "__pycache__")
    assert len(labs) >= 5, labs
    for lab in labs:
        missing = [f for f in REQUIRED_FILES if not (lab / f).is_file()]
        assert not missing, f"{lab}: add {missing} (docs/hidden-tests.md)"
        assert (lab / f"test_{lab.name}.py").is_file(), f"{lab}: no hidden suite test_{lab.name}.py"
        name = f"grader_tests.{lab.name}.calibrate"
        tree = ast.parse((lab / "calibrate.py").read_text(encoding="utf-8"))
        assigned = {
            target.id
            for node in tree.body
            if isinstance(node, ast.Assign)
            for target in node.targets
            if isinstance(target, ast.Name)
        }
        assert "MODES" in assigned or name in PENDING, f"{lab}/calibrate.py: define MODES"


def test_grader_tests_modules_are_short_and_the_engine_imports_no_lab() -> None:
    """Is every module of grader_tests/ at most 400 lines (a longer suite splits by topic,
    docs/hidden-tests.md), and does no module of introdl/ import grader_tests/ or tests/ (the
    engine loads a suite by its path)?"""
    long = {
        n: k
        for n, p in suite_modules().items()
        if (k := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert not long, long
    for name, path in modules().items():
        found = {m.split(".")[0] for m in dotted_imports(path, name)} & {"grader_tests", "tests"}
        assert not found, f"{name} imports {found}"

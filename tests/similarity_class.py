"""Generated classes for `introdl similarity`, built from the project's own notebooks.

A course folder holds the real nbgrader_config.py, source/ and release/ of one lab, and
submitted/<student>/<lab>/<lab>.ipynb notebooks: the release with some answer cells filled in.
What goes in them: the instructor's answers, the project's correct variants (tests/fixtures), code
generated at random (unique per student, for the benchmark), and copies of any of these disguised
the cheap way (renamed variables, functions in another order, other comments and spacing).
"""

from __future__ import annotations

import ast
import copy
import io
import json
import random
import re
import shutil
import tokenize
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
SOLUTION_MARKERS = re.compile(r"^\s*### (BEGIN|END) SOLUTION\s*\n", re.M)
SECTION = re.compile(r"^# --- (\w+) ---$", re.M)
TODO = re.compile(r"^( *)# TODO: your code here\n\1raise NotImplementedError\n?", re.M)
CORRECT_VARIANTS = {
    "lab1_music": FIXTURES / "lab1_music" / "correct-alternative-implementations.py",
    "lab2_mnist": FIXTURES / "lab2_mnist" / "correct-functional-api-and-compiled-step.py",
    "lab2_debiasing": FIXTURES / "lab2_debiasing" / "correct-alternative.py",
    "lab3_rl": FIXTURES / "lab3_rl" / "correct-numpy-sampling-and-vectorised-returns.py",
}

Answers = dict[str, str]  # answer cell grade id -> the cell's code


def _notebook(path: Path) -> dict[str, Any]:
    nb: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return nb


def _text(cell: dict[str, Any]) -> str:
    src = cell["source"]
    return "".join(src) if isinstance(src, list) else str(src)


def _answer_cells(nb: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        c["metadata"]["nbgrader"]["grade_id"]: c
        for c in nb["cells"]
        if c.get("metadata", {}).get("nbgrader", {}).get("solution")
    }


def reference_answers(lab: str) -> Answers:
    """The instructor's answer cells of LAB, solution markers removed."""
    cells = _answer_cells(_notebook(ROOT / "source" / lab / f"{lab}.ipynb"))
    return {gid: SOLUTION_MARKERS.sub("", _text(c)) for gid, c in cells.items()}


def release_answers(lab: str) -> Answers:
    cells = _answer_cells(_notebook(ROOT / "release" / lab / f"{lab}.ipynb"))
    return {gid: _text(c) for gid, c in cells.items()}


def variant_answers(lab: str, path: Path | None = None) -> Answers:
    """A correct variant's code, cell by cell: its `# --- <grade id> ---` sections, or else each
    top-level definition put in the answer cell that defines that name (helpers go with the next)."""
    text = (path or CORRECT_VARIANTS[lab]).read_text(encoding="utf-8")
    parts = SECTION.split(text)
    if len(parts) > 1:
        return {parts[i]: parts[i + 1].strip() + "\n" for i in range(1, len(parts), 2)}
    owner: dict[str, str] = {}
    for gid, code in reference_answers(lab).items():
        for node in ast.parse(code).body:
            if isinstance(node, ast.FunctionDef | ast.ClassDef):
                owner[node.name] = gid
    lines = text.splitlines(keepends=True)
    answers: Answers = {}
    pending: list[str] = []
    for node in ast.parse(text).body:
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue  # the module docstring
        first = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
        chunk = "".join(lines[first - 1 : node.end_lineno])
        name = getattr(node, "name", None)
        if name in owner:
            gid = owner[name]
            answers[gid] = answers.get(gid, "") + "".join(pending) + chunk + "\n\n"
            pending = []
        else:
            pending.append(chunk + "\n\n")
    return {gid: code.strip() + "\n" for gid, code in answers.items()}


def build_course(dest: Path, lab: str) -> Path:
    """A course folder for LAB at DEST: the real config, source and release, nothing submitted."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "nbgrader_config.py", dest / "nbgrader_config.py")
    for kind in ("source", "release"):
        shutil.copytree(ROOT / kind / lab, dest / kind / lab, dirs_exist_ok=True)
    return dest


def submit(course: Path, lab: str, student: str, answers: Answers) -> Path:
    """The release with ANSWERS in its answer cells, as submitted/<student>/<lab>/<lab>.ipynb."""
    nb = copy.deepcopy(_notebook(course / "release" / lab / f"{lab}.ipynb"))
    for gid, cell in _answer_cells(nb).items():
        if gid in answers:
            cell["source"] = answers[gid]
    path = course / "submitted" / student / lab / f"{lab}.ipynb"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(nb, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return path


# --- Disguises a copier can apply in minutes ---------------------------------------------------


def _bound_names(code: str) -> set[str]:
    """Names CODE binds locally: assignment and loop targets (not parameters or imports)."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return set()
    return {
        n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
    }


def rename(code: str, rng: random.Random, keep: frozenset[str] = frozenset()) -> str:
    """CODE with its local variables renamed (attributes and keyword arguments untouched)."""
    names = sorted(_bound_names(code) - keep)
    new = {
        n: f"{rng.choice(['tmp', 'val', 'my', 'x', 'res'])}_{n[:2]}{i}" for i, n in enumerate(names)
    }
    tokens = list(tokenize.generate_tokens(io.StringIO(code).readline))
    lines = code.splitlines(keepends=True)
    renamed = []
    depth = 0
    for i, tok in enumerate(tokens):
        if tok.type == tokenize.OP and tok.string in "([{":
            depth += 1
        elif tok.type == tokenize.OP and tok.string in ")]}":
            depth -= 1
        prev = tokens[i - 1].string if i else ""
        nxt = tokens[i + 1].string if i + 1 < len(tokens) else ""
        keyword_argument = depth > 0 and nxt == "="
        if tok.type == tokenize.NAME and tok.string in new and prev != "." and not keyword_argument:
            renamed.append(tok)
    for tok in reversed(renamed):
        row, col = tok.start
        line = lines[row - 1]
        lines[row - 1] = line[:col] + new[tok.string] + line[tok.end[1] :]
    return "".join(lines)


def recomment(code: str, rng: random.Random) -> str:
    """CODE with every comment reworded, a comment added above some lines, and blank lines added."""
    out = []
    for line in code.splitlines():
        line = re.sub(
            r"#.*$", lambda _: f"# {rng.choice(['step', 'see lecture', 'ok', 'here'])}", line
        )
        if (
            line.strip()
            and not line.lstrip().startswith(("#", "@", ")", "]"))
            and rng.random() < 0.3
        ):
            indent = line[: len(line) - len(line.lstrip())]
            if not line.rstrip().endswith((",", "(", "[")):
                out.append(f"{indent}# my own comment {rng.randrange(1000)}")
        out.append(line.rstrip() + ("   " if rng.random() < 0.2 else ""))
        if rng.random() < 0.15 and not line.rstrip().endswith((",", "(", "[", "\\")):
            out.append("")
    return "\n".join(out) + "\n"


def reorder(code: str) -> str:
    """CODE with its top-level statements reversed, and the methods of each class reversed."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return code
    lines = code.splitlines(keepends=True)

    def chunk(node: ast.stmt) -> str:
        first = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
        text = "".join(lines[first - 1 : node.end_lineno])
        if isinstance(node, ast.ClassDef) and len(node.body) > 1:
            head_end = min(n.lineno for n in node.body) - 1
            head = "".join(lines[first - 1 : head_end])
            body = [chunk(n) for n in node.body]
            keep = [b for b in body if b.lstrip().startswith('"""')]
            methods = [b for b in body if b not in keep]
            return head + "".join(keep) + "\n".join(reversed(methods))
        return text

    return "\n\n".join(chunk(n).rstrip("\n") + "\n" for n in reversed(tree.body))


def disguise(answers: Answers, seed: int, keep: frozenset[str] = frozenset()) -> Answers:
    """A copy of ANSWERS renamed, reordered and recommented: what the report must still find."""
    rng = random.Random(seed)
    return {gid: recomment(rename(reorder(code), rng, keep), rng) for gid, code in answers.items()}


# --- Unique code for a large class (the benchmark) ---------------------------------------------

FUNCTIONS = tuple(
    [
        "abs",
        "add",
        "argmax",
        "argmin",
        "argsort",
        "clip",
        "concatenate",
        "cumsum",
        "diff",
        "divide",
        "dot",
        "exp",
        "expand_dims",
        "flip",
        "floor",
        "gather",
        "log",
        "log1p",
        "matmul",
        "maximum",
        "mean",
        "minimum",
        "multiply",
        "negative",
        "ones_like",
        "pad",
        "power",
        "reshape",
        "roll",
        "round",
        "sign",
        "sin",
        "sort",
        "sqrt",
        "square",
        "squeeze",
        "stack",
        "std",
        "subtract",
        "sum",
        "take",
        "tanh",
        "tile",
        "transpose",
        "where",
        "zeros_like",
        "cos",
        "arctan",
        "hypot",
        "logaddexp",
        "nan_to_num",
        "outer",
        "ravel",
        "repeat",
    ]
)
MODULES = ("np", "tf", "tf.math", "keras.ops", "np.linalg", "tf.nn")


def random_statements(rng: random.Random, indent: str, count: int) -> str:
    """COUNT lines of plausible array code, different for every seed."""
    names = [f"v{i}" for i in range(6)]
    out = []
    while len(out) < count:
        v, a, b = rng.choice(names), rng.choice(names), rng.choice(names)
        fn, mod, n = rng.choice(FUNCTIONS), rng.choice(MODULES), rng.randrange(1, 1000)
        kind = rng.randrange(4)
        if kind == 0:
            out.append(f"{indent}{v} = {mod}.{fn}({a}, {n})")
        elif kind == 1:
            out.append(f"{indent}{v} = {a} {rng.choice('+-*/')} {mod}.{fn}({b}) * {n}")
        elif kind == 2:
            out.append(f"{indent}for {v} in range({n}):")
            out.append(f"{indent}    {a} = {mod}.{fn}({a}, axis={rng.randrange(3)}) + {v}")
        else:
            out.append(f"{indent}if {a}.shape[{rng.randrange(3)}] > {n}:")
            out.append(f"{indent}    {v} = {mod}.{fn}({b}, {a})")
    return "\n".join(out) + "\n"


def random_answers(lab: str, seed: int) -> Answers:
    """The release's answer cells with each TODO replaced by as many random lines as the answer has."""
    rng = random.Random(seed)
    reference = reference_answers(lab)
    answers: Answers = {}
    for gid, code in release_answers(lab).items():
        size = max(2, len(reference[gid].splitlines()) - len(code.splitlines()) + 2)
        todos = max(1, len(TODO.findall(code)))
        lines = max(2, size // todos)
        answers[gid] = TODO.sub(lambda m, n=lines: random_statements(rng, m.group(1), n), code)
    return answers

"""Tokens with what a copier changes cheaply taken out, cut into order-free units.

From Python's own tokenizer: comments, docstrings, blank lines and indentation are dropped; a name
the author chose (a local variable, a parameter, a helper) becomes `V`, while what a copier cannot
rename stays: keywords, builtins, attribute names (`tf.reduce_mean` -> `V.reduce_mean` unless `tf`
is the release's), keyword-argument names, and the names the release imports or defines
(functions, classes). Every top-level statement of a cell, and every statement of
a class body, is a unit of its own: fingerprints never span two units, so reordering functions or
methods changes nothing.
"""

from __future__ import annotations

import ast
import builtins
import io
import keyword
import re
import tokenize
from collections.abc import Iterable
from dataclasses import dataclass

from introdl.similarity.extract import Region

DROPPED = {
    tokenize.COMMENT,
    tokenize.NL,
    tokenize.INDENT,
    tokenize.DEDENT,
    tokenize.ENCODING,
    tokenize.ENDMARKER,
}
BUILTINS = frozenset(dir(builtins))
MAGIC = re.compile(r"^(\s*)[%!]", re.MULTILINE)
# A fallback for cells Python cannot tokenize (unbalanced brackets, broken indentation).
LEXEME = re.compile(
    r"(?P<comment>#[^\n]*)|(?P<string>'''.*?'''|\"\"\".*?\"\"\"|'[^'\n]*'|\"[^\"\n]*\")"
    r"|(?P<name>[A-Za-z_]\w*)|(?P<number>\d[\w.]*)|(?P<op>\*\*|//|==|!=|<=|>=|->|[^\s\w])",
    re.DOTALL,
)
PLACEHOLDER = "V"
NEWLINE = ";"


@dataclass(frozen=True)
class Token:
    text: str  # the normalised token
    start: int  # character offsets in the region's source
    end: int


def vocabulary(sources: Iterable[str]) -> frozenset[str]:
    """Names the release imports or defines (functions, classes), and the builtins.

    Its variables are left out: a student may reuse `model` or `loss` as a local name, and a
    copier may rename it.
    """
    names: set[str] = set(BUILTINS)
    for source in sources:
        try:
            tree = ast.parse(MAGIC.sub(r"\1#", source))
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, ast.Import | ast.ImportFrom):
                names.update((a.asname or a.name).split(".")[0] for a in node.names)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names.add(node.name)
    return frozenset(names)


def _line_starts(source: str) -> list[int]:
    starts = [0]
    for line in source.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    return starts


def _raw_tokens(source: str) -> list[tuple[str, str, int, int]]:
    """(kind, text, start, end) of SOURCE: Python's tokenizer, or the regex lexer if it fails."""
    starts = _line_starts(source)
    out: list[tuple[str, str, int, int]] = []
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type in DROPPED:
                continue
            start = starts[tok.start[0] - 1] + tok.start[1]
            end = starts[tok.end[0] - 1] + tok.end[1]
            kind = {
                tokenize.NAME: "name",
                tokenize.STRING: "string",
                tokenize.NUMBER: "number",
                tokenize.NEWLINE: "newline",
            }.get(tok.type, "op")
            out.append((kind, tok.string, start, end))
        return out
    except (tokenize.TokenError, IndentationError, SyntaxError):
        out = []
    for m in LEXEME.finditer(source):
        kind = m.lastgroup or "op"
        if kind != "comment":
            out.append((kind, m.group(), m.start(), m.end()))
    return out


def _normalised(raw: list[tuple[str, str, int, int]], known: frozenset[str]) -> list[Token]:
    tokens: list[Token] = []
    depth = 0
    for i, (kind, text, start, end) in enumerate(raw):
        prev = raw[i - 1] if i else ("newline", "", 0, 0)
        nxt = raw[i + 1] if i + 1 < len(raw) else ("newline", "", 0, 0)
        if kind == "op":
            if text in ("(", "[", "{"):
                depth += 1
            elif text in (")", "]", "}"):
                depth = max(depth - 1, 0)
            tokens.append(Token(text, start, end))
        elif kind == "newline":
            tokens.append(Token(NEWLINE, start, end))
        elif kind == "string" and prev[0] == "newline" and nxt[0] == "newline":
            continue  # a docstring, or a string left as a statement: prose, not code
        elif kind == "name" and not (
            keyword.iskeyword(text)
            or text in known
            or prev[1] == "."
            or (depth > 0 and nxt[1] == "=")
        ):
            tokens.append(Token(PLACEHOLDER, start, end))
        else:
            tokens.append(Token(text, start, end))
    return tokens


def _unit_spans(source: str) -> list[tuple[int, int]]:
    """1-based (first, last) lines of each unit: top-level statements, and class-body statements."""
    try:
        tree = ast.parse(MAGIC.sub(r"\1#", source))
    except SyntaxError:
        return [(1, max(1, len(source.splitlines())))]
    spans: list[tuple[int, int]] = []

    def first_line(node: ast.stmt) -> int:
        decorators: list[ast.expr] = getattr(node, "decorator_list", [])
        return min([node.lineno, *(d.lineno for d in decorators)])

    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.body:
            body_start = first_line(node.body[0])
            spans.append((first_line(node), body_start - 1))  # the class line and its decorators
            spans += [(first_line(n), n.end_lineno or n.lineno) for n in node.body]
        else:
            spans.append((first_line(node), node.end_lineno or node.lineno))
    return spans


def units(region: Region, known: frozenset[str], *, all_lines: bool = False) -> list[list[Token]]:
    """The normalised tokens of REGION's own lines (or all lines), one list per unit."""
    source = MAGIC.sub(r"\1#", region.source)  # same length: offsets still point into the source
    starts = _line_starts(source)
    raw = _raw_tokens(source)
    spans = _unit_spans(source)
    by_unit: list[list[Token]] = [[] for _ in spans]
    unit_of: dict[int, int] = {n: i for i, (a, b) in enumerate(spans) for n in range(a, b + 1)}
    line = 0
    for token in _normalised(raw, known):
        while line + 1 < len(starts) and starts[line + 1] <= token.start:
            line += 1
        number = line + 1
        if not all_lines and number not in region.own_lines:
            continue
        index = unit_of.get(number)
        if index is None:
            continue  # a line outside every statement: a stray newline token
        if token.text == NEWLINE and not by_unit[index]:
            continue
        by_unit[index].append(token)
    return [u for u in by_unit if u]

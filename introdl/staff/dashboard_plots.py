"""The class dashboard's plots: SVG made with matplotlib, carrying no text and no script.

Labels can be student-derived (a student's name on the "most checks, still failing" plot), so
every SVG is drawn with `svg.fonttype = "path"`: letters are outlines, the file has no <text>
element and no string a student wrote, so there is nothing to escape and nothing to run.
Labels are also drawn literally (`parse_math=False`: a `$` is a dollar, not TeX) and cut to
LABEL_CHARS. `inert` checks each SVG before it is used and the page embeds them as
`<img src="data:image/svg+xml;base64,...">`, where a browser never runs script anyway.

matplotlib is imported on first use (its import costs about 0.3 s), never by the service's start.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from typing import Any

from introdl.staff.dashboard_data import PHASES

LABEL_CHARS = 40
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_COMMENT = re.compile(rb"<!--.*?-->", re.DOTALL)
_ACTIVE = re.compile(
    rb"<script|<foreignObject|<text|<!--|javascript:|\son[a-z]+\s*=", re.IGNORECASE
)
COLOURS = {"sandbox_start": "#8da0cb", "notebook": "#66c2a5", "hidden_tests": "#fc8d62"}


class NotInert(ValueError):
    """An SVG that could carry script or text (never used)."""


def label(text: str) -> str:
    """TEXT as a plot label: one line, no control characters, at most LABEL_CHARS."""
    text = _CONTROL.sub(" ", text).strip()
    return text if len(text) <= LABEL_CHARS else text[: LABEL_CHARS - 1] + "…"


def inert(svg: bytes) -> bytes:
    """SVG itself when it has no script, foreign object, text element or event handler."""
    found = _ACTIVE.search(svg)
    if found:
        raise NotInert(f"the plot's SVG holds {found.group(0)[:20]!r}; it is not shown")
    return svg


def _figure(width: float, height: float, left: float = 0.12) -> Any:
    """A figure with fixed margins (LEFT: the share of the width for the y labels): a layout
    engine would cost a third of the drawing time."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=72)
    inch = 1 / height  # margins in inches, whatever the height
    fig.subplots_adjust(left=left, right=0.97, top=1 - 0.35 * inch, bottom=0.5 * inch)
    return fig


def _svg(fig: Any) -> bytes:
    import matplotlib

    out = io.BytesIO()
    with matplotlib.rc_context({"svg.fonttype": "path", "svg.hashsalt": "introdl"}):
        fig.savefig(out, format="svg", metadata={"Date": None, "Creator": None})
    # matplotlib repeats each label in a comment beside its glyphs: drop them, text and all.
    return inert(_COMMENT.sub(b"", out.getvalue()))


def _literal_ticks(ax: Any, axis: str, names: Sequence[str]) -> None:
    positions = list(range(len(names)))
    if axis == "y":
        ax.set_yticks(positions, [label(n) for n in names])
        ticks = ax.get_yticklabels()
    else:
        ax.set_xticks(positions, [label(n) for n in names])
        ticks = ax.get_xticklabels()
    for tick in ticks:
        tick.set_parse_math(False)


def scores_histogram(lab: str, scores: Sequence[float], max_score: float) -> bytes:
    """How many students scored what (bins of 5% of the lab's points)."""
    fig = _figure(6.0, 2.4)
    ax = fig.add_subplot()
    top = max_score if max_score > 0 else max(scores, default=1.0) or 1.0
    bins = [top * i / 20 for i in range(21)]
    ax.hist(scores, bins=bins, color="#4c72b0", edgecolor="white")
    ax.set_xlim(0, top)
    ax.set_xlabel(f"score (of {top:g})")
    ax.set_ylabel("students")
    ax.set_title(f"{label(lab)}: scores in the gradebook", loc="left", fontsize=10)
    return _svg(fig)


def pass_rates(lab: str, names: Sequence[str], rates: Sequence[float], top: int = 15) -> bytes:
    """The TOP most failed hidden tests: the share of submissions that passed each."""
    names, rates = list(names)[:top], list(rates)[:top]
    fig = _figure(6.0, 0.9 + 0.2 * max(len(names), 1), left=0.42)
    ax = fig.add_subplot()
    ax.barh(range(len(names)), [100 * r for r in rates], color="#55a868")
    _literal_ticks(ax, "y", names)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("% of submissions passing")
    ax.tick_params(axis="y", labelsize=7)
    ax.set_title(f"{label(lab)}: hidden tests, most failed first", loc="left", fontsize=10)
    return _svg(fig)


def stuck_students(rows: Sequence[tuple[str, str, int]], top: int = 15) -> bytes:
    """Students with the most checks of a lab who are still failing it: (student, lab, checks)."""
    rows = list(rows)[:top]
    fig = _figure(6.0, 0.9 + 0.2 * max(len(rows), 1), left=0.42)
    ax = fig.add_subplot()
    ax.barh(range(len(rows)), [n for _, _, n in rows], color="#c44e52")
    _literal_ticks(ax, "y", [f"{student} · {lab}" for student, lab, _ in rows])
    ax.invert_yaxis()
    ax.set_xlabel("checks asked")
    ax.tick_params(axis="y", labelsize=7)
    ax.set_title("Most checks, still not full marks", loc="left", fontsize=10)
    return _svg(fig)


def phase_timings(
    labs: Sequence[str], medians: dict[tuple[str, str], tuple[float, float]]
) -> bytes:
    """Per lab, each phase's median (bar) and 95th percentile (tick): MEDIANS[(lab, phase)]."""
    fig = _figure(6.0, 2.8)
    ax = fig.add_subplot()
    width = 0.8 / len(PHASES)
    for i, phase in enumerate(PHASES):
        xs = [j + (i - 1) * width for j in range(len(labs))]
        med = [medians.get((lab, phase), (0.0, 0.0))[0] for lab in labs]
        p95 = [medians.get((lab, phase), (0.0, 0.0))[1] for lab in labs]
        ax.bar(xs, med, width, label=f"{phase} (median)", color=COLOURS[phase])
        ax.scatter(xs, p95, marker="_", s=120, color="#222")
    _literal_ticks(ax, "x", list(labs))
    ax.tick_params(axis="x", labelsize=7)
    ax.set_ylabel("seconds")
    ax.legend(fontsize=7, title="— : 95th percentile", title_fontsize=7)
    ax.set_title("Grading time per phase and lab", loc="left", fontsize=10)
    return _svg(fig)

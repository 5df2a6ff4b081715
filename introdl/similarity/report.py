"""The similarity report: every pair as CSV, the best pairs as one self-contained HTML page.

The page needs nothing outside itself (inline CSS, no scripts, no fonts): it can be mailed or
opened from an archive years later. Each pair shows both codes side by side, answer cell by answer
cell; passages the two share are marked (<mark>), lines the release already had are greyed.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import html
import io
from collections.abc import Sequence

from introdl.similarity.compare import Pair
from introdl.similarity.fingerprint import Fingerprints, Passage

CSV_FIELDS = ("rank", "kind", "a", "b", "score", "shared", "fingerprints_a", "fingerprints_b")

STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
table.rank { border-collapse: collapse; }
table.rank td, table.rank th { padding: 2px 10px; border-bottom: 1px solid #ddd; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
section.pair { margin-top: 2em; border-top: 2px solid #888; }
div.sides { display: grid; grid-template-columns: 1fr 1fr; gap: 1em; }
div.side { min-width: 0; }
h4 { margin: 0.8em 0 0.2em; font-size: 13px; color: #555; }
pre { background: #f7f7f7; padding: 6px; margin: 0; overflow-x: auto; font-size: 12px; }
span.tpl { color: #aaa; }
mark { background: #ffd54f; }
p.note { color: #555; }
"""


def to_csv(pairs: Sequence[Pair]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_FIELDS)
    for n, p in enumerate(pairs, 1):
        writer.writerow(
            (n, p.kind, p.a, p.b, f"{p.score:.4f}", p.shared, p.fingerprints_a, p.fingerprints_b)
        )
    return out.getvalue()


def _merged(passages: list[Passage]) -> dict[int, list[tuple[int, int]]]:
    """Character ranges to mark per region, overlapping passages merged."""
    by_region: dict[int, list[tuple[int, int]]] = {}
    for p in sorted(passages, key=lambda p: (p.region, p.start, p.end)):
        ranges = by_region.setdefault(p.region, [])
        if ranges and p.start <= ranges[-1][1]:
            ranges[-1] = (ranges[-1][0], max(ranges[-1][1], p.end))
        else:
            ranges.append((p.start, p.end))
    return by_region


def shared_passages(a: Fingerprints, b: Fingerprints) -> tuple[list[Passage], list[Passage]]:
    """Where A and B hold a K-gram in common (template K-grams were never recorded)."""
    common = a.occurrences.keys() & b.occurrences.keys()
    return (
        [p for h in common for p in a.occurrences[h]],
        [p for h in common for p in b.occurrences[h]],
    )


def render_region(source: str, own: frozenset[int], marks: list[tuple[int, int]]) -> str:
    """SOURCE as escaped HTML lines: template lines greyed, MARKS wrapped in <mark>."""
    out: list[str] = []
    offset = 0
    for number, line in enumerate(source.splitlines(keepends=True), 1):
        text = line.rstrip("\n")
        end = offset + len(text)
        pieces: list[str] = []
        cursor = offset
        for start, stop in marks:
            lo, hi = max(start, offset), min(stop, end)
            if lo >= hi:
                continue
            pieces.append(html.escape(source[cursor:lo]))
            pieces.append(f"<mark>{html.escape(source[lo:hi])}</mark>")
            cursor = hi
        pieces.append(html.escape(source[cursor:end]))
        rendered = "".join(pieces)
        out.append(rendered if number in own else f'<span class="tpl">{rendered}</span>')
        offset += len(line)
    return "\n".join(out)


def _side(fp: Fingerprints, passages: list[Passage], title: str) -> str:
    marks = _merged(passages)
    parts = [f'<div class="side"><h3>{html.escape(title)}</h3>']
    for r, region in enumerate(fp.document.regions):
        if not region.own_lines:
            continue  # the release's cell untouched: nothing of this author's to show
        body = render_region(region.source, region.own_lines, marks.get(r, []))
        parts.append(f"<h4>{html.escape(region.grade_id)}</h4><pre>{body}</pre>")
    parts.append("</div>")
    return "".join(parts)


def to_html(
    lab: str,
    pairs: Sequence[Pair],
    prints: dict[tuple[str, str], Fingerprints],
    *,
    top: int,
    notes: Sequence[str] = (),
) -> str:
    """The report page: the ranking of the TOP pairs, then each of them side by side.

    PRINTS maps (kind, name) to fingerprints, kind being "students" or "corpus".
    """
    shown = list(pairs[:top])
    rows = []
    for n, p in enumerate(shown, 1):
        rows.append(
            f'<tr><td class="num">{n}</td><td><a href="#pair-{n}">{html.escape(p.a)}</a></td>'
            f"<td>{html.escape(p.b)}</td><td>{'corpus' if p.kind == 'corpus' else ''}</td>"
            f'<td class="num">{p.score:.0%}</td><td class="num">{p.shared}</td>'
            f'<td class="num">{p.fingerprints_a}</td><td class="num">{p.fingerprints_b}</td></tr>'
        )
    sections = []
    for n, p in enumerate(shown, 1):
        a = prints[("students", p.a)]
        b = prints[(p.kind, p.b)]
        in_a, in_b = shared_passages(a, b)
        label = "reference file" if p.kind == "corpus" else "student"
        sections.append(
            f'<section class="pair" id="pair-{n}"><h2>{n}. {html.escape(p.a)} &amp; '
            f"{html.escape(p.b)}: {p.score:.0%}</h2>"
            f"<p>{p.shared} shared fingerprints of {p.fingerprints_a} and {p.fingerprints_b}.</p>"
            f'<div class="sides">{_side(a, in_a, f"student {p.a}")}'
            f"{_side(b, in_b, f'{label} {p.b}')}</div></section>"
        )
    note_html = "".join(f'<p class="note">{html.escape(note)}</p>' for note in notes)
    # Students' code is escaped everywhere; the policy makes sure nothing in the file could run
    # or load anything even if a value slipped through (the page needs no script, only STYLE).
    style_hash = base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
    csp = (
        f"default-src 'none'; style-src 'sha256-{style_hash}'; img-src data:; "
        "base-uri 'none'; form-action 'none'"
    )
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">'
        f"<title>Similarity: {html.escape(lab)}</title>"
        f"<style>{STYLE}</style></head><body>"
        f"<h1>Similarity of the solutions of {html.escape(lab)}</h1>"
        "<p>Generated by <code>introdl similarity</code>. Scores are the share of the smaller "
        "solution's fingerprints found in the other (for a reference file: the share of the "
        "student's). Marked: passages both hold, after names, comments, whitespace and the order "
        "of functions are normalised away. Greyed: lines of the release, never counted. A high "
        "score is a reason to look, not a verdict.</p>"
        f"{note_html}"
        f"<p>{len(pairs)} pair(s) share code; the best {len(shown)} are shown.</p>"
        '<table class="rank"><tr><th>#</th><th>student</th><th>with</th><th></th><th>score</th>'
        "<th>shared</th><th>fingerprints a</th><th>fingerprints b</th></tr>"
        f"{''.join(rows)}</table>{''.join(sections)}</body></html>\n"
    )

"""Make what a student's notebook produced inert before anyone views it (issue 21, case 1).

The autograded notebook is what staff open in the formgrader and what `nbgrader
generate_feedback` renders for the student. Both render outputs as HTML on the hub's single
origin, where a script runs with the viewer's rights (a staff member's server, terminals, the
hidden tests). A content-security policy cannot stop it there, because the formgrader's own
pages need inline script. So the notebook itself is cut down to what cannot run, with an
ALLOWLIST (a denylist misses the next trick):

- outputs keep stream text, an error's name, value and traceback (as text), and from results and
  displays only `text/plain` and PNG/JPEG images whose data is strictly base64; everything else
  (HTML, JavaScript, SVG, Markdown, LaTeX, widgets, anything new) is replaced by a visible line
  that says what was removed; output metadata goes (templates copy it into attributes);
- markdown and raw cells are shown as text (a fenced code block) unless their source is exactly
  a cell the instructor wrote in the release; their attachments go;
- notebook and cell metadata keep only what the renderers need, checked (kernelspec, language
  name, nbgrader's fields, a cell id of safe characters), since templates print some of it.

Scores are never read from here: `land_grades` has stored them before the notebook is made inert.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Iterable
from typing import Any

import nbformat
from nbformat import NotebookNode

new_output: Callable[..., NotebookNode] = nbformat.v4.new_output

KEPT_IMAGES = ("image/png", "image/jpeg")
SAFE_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
SAFE_WORD = re.compile(r"^[A-Za-z0-9_.+ ()-]{1,64}$")  # no markup, no quotes
BASE64 = re.compile(r"^[A-Za-z0-9+/\s]*={0,2}\s*$")
NBGRADER_FLAGS = ("grade", "solution", "locked", "task")
REMOVED = "[introdl removed {what} from this output: the course shows student output as text only]"


def inert_notebook(nb: NotebookNode, trusted_cells: Iterable[tuple[str, str]] = ()) -> NotebookNode:
    """NB (changed in place and returned) with nothing a browser would run or fetch.

    TRUSTED_CELLS are (cell type, source) of the markdown and raw cells the instructor released
    (`instructor_cells`): a cell of that type whose source is exactly one of them keeps rendering
    as the instructor wrote it.
    """
    trusted = {(kind, src) for kind, src in trusted_cells if src.strip()}
    nb.metadata = _notebook_metadata(nb.get("metadata", {}))
    for index, cell in enumerate(nb.cells):
        cell.metadata = _cell_metadata(cell.get("metadata", {}), index)
        if "id" in cell and not SAFE_ID.match(str(cell.id)):
            cell.id = f"cell-{index}"
        if cell.cell_type == "code":
            cell.outputs = [inert_output(output) for output in cell.get("outputs", [])]
        elif cell.cell_type in ("markdown", "raw"):
            cell.pop("attachments", None)
            source = _text(cell.get("source", ""))
            if (cell.cell_type, source) not in trusted:
                cell.cell_type = "markdown"
                cell.source = as_text_block(source)
    return nb


def instructor_cells(release: NotebookNode) -> list[tuple[str, str]]:
    """The markdown and raw cells of a released notebook, minus its answer (solution) cells."""
    cells = []
    for cell in release.cells:
        grading = cell.get("metadata", {}).get("nbgrader", {})
        if cell.cell_type in ("markdown", "raw") and not grading.get("solution", False):
            cells.append((str(cell.cell_type), _text(cell.get("source", ""))))
    return cells


def inert_output(output: NotebookNode) -> NotebookNode:
    """One output cut to the allowlist (see the module docstring)."""
    kind = output.get("output_type")
    if kind == "stream":
        name = "stderr" if output.get("name") == "stderr" else "stdout"
        return new_output("stream", name=name, text=_text(output.get("text", "")))
    if kind == "error":
        return new_output(
            "error",
            ename=_text(output.get("ename", "")),
            evalue=_text(output.get("evalue", "")),
            traceback=[_text(line) for line in _list(output.get("traceback"))],
        )
    if kind in ("execute_result", "display_data"):
        data = output.get("data") or {}
        kept: dict[str, str] = {}
        removed = []
        for mime, value in data.items() if isinstance(data, dict) else []:
            if mime == "text/plain":
                kept[mime] = _text(value)
            elif mime in KEPT_IMAGES and _is_base64(value):
                kept[mime] = "".join(_text(value).split())
            else:
                removed.append(str(mime)[:80])
        if removed:
            what = ", ".join(repr(m) for m in sorted(removed))
            note = REMOVED.format(what=what)
            kept["text/plain"] = f"{kept['text/plain']}\n{note}" if "text/plain" in kept else note
        if kind == "execute_result":
            count = output.get("execution_count")
            return new_output(
                "execute_result",
                data=kept,
                execution_count=count if isinstance(count, int) else None,
            )
        return new_output("display_data", data=kept)
    return new_output(
        "stream", name="stdout", text=REMOVED.format(what=f"an output of type {str(kind)[:40]!r}")
    )


def as_text_block(source: str) -> str:
    """SOURCE as a fenced code block: every renderer escapes it, nothing in it is markup."""
    longest = max((len(run) for run in re.findall(r"`+", source)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{source}\n{fence}"


def _notebook_metadata(meta: Any) -> NotebookNode:
    kept = NotebookNode()
    spec = meta.get("kernelspec") if isinstance(meta, dict) else None
    if isinstance(spec, dict):
        # nbformat requires name and display_name; the source's kernelspec was restored already.
        name = str(spec["name"]) if _word(spec.get("name")) else "python3"
        kept.kernelspec = NotebookNode(
            {"name": name, "display_name": str(spec.get("display_name"))}
            if _word(spec.get("display_name"))
            else {"name": name, "display_name": name}
        )
        if _word(spec.get("language")):
            kept.kernelspec.language = str(spec["language"])
    info = meta.get("language_info") if isinstance(meta, dict) else None
    if isinstance(info, dict) and _word(info.get("name")):
        kept.language_info = NotebookNode({"name": str(info["name"])})
    return kept


def _cell_metadata(meta: Any, index: int) -> NotebookNode:
    kept = NotebookNode()
    grading = meta.get("nbgrader") if isinstance(meta, dict) else None
    if not isinstance(grading, dict):
        return kept
    clean: dict[str, Any] = {k: grading[k] for k in NBGRADER_FLAGS if k in grading}
    clean = {k: v for k, v in clean.items() if isinstance(v, bool)}
    if "grade_id" in grading:
        grade_id = str(grading["grade_id"])
        clean["grade_id"] = grade_id if SAFE_ID.match(grade_id) else f"unsafe-id-{index}"
    points = grading.get("points")
    if isinstance(points, int | float) and not isinstance(points, bool):
        clean["points"] = points
    version = grading.get("schema_version")
    if isinstance(version, int) and not isinstance(version, bool):
        clean["schema_version"] = version
    kept.nbgrader = NotebookNode(clean)
    return kept


def _word(value: Any) -> bool:
    return isinstance(value, str) and bool(SAFE_WORD.match(value))


def _is_base64(value: Any) -> bool:
    text = _text(value)
    if not text.strip() or not BASE64.match(text):
        return False
    try:
        base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _text(value: Any) -> str:
    """Notebook text: a string, or a list of strings (nbformat's multiline form)."""
    if isinstance(value, list):
        return "".join(str(part) for part in value)
    return value if isinstance(value, str) else str(value)

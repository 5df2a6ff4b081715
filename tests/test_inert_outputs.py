"""A hostile student's outputs, markdown and metadata are inert in the autograded notebook and in
the feedback that `nbgrader generate_feedback` renders from it (issue 21, case 1).

The outputs below are exactly what a kernel writes for `display(HTML(...))`, `display(Javascript
(...))`, an SVG, Markdown and a PNG whose data and metadata were forged (a student can write any
JSON into their notebook). One tiny course per module, as in test_gradebook.py.
"""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest
from nbconvert.exporters import HTMLExporter
from nbgrader.server_extensions.formgrader import handlers as formgrader
from traitlets.config import Config

from introdl.grading.record.gradebook import generate_feedback, land_grades
from introdl.grading.record.inert import as_text_block, inert_output
from tests.fixtures.notebook_student import NotebookStudent
from tests.test_gradebook import CORRECT, LAB, STAMP, answered, grade, released_course

MARK = "INTRODL_PWNED"
URL_ATTRIBUTES = ("href", "src", "action", "formaction", "xlink:href")
HTML_PAYLOAD = f'<img src=x onerror="console.log(\'{MARK}\')"><script>alert("{MARK}")</script>'
SVG = f'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><script>alert("{MARK}")</script></svg>'
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
ANSWER = (
    f"My answer {HTML_PAYLOAD}\n\n[click me](javascript:alert('{MARK}'))\n\n"
    f"<a href='javascript:alert(1)'>{MARK}</a>\n\n![x](attachment:evil.svg)\n\n"
    f"```\nbreak out of a fence\n```\n<script>{MARK}</script>"
)


def hostile_outputs() -> list[nbformat.NotebookNode]:
    out = nbformat.v4.new_output
    return [
        out("display_data", data={"text/html": HTML_PAYLOAD, "text/plain": "<HTML object>"}),
        out("display_data", data={"application/javascript": f"alert('{MARK}')"}),
        out("display_data", data={"image/svg+xml": SVG}),
        out("display_data", data={"text/markdown": f"[x](javascript:alert('{MARK}'))"}),
        out("display_data", data={"text/latex": f"$\\href{{javascript:alert(1)}}{{{MARK}}}$"}),
        out("display_data", data={"image/png": f"x\" onerror=\"alert('{MARK}')"}),
        out(
            "display_data",
            data={"image/png": PNG},
            metadata={"image/png": {"width": f"1\" onerror=\"alert('{MARK}')"}},
        ),
        out("execute_result", data={"text/html": HTML_PAYLOAD}, execution_count=1),
        out("stream", name="stdout", text=HTML_PAYLOAD),
        out("error", ename=HTML_PAYLOAD, evalue=HTML_PAYLOAD, traceback=[HTML_PAYLOAD]),
    ]


def hostile(release: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The correct answers, executed, plus every trick a student controls in the file."""
    nb = NotebookStudent(answered(release, CORRECT | {"explain": ANSWER})).executed
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "add_solution":
            cell.outputs = hostile_outputs() + list(cell.outputs)
            cell.metadata["tags"] = [f'"><script>alert("{MARK}")</script>']
    extra = nbformat.v4.new_markdown_cell(ANSWER)
    extra["attachments"] = {"evil.svg": {"image/svg+xml": SVG}}
    raw = nbformat.v4.new_raw_cell(HTML_PAYLOAD, metadata={"raw_mimetype": "text/html"})
    nb.cells += [extra, raw, nbformat.v4.new_raw_cell(HTML_PAYLOAD)]
    nb.metadata["title"] = f"</title><script>alert('{MARK}')</script>"
    nb.metadata["widgets"] = {
        "application/vnd.jupyter.widget-state+json": {"state": {}, "version_major": 2}
    }
    nb.metadata["language_info"] = {"name": f'python"><script>{MARK}</script>'}
    nb.metadata["kernelspec"]["display_name"] = "Python 3 (ipykernel)"
    return nb


class Live(HTMLParser):
    """What of a page could run or load: scripts, handlers, script URLs, active elements."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[str] = []
        self.handlers: list[str] = []
        self.script_urls: list[str] = []
        self.active: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script":
            self._in_script = True
            self.scripts.append(f"src={dict(attrs).get('src')}")
        if tag in ("svg", "iframe", "object", "embed", "base", "form", "meta", "link"):
            self.active.append(f"<{tag} {attrs}>")
        for name, value in attrs:
            if name.startswith("on"):
                self.handlers.append(f"<{tag} {name}={value}>")
            url = (value or "").strip().lower()
            if name in URL_ATTRIBUTES and url.startswith(("javascript:", "vbscript:", "data:text")):
                self.script_urls.append(f"<{tag} {name}={value}>")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.scripts[-1] += " " + data.strip()


def live(page: str) -> Live:
    parser = Live()
    parser.feed(page)
    return parser


@pytest.fixture(scope="module")
def course(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(autograded notebook, feedback of the hostile student, feedback of an honest student)."""
    root = tmp_path_factory.mktemp("course")
    release, points = released_course(root)
    landed = {}
    for student, nb in (("mallory", hostile(release)), ("honest", answered(release, CORRECT))):
        submitted = root / "submitted" / student / LAB
        submitted.mkdir(parents=True)
        (submitted / "timestamp.txt").write_text(STAMP + "\n")
        nbformat.write(nb, submitted / f"{LAB}.ipynb")
        results = grade(root, student, nb, seed=1, points=points)
        executed = nb if student == "mallory" else NotebookStudent(nb).executed
        landed[student] = land_grades(root, LAB, student, executed, results)
    return (
        landed["mallory"].notebook,
        generate_feedback(root, LAB, "mallory"),
        generate_feedback(root, LAB, "honest"),
    )


def test_feedback_of_a_hostile_notebook_has_nothing_that_runs(
    course: tuple[Path, Path, Path],
) -> None:
    """Does the feedback HTML of a hostile notebook carry any script, handler or script URL beyond
    nbconvert's own (those of an honest student's feedback)?"""
    _, hostile_html, honest_html = course
    page, baseline = live(hostile_html.read_text()), live(honest_html.read_text())
    assert page.handlers == []
    assert page.script_urls == []
    assert sorted(page.scripts) == sorted(baseline.scripts), "a script the student added"
    assert page.active == baseline.active
    assert not [s for s in page.scripts if MARK in s]


def formgrade(notebook: Path) -> str:
    """The formgrader's manual-grading view of NOTEBOOK, rendered as its handler renders it."""
    config = Config()
    config.HTMLExporter.template_name = "formgrade"
    config.HTMLExporter.extra_template_basedirs = [formgrader.template_path]
    resources = {
        "assignment_id": LAB,
        "notebook_id": LAB,
        "submission_id": "1",
        "index": 0,
        "total": 2,
        "base_url": "/user/staff",
        "student": "mallory",
        "last_name": None,
        "first_name": None,
        "notebook_path": "autograded",
    }
    html, _ = HTMLExporter(config=config).from_filename(str(notebook), resources=resources)
    return str(html)


def test_formgrader_view_of_a_hostile_notebook_has_nothing_that_runs(
    course: tuple[Path, Path, Path],
) -> None:
    """Does the formgrader's view of the autograded notebook render, with no handler, no script
    URL and no script of the student's?"""
    page = live(formgrade(course[0]))
    # The formgrader's own buttons (show/hide the student's name) are its only handlers.
    assert [h for h in page.handlers if "toggle_name(" not in h] == []
    assert page.script_urls == []
    assert not [s for s in page.scripts if MARK in s]
    assert not [a for a in page.active if a.startswith(("<svg", "<iframe", "<object", "<embed"))]


def test_the_student_still_sees_what_was_removed_and_their_text(
    course: tuple[Path, Path, Path],
) -> None:
    """Is what was removed said in words, and is the student's own text still there, as text?"""
    page = course[1].read_text()
    assert "introdl removed &#x27;application/javascript&#x27;" in page or (
        "introdl removed 'application/javascript'" in page
    )
    assert "&lt;img src=x onerror=" in page  # the stream and the answer, shown as text
    assert "[click me](javascript:" in page
    assert "Hidden tests for &#x27;add&#x27;" in page or "Hidden tests for 'add'" in page


def test_autograded_notebook_keeps_only_text_and_plain_images(
    course: tuple[Path, Path, Path],
) -> None:
    """Does the autograded notebook (what the formgrader renders) keep only allowlisted outputs?"""
    nb = nbformat.read(course[0], as_version=4)
    mimes = {
        mime
        for cell in nb.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        for mime in output.get("data", {})
    }
    assert mimes <= {"text/plain", "image/png", "image/jpeg"}
    assert all(not o.get("metadata") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert set(nb.metadata) <= {"kernelspec", "language_info"}
    assert "<" not in str(nb.metadata.get("language_info", ""))
    assert all("attachments" not in c for c in nb.cells)
    assert [c for c in nb.cells if c.cell_type == "raw"] == []
    assert all(set(c.metadata) <= {"nbgrader"} for c in nb.cells)
    markdown = [c.source for c in nb.cells if c.cell_type == "markdown"]
    assert "# Example lab\n\nWrite `add` and `scale`." in markdown  # the instructor's, as is
    assert as_text_block(ANSWER) in markdown  # the student's, as text


def test_a_forged_png_is_dropped_and_a_real_one_kept() -> None:
    """Is an image/png whose data is not strict base64 dropped, and a true one kept?"""
    forged = inert_output(
        nbformat.v4.new_output("display_data", data={"image/png": 'AAAA" onerror="x'})
    )
    assert "image/png" not in forged.data
    real = inert_output(nbformat.v4.new_output("display_data", data={"image/png": PNG}))
    assert real.data["image/png"] == PNG


def test_a_fence_inside_the_answer_cannot_close_the_text_block() -> None:
    """Can backticks in a student's markdown end the code block that shows it as text?"""
    block = as_text_block("````\n<script>x</script>\n````")
    fence = block.split("text\n", 1)[0]
    assert len(fence) == 5
    assert block.endswith("\n" + fence)

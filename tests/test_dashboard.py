"""The class dashboard's numbers, caches, hostile text and `introdl report`, on a small class
whose every number is known (tests/dashboard_class.py writes it where the course keeps it)."""

from __future__ import annotations

import base64
import csv
import io
import json
import re
import sqlite3
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from nbgrader.api import Gradebook

from introdl import cli
from introdl.staff.dashboard import Dashboard, tables, to_csv
from introdl.staff.dashboard_data import Sources
from introdl.staff.dashboard_html import render
from introdl.staff.dashboard_plots import NotInert, inert
from introdl.staff.dashboard_stats import message_group, percentile
from tests.dashboard_class import Submission, write_class

LAB = "lab_a"
P = ("passed", "")
HOSTILE = "<script>alert('msg')</script><img src=x onerror=alert(2)>"
HOSTILE_NAME = '"><svg onload=alert(3)>$\\frac{'


def phases(k: float) -> dict[str, float]:
    return {"sandbox_start": k, "notebook": 10 * k, "hidden_tests": 100 * k}


def small_class() -> list[Submission]:
    """4 students: test_a_1 all pass; test_a_2 one (two 'expected' failures, one not done);
    test_b_1 two; test_b_2 three (one skipped). ada also late (penalty 1)."""
    fail = "failed"
    return [
        Submission(
            "ada",
            LAB,
            {"test_a_1": P, "test_a_2": P, "test_b_1": P, "test_b_2": P},
            phases(1),
            checks=[1.0, 2.0, 4.0],
            late_penalty=1.0,
        ),
        Submission(
            "ben",
            LAB,
            {
                "test_a_1": P,
                "test_a_2": (fail, "expected 0.5, got 0.25"),
                "test_b_1": P,
                "test_b_2": P,
            },
            phases(2),
            checks=[0.0, 1.0, 2.0, 2.0, 3.0],
        ),
        Submission(
            "cy",
            LAB,
            {
                "test_a_1": P,
                "test_a_2": (fail, "expected 0.7, got -1e-3"),
                "test_b_1": ("error", "func() raised NotImplementedError:"),
                "test_b_2": ("skipped", "over its time budget"),
            },
            phases(3),
        ),
        Submission(
            HOSTILE_NAME,
            LAB,
            {
                "test_a_1": P,
                "test_a_2": ("error", "func() raised NotImplementedError:"),
                "test_b_1": (fail, HOSTILE),
                "test_b_2": P,
            },
            phases(4),
            checks=[0.0, 1.0],
        ),
    ]


@pytest.fixture(scope="module")
def course(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("course")
    write_class(root, small_class(), cells=3)
    (root / "nbgrader_config.py").write_text("c = get_config()\n")
    (root / "source").mkdir()
    return root


def dashboard(course: Path, plots: Path | None = None) -> Dashboard:
    return Dashboard(Sources(course, course / "state" / "checks.sqlite"), plot_dir=plots)


def test_pass_rates_most_failed_first_with_failures_grouped(course: Path) -> None:
    """Are the pass rates right and ordered, skips not passes, and like messages one group?"""
    view = dashboard(course).model().lab(LAB)
    assert view is not None
    got = [(t.name, t.passed, t.runs) for t in view.tests]
    assert got == [("test_a_2", 1, 4), ("test_b_1", 2, 4), ("test_b_2", 3, 4), ("test_a_1", 4, 4)]
    a2 = view.tests[0]
    assert a2.failures == (("expected #, got #", 2), ("func() raised NotImplementedError:", 1))
    b2 = view.tests[2]
    assert b2.failures == ()  # skipped: not passed, yet no failure message either
    assert message_group("x = 'secret value' at 0x7f3a") == "x = '…' at 0x…"
    assert message_group("expected 1.5") != message_group("expected 1.5 exactly")


def test_scores_are_nbgraders_own_less_the_late_penalty(course: Path) -> None:
    """Does the dashboard's score equal nbgrader's (`submission.score - penalty`), also after
    a TA's manual score changes it?"""
    gb_url = f"sqlite:///{course / 'gradebook.db'}"

    def nbgraders() -> dict[str, float]:
        with Gradebook(gb_url, "introdl") as gb:
            return {
                s.student.id: max(0.0, s.score - s.late_submission_penalty)
                for s in gb.assignment_submissions(LAB)
            }

    def ours() -> dict[str, float]:
        view = dashboard(course).model().lab(LAB)
        assert view is not None
        return {s.student: s.score for s in view.scores}

    assert ours() == nbgraders() == {"ada": 3.0, "ben": 3.0, "cy": 1.0, HOSTILE_NAME: 2.0}
    with Gradebook(gb_url, "introdl") as gb:
        grade = gb.find_grade("test_a", LAB, LAB, "cy")
        grade.manual_score = 0.5
        grade.extra_credit = 1.0
        gb.db.commit()
    try:
        assert ours() == nbgraders()
        assert ours()["cy"] == 1.5  # 0.5 by hand + 1 extra, test_b: 0
    finally:
        with Gradebook(gb_url, "introdl") as gb:
            grade = gb.find_grade("test_a", LAB, LAB, "cy")
            grade.manual_score = grade.extra_credit = None
            gb.db.commit()
    view = dashboard(course).model().lab(LAB)
    assert view is not None
    assert view.distribution is not None
    assert (view.distribution.median, view.distribution.max_score) == (2.5, 4.0)


def test_timings_are_median_and_95th_percentile_per_phase(course: Path) -> None:
    """Are the medians and 95th percentiles the ones numpy computes (and not the mean or max)?"""
    got = {(t.source, t.phase): (t.median, t.p95) for t in dashboard(course).model().timings}
    for phase, k in (("sandbox_start", 1), ("notebook", 10), ("hidden_tests", 100)):
        seconds = [k * 1.0, k * 2.0, k * 3.0, k * 4.0]
        expected = (np.percentile(seconds, 50), np.percentile(seconds, 95))
        assert got[("grading", phase)] == pytest.approx(expected)
        assert got[("grading", phase)][1] != pytest.approx(max(seconds))
    assert percentile([5.0], 95) == 5.0
    assert percentile([1.0, 2.0, 3.0, 4.0, 100.0], 50) == 3.0


def test_who_asked_most_and_still_fails_comes_first(course: Path) -> None:
    """Is ben (5 checks, last 3 of 4) before the hostile name (2), and ada (full marks) last?"""
    view = dashboard(course).model().lab(LAB)
    assert view is not None
    got = [(u.student, u.checks, u.last_score, u.best_score, u.still_failing) for u in view.checks]
    assert got == [
        ("ben", 5, 3.0, 3.0, True),
        (HOSTILE_NAME, 2, 1.0, 1.0, True),
        ("ada", 3, 4.0, 4.0, False),
    ]


def test_a_change_redraws_only_what_changed_and_a_restart_nothing(
    course: Path, tmp_path: Path
) -> None:
    """Is the page read again after a results.json changes (the new rate shown), one plot redrawn
    and the old one dropped, and nothing redrawn by a restarted service whose plots were kept?"""
    dash = dashboard(course, tmp_path / "plots")
    render(dash, str)
    drawn = dash.drawn
    assert drawn == 4  # timings, stuck, scores, tests
    render(dash, str)
    assert dash.drawn == drawn
    path = course / "autograded" / "cy" / LAB / "results.json"
    data = json.loads(path.read_text())
    old = path.read_text()
    next(t for t in data["tests"] if t["name"] == "test_a_2")["status"] = "passed"
    path.write_text(json.dumps(data))
    try:
        view = dash.model().lab(LAB)
        assert view is not None
        assert [(t.name, t.passed) for t in view.tests][:2] == [
            ("test_a_2", 2),
            ("test_b_1", 2),
        ]  # a tie: by name
        render(dash, str)
        assert dash.drawn == drawn + 1  # the tests' pass rates (the timings did not change)
        assert len(list((tmp_path / "plots").glob("*.svg"))) == 4  # the old one is gone
    finally:
        path.write_text(old)
    render(dash, str)  # the file as it was: the old plot drawn again, the new one dropped
    assert dash.drawn == drawn + 2
    again = dashboard(course, tmp_path / "plots")
    render(again, str)
    assert again.drawn == 0


class Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, list[str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, [name for name, _ in attrs]))


def elements(html: str) -> list[tuple[str, list[str]]]:
    """Every element of HTML as a browser's parser sees it: (tag, attribute names)."""
    parser = Elements()
    parser.feed(html)
    return parser.found


def svgs_of(html: str) -> list[bytes]:
    found = re.findall(r"src='data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)'", html)
    return [base64.b64decode(s) for s in found]


def test_hostile_text_stays_text_in_the_page_the_plots_and_the_csv(course: Path) -> None:
    """Is a failure message or name that is HTML escaped in the page, absent from every SVG (text
    drawn as outlines), and a formula in a CSV cell defused?"""
    html = render(dashboard(course), lambda t: f"{t}.csv")
    tags = elements(html)
    assert {"script", "svg", "iframe"}.isdisjoint(t for t, _ in tags)
    assert not [a for _, attrs in tags for a in attrs if a.startswith("on")]
    assert (
        "&lt;script&gt;alert(&#x27;…&#x27;)&lt;/script&gt;&lt;img src=x onerror=alert(#)&gt;"
        in html
    )
    assert "&quot;&gt;&lt;svg onload=alert(3)&gt;$\\frac{" in html
    plots = svgs_of(html)
    assert len(plots) == 4
    for svg in plots:
        assert inert(svg) == svg
        assert b"alert" not in svg
        assert b"<text" not in svg
        assert b"<!--" not in svg
    with pytest.raises(NotInert):
        inert(b"<svg><script>alert(1)</script></svg>")
    with pytest.raises(NotInert):
        inert(b"<svg><rect onload='x'/></svg>")
    header, rows = tables(dashboard(course).model())["failures"]
    back = list(csv.reader(io.StringIO(to_csv(header, [*rows, [LAB, "t", "=HYPERLINK(1)", 1]]))))
    assert back[-1][2] == "'=HYPERLINK(1)"
    assert any(row[2].startswith("<script>alert") for row in back)  # CSV is data, not HTML


def test_every_table_has_a_csv_with_every_row(course: Path) -> None:
    """Does each CSV hold every row, student names and numbers included?"""
    all_tables = tables(dashboard(course).model())
    assert set(all_tables) == {"scores", "tests", "failures", "checks", "timings"}
    rows = list(csv.reader(io.StringIO(to_csv(*all_tables["tests"]))))
    assert rows[0] == ["lab", "test", "submissions", "passed", "pass_rate"]
    assert rows[1] == [LAB, "test_a_2", "4", "1", "0.25"]
    assert len(rows) == 5
    scores = list(csv.reader(io.StringIO(to_csv(*all_tables["scores"]))))
    assert [LAB, "ada", "3.0", "4.0", "1.0"] in scores


def test_the_cli_writes_the_report(
    course: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Does `introdl report LAB --html PATH` write the page and its CSVs (exit 0), and refuse an
    unknown lab or a missing state folder (exit 2)?"""
    monkeypatch.setenv("INTRODL_COURSE_ROOT", str(course))
    out = tmp_path / "out" / "lab_a.html"
    state = str(course / "state")
    assert cli.main(["report", LAB, "--html", str(out), "--state", state]) == 0
    html = out.read_text()
    assert "default-src 'none'" in html
    assert "test_a_2" in html
    assert "ben" in html
    assert "<script" not in html
    assert len(svgs_of(html)) == 4
    assert (tmp_path / "out" / "lab_a-failures.csv").read_text().count("\n") == 5
    assert "lab_a-tests.csv" in html
    assert cli.main(["report", "lab_zz", "--html", str(out)]) == 2
    assert cli.main(["report", LAB, "--state", str(tmp_path / "nowhere")]) == 2
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "checks.sqlite").write_bytes(b"not a database, " * 100)
    assert cli.main(["report", LAB, "--state", str(broken)]) == 2


def test_the_service_reads_the_queue_it_does_not_write(course: Path) -> None:
    """Is checks.sqlite opened read-only (a dashboard bug cannot change a verdict)?"""
    db = course / "state" / "checks.sqlite"
    before = (
        sqlite3.connect(db).execute("SELECT COUNT(*), SUM(LENGTH(results)) FROM checks").fetchone()
    )
    dashboard(course).model()
    after = (
        sqlite3.connect(db).execute("SELECT COUNT(*), SUM(LENGTH(results)) FROM checks").fetchone()
    )
    assert before == after


def test_the_service_draws_the_dashboard_as_it_starts(course: Path, tmp_path: Path) -> None:
    """Does the check service draw the dashboard ahead as it starts (serve calls draw_ahead), so
    that the first staff visit finds the plots drawn (and kept on disk for the next start)?"""
    import inspect

    from introdl.checkwork import service
    from introdl.checkwork.app import CheckApp
    from introdl.checkwork.fair_queue import CheckQueue
    from introdl.staff.dashboard_handlers import PLOT_FOLDER, dashboard_of, draw_ahead

    assert "draw_ahead(app)" in inspect.getsource(service.serve)
    state = tmp_path / "state"
    state.mkdir()
    (state / "checks.sqlite").write_bytes((course / "state" / "checks.sqlite").read_bytes())
    app = CheckApp(CheckQueue(state / "checks.sqlite"), course, staff_group="staff", workers=1)
    draw_ahead(app).join(timeout=120)
    assert len(list((state / PLOT_FOLDER).glob("*.svg"))) == 4
    dash = dashboard_of(app)
    drawn = dash.drawn
    assert drawn == 4
    render(dash, str)
    assert dash.drawn == drawn  # the visit draws nothing

"""`introdl report LAB --html PATH`: the class dashboard of one lab (or `all`) as a file.

The same page as the check service's staff dashboard (dashboard_html.py), written with every
table beside it as CSV (`PATH` without `.html`, plus `-<table>.csv`). Scores come from the
gradebook, hidden tests and timings from `autograded/`, check-my-work use from the check
service's `checks.sqlite` in its state folder (`--state`; without it, that part is left out).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from introdl.grading.api import BadInput, course_root
from introdl.staff.dashboard import Dashboard, tables, to_csv
from introdl.staff.dashboard_data import Sources
from introdl.staff.dashboard_html import render, standalone


@dataclass(frozen=True)
class ReportResult:
    lab: str
    html: str
    csv: tuple[str, ...]
    submissions: int  # results.json files of the lab
    tests: int
    most_failed: str  # the hidden test with the lowest pass rate ("" when none ran)

    def summary(self) -> str:
        worst = f"; most failed: {self.most_failed}" if self.most_failed else ""
        lines = [
            f"{self.lab}: {self.submissions} graded submission(s), {self.tests} hidden test(s){worst}"
        ]
        return "\n".join([*lines, f"report: {self.html}", *(f"csv: {c}" for c in self.csv)])


def report(*, lab: str = "", html: str = "", state: str = "") -> ReportResult:
    """Write the class dashboard of LAB (`all`: every lab) as HTML, and each table as CSV."""
    if not lab:
        raise BadInput("name a lab (or `all`): introdl report LAB --html PATH")
    root = course_root()
    checks_db = None
    if state:
        checks_db = Path(state).resolve() / "checks.sqlite"
        if not checks_db.is_file():
            raise BadInput(
                f"{checks_db} does not exist: --state is the check service's state folder"
            )
    dash = Dashboard(Sources(course=root, checks_db=checks_db))
    try:
        model = dash.model()
    except (sqlite3.Error, OSError) as err:
        raise BadInput(
            f"cannot read the gradebook of {root} or {checks_db or 'the checks'} ({err}): "
            "run this as a user who may read them (the check service's state is root's)"
        ) from err
    known = [v.lab for v in model.labs]
    if lab != "all" and lab not in known:
        raise BadInput(
            f"nothing graded or checked for {lab} in {root}; labs with data: {', '.join(known) or 'none'}"
        )
    out = Path(html).resolve() if html else root / "build" / "report" / f"{lab}.html"
    stem = out.with_suffix("")
    only = None if lab == "all" else lab
    body = render(dash, lambda table: f"{stem.name}-{table}.csv", only)
    written = []
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(standalone(f"Class dashboard: {lab}", body, str(root)), encoding="utf-8")
        shown = model if only is None else model.only(only)
        for table, (header, rows) in tables(shown).items():
            path = stem.parent / f"{stem.name}-{table}.csv"
            path.write_text(to_csv(header, rows), encoding="utf-8")
            written.append(str(path))
    except OSError as err:
        raise BadInput(f"cannot write the report at {out}: {err}") from err
    views = [v for v in model.labs if only is None or v.lab == only]
    tests = sorted((t for v in views for t in v.tests), key=lambda t: t.pass_rate)
    return ReportResult(
        lab=lab,
        html=str(out),
        csv=tuple(written),
        submissions=sum(max((t.runs for t in v.tests), default=0) for v in views),
        tests=len(tests),
        most_failed=f"{tests[0].name} ({tests[0].pass_rate:.0%} pass)" if tests else "",
    )

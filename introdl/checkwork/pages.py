"""The check service's HTML: the student's labs and checks, one check's verdict, the staff page.

Plain server-rendered pages (no JavaScript): a waiting check refreshes itself every second and
shows its place in the queue and an ETA, so no page ever hangs on a grading; a check being graded
shows each result as it lands (live.py): the notebook's code cells run so far, its public checks,
each hidden test's outcome, fast tests first, and the tests still to come. Every value from a
notebook, a test message, a name or a refused request is escaped, in text and in attributes
(`html.escape` quotes both kinds of quotes), and the service sends a CSP that allows no script at
all and this one stylesheet (by its hash), so a value that slipped through still could not run.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape
from typing import Any

from introdl.checkwork.fair_queue import Check

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 60rem; color: #222; }
header { display: flex; justify-content: space-between; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; width: 100%; margin: 1rem 0; }
td, th { border-bottom: 1px solid #ddd; padding: .35rem .5rem; text-align: left; vertical-align: top; }
.passed { color: #176f2c; } .failed, .error { color: #b00020; } .skipped { color: #777; }
.score { font-size: 1.6rem; font-weight: 600; }
.note { background: #fff6d5; padding: .5rem .8rem; border-left: 4px solid #e0b000; }
.refused { background: #fde7ea; padding: .5rem .8rem; border-left: 4px solid #b00020; }
button { padding: .3rem .9rem; }
"""


def when(t: float | None) -> str:
    return "" if t is None else f"{datetime.fromtimestamp(t, UTC):%Y-%m-%d %H:%M:%S} UTC"


def page(body: str, *, user: str, prefix: str, refresh: bool = False) -> str:
    meta = '<meta http-equiv="refresh" content="1">' if refresh else ""
    who = f"logged in to the hub as <b id='user'>{escape(user)}</b> · " if user else ""
    return (
        f"<!doctype html><html><head><meta charset='utf-8'>{meta}"
        f"<title>Check my work</title><style>{STYLE}</style></head><body>"
        f"<header><h1><a href='{escape(prefix)}'>Check my work</a></h1>"
        f"<p>{who}<a href='{escape(prefix)}'>your labs</a> · "
        f"<a href='{escape(prefix)}regrades' id='nav-regrades'>regrade requests</a> · "
        f"<a href='/hub/home'>hub home</a></p></header>{body}</body></html>"
    )


def home(
    labs: Sequence[tuple[str, float, int]],
    checks: Sequence[dict[str, Any]],
    *,
    xsrf: str,
    deadlines: str = "",
) -> str:
    """Each lab with its 'check my work' button (or when the next check is allowed), the
    DEADLINES table (staff/late.py: due dates, the student's extension and late status), then
    the history of checks."""
    rows = []
    for lab, next_allowed, allowance in labs:
        ready = next_allowed <= datetime.now(UTC).timestamp()
        action = (
            f"<form method='post' action='labs/{escape(lab)}'>"
            f"<input type='hidden' name='_xsrf' value='{escape(xsrf)}'>"
            f"<button id='check-{escape(lab)}'>Check my work</button></form>"
            if ready
            else f"next check allowed at {when(next_allowed)}"
        )
        rows.append(
            f"<tr><td>{escape(lab)}</td><td>{allowance} per 24 h</td><td>{action}</td></tr>"
        )
    body = (
        "<p>Grades the notebook you fetched (<code>~/LAB/LAB.ipynb</code>, as last saved) with "
        "the hidden tests, in the same sandbox as final grading. Save your notebook first. "
        "A check never counts as a submission: submit through the Assignment List.</p>"
        f"<table><tr><th>lab</th><th>checks</th><th></th></tr>{''.join(rows)}</table>"
        f"{deadlines}"
    )
    if checks:
        body += "<h2>Your checks</h2><table><tr><th>#</th><th>lab</th><th>asked</th><th>state</th><th>score</th></tr>"
        for c in checks:
            verdict = c.get("verdict")
            score = f"{verdict['score']:g} / {verdict['max_score']:g}" if verdict else ""
            body += (
                f"<tr><td><a href='checks/{c['id']}'>{c['id']}</a></td><td>{escape(c['lab'])}</td>"
                f"<td>{when(c['requested_at'])}</td><td>{escape(c['state'])}</td><td>{score}</td></tr>"
            )
        body += "</table>"
    return body


def check(row: dict[str, Any]) -> str:
    """One check: waiting (place, ETA), being graded, or its verdict."""
    head = f"<h2>Check {row['id']} of {escape(row['lab'])}</h2><p>asked {when(row['requested_at'])}</p>"
    if row["state"] == "queued":
        return (
            head
            + (
                f"<p class='note' id='state'>Waiting: number {row['position']} in the queue, "
                f"about {duration(row['eta_seconds'])}. This page refreshes itself.</p>"
            )
            + late(row)
        )
    if row["state"] == "running":
        body = (
            head
            + (
                f"<p class='note' id='state'>Your notebook is being graded now (about "
                f"{duration(row['eta_seconds'])} left). This page refreshes itself.</p>"
            )
            + late(row)
        )
        return body + (progress(row["progress"]) if row.get("progress") else "")
    v = row["verdict"]
    body = head + (
        f"<p class='score' id='score'>{v['score']:g} / {v['max_score']:g}</p>"
        f"<p>graded in {row.get('wait_seconds', 0):.1f} s from your request</p>"
    )
    if v["status"]:
        body += (
            "<div class='note' id='status'>"
            + "".join(f"<p>{escape(line)}</p>" for line in v["status"])
            + "</div>"
        )
    body += "<table id='tests'><tr><th>test</th><th>status</th><th>points</th><th>message</th></tr>"
    for t in v["tests"]:
        body += (
            f"<tr><td>{escape(t['name'])}</td><td class='{escape(t['status'])}'>{escape(t['status'])}</td>"
            f"<td>{t['score']:g} / {t['max_score']:g}</td><td>{escape(t['message'])}</td></tr>"
        )
    body += "</table>"
    more = v.get("more_tests")
    if more:
        k = more["passed"] + more["failed"]
        body += (
            f"<p id='more'>{k} more tests: {more['passed']} passed / {more['failed']} failed "
            "(their names and messages show after the due date)</p>"
        )
    if v.get("hidden_tests_not_shown"):
        body += "<p>Some tests are hidden until grading; they are not counted here.</p>"
    return body


def duration(seconds: float) -> str:
    """Seconds as a person says them: "40 s", "about 3 min", "1 h 20 min"."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"


def late(row: dict[str, Any]) -> str:
    words = row.get("late")
    return f"<p class='refused' id='late'>{escape(words)}</p>" if words else ""


def progress(live: dict[str, Any]) -> str:
    """A running check's results so far (live.live_view), and what is still to come."""
    nb = live["notebook"]
    body = "<div id='progress'>"
    if nb["code_cells"]:
        ran = "all" if nb["done"] >= nb["code_cells"] else f"{nb['done']} of"
        body += f"<p id='cells'>Your notebook: {ran} {nb['code_cells']} code cells run.</p>"
    checks = [
        f"{escape(c['grade_id'])} (code cell {c['code_cell']}"
        + (f", under &quot;{escape(c['heading'])}&quot;" if c.get("heading") else "")
        + "): "
        + ("ran without error" if c["passed"] else "raised an error")
        for c in live["public_checks"]
    ]
    if checks:
        items = "".join(f"<li>{c}</li>" for c in checks)
        body += f"<div id='public'><p>Your notebook's own checks:</p><ul>{items}</ul></div>"
    if live["tests"] or live["tests_waiting"]:
        body += (
            f"<p id='so-far'>Hidden tests so far: {live['score_so_far']:g} / "
            f"{live['max_score_so_far']:g} points of the tests that have finished.</p>"
        )
        body += (
            "<table id='tests'><tr><th>test</th><th>status</th><th>points</th><th>message</th></tr>"
        )
        for t in live["tests"]:
            body += (
                f"<tr><td>{escape(t['name'])}</td><td class='{escape(t['status'])}'>"
                f"{escape(t['status'])}</td><td>{t['score']:g} / {t['max_score']:g}</td>"
                f"<td>{escape(t['message'])}</td></tr>"
            )
        for name in live["tests_waiting"]:
            state = "running" if name == live["running"] else "waiting"
            body += f"<tr><td>{escape(name)}</td><td class='{state}'>{state}</td><td></td><td></td></tr>"
        body += "</table>"
    left = len(live["tests_waiting"]) + live["other_tests_waiting"]
    if live["phase"] == "tests" and left:
        trains = live["trains_waiting"]
        body += (
            f"<p id='waiting'>Still to come: {left} test{'s' if left != 1 else ''}"
            + (f", {trains} of them training your model (these take longest)" if trains else "")
            + ".</p>"
        )
    elif live["phase"] == "notebook" and not nb["code_cells"]:
        body += "<p id='waiting'>Your notebook is about to run in its sandbox.</p>"
    elif live["phase"] == "notebook":
        body += "<p id='waiting'>The hidden tests start when your notebook has run.</p>"
    return body + "</div>"


def refused(lab: str, message: str, *, back: str = "..") -> str:
    return (
        f"<h2>{escape(lab)}</h2><p class='refused' id='refused'>{escape(message)}</p>"
        f"<p><a href='{escape(back)}'>back to your labs</a></p>"
    )


def staff_nav(prefix: str) -> str:
    """Links between the staff pages of the check service (introdl/staff adds the last three)."""
    p = escape(prefix)
    return (
        f"<nav id='staff-nav'><a href='{p}staff'>queue and limits</a> · "
        f"<a href='{p}staff/extensions'>extensions</a> · "
        f"<a href='{p}staff/regrades'>regrade requests</a> · "
        f"<a href='{p}staff/dashboard'>class dashboard</a></nav>"
    )


def staff(
    order: Sequence[Check],
    running: Sequence[Check],
    summary: Sequence[dict[str, Any]],
    *,
    xsrf: str,
    refusals: Sequence[dict[str, Any]] = (),
    prefix: str = "/services/check/",
) -> str:
    """The queue in serving order, then per student and lab: checks asked, last and best score;
    then the form that grants more checks and the requests the service refused (newest first)."""
    body = (
        staff_nav(prefix)
        + "<h2>Queue</h2><table id='queue'><tr><th>#</th><th>student</th><th>lab</th><th>state</th><th>asked</th></tr>"
    )
    for c in list(running) + list(order):
        body += (
            f"<tr><td>{c.id}</td><td>{escape(c.student)}</td><td>{escape(c.lab)}</td>"
            f"<td>{escape(c.state)}</td><td>{when(c.requested_at)}</td></tr>"
        )
    body += "</table><h2>Checks per student and lab</h2><table id='summary'>"
    body += "<tr><th>student</th><th>lab</th><th>checks</th><th>last</th><th>best</th><th>allowance</th></tr>"
    for r in summary:
        last = f"{r['last_score']:g} / {r['max_score']:g}" if "last_score" in r else r["last_state"]
        best = "" if r["best"] is None else f"{r['best']:g}"
        body += (
            f"<tr><td>{escape(r['student'])}</td><td>{escape(r['lab'])}</td><td>{r['checks']}</td>"
            f"<td>{escape(str(last))}</td><td>{best}</td><td>{r['allowance']} per 24 h</td></tr>"
        )
    body += (
        "</table><h2>Give a student more checks</h2>"
        "<form method='post' action='staff/limits' id='grant'>"
        f"<input type='hidden' name='_xsrf' value='{escape(xsrf)}'>"
        "student <input name='student'> lab <input name='lab'> "
        "extra checks per 24 h <input name='extra' type='number' min='0' value='5'> "
        "<button>Grant</button></form>"
    )
    body += (
        "<h2>Refused requests</h2><p>Forged or cross-site requests, other students' checks, "
        "pages for staff only: who sent them (the hub user when known, else the address) and "
        "why they were refused.</p><table id='refusals'>"
        "<tr><th>when</th><th>who</th><th>request</th><th>why</th></tr>"
    )
    for r in refusals:
        body += (
            f"<tr><td>{when(r['at'])}</td><td>{escape(r['who'])}</td>"
            f"<td>{escape(r['action'])}</td><td>{escape(r['reason'])}</td></tr>"
        )
    return body + "</table>"

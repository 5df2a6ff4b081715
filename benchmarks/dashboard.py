"""Benchmark: how long does the class dashboard take for 300 students and 5 labs?

A generated class (tests/dashboard_class.py): nbgrader's gradebook with 1,500 submissions (6 grade
cells, 12 hidden tests each), 1,500 results.json files as batch grading writes them (12 tests,
30 cell runs, phase timings: about 9 kB each, as the demo course's) and the check service's
checks.sqlite with each student's checks (0 to 25 per lab, finished, with their verdicts).

It times what the staff page's handler does (read the sources, compute, draw the plots, write
the HTML; dashboard_html.render), the hub's login check and HTTP aside:
- cold: a fresh process, nothing drawn yet (matplotlib's import included);
- restart: a fresh process whose plot folder survives (the service keeps it in its state folder);
- warm: the same process again, nothing changed (median of 20);
- a check finished: one more row in checks.sqlite (median of 5);
- a submission regraded: one results.json rewritten (median of 5);
and the CSV of the largest table. Method and results: BENCHMARKS.md.
Run: .venv/bin/python benchmarks/dashboard.py [--students 300] [--labs 5] [--dir build/bench-dashboard]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the class generator lives with the tests that use it too

from introdl.staff.dashboard import Dashboard, tables, to_csv  # noqa: E402
from introdl.staff.dashboard_data import Sources  # noqa: E402
from introdl.staff.dashboard_html import render  # noqa: E402
from tests.dashboard_class import random_class, write_class  # noqa: E402

ONE_RENDER = """
import sys, time
t = time.perf_counter()
from pathlib import Path
from introdl.staff.dashboard import Dashboard
from introdl.staff.dashboard_data import Sources
from introdl.staff.dashboard_html import render
course = Path(sys.argv[1])
dash = Dashboard(Sources(course, course / "state" / "checks.sqlite"), plot_dir=course / "state" / "plots")
html = render(dash, lambda t: t + ".csv")
print(time.perf_counter() - t, dash.drawn, len(html))
"""


def fresh_process(course: Path) -> tuple[float, int, int]:
    out = subprocess.run(
        [sys.executable, "-c", ONE_RENDER, str(course)],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    ).stdout.split()
    return float(out[0]), int(out[1]), int(out[2])


def timed(dash: Dashboard) -> float:
    t = time.perf_counter()
    render(dash, lambda t: t + ".csv")
    return time.perf_counter() - t


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=300)
    parser.add_argument("--labs", type=int, default=5)
    parser.add_argument("--dir", type=Path, default=ROOT / "build" / "bench-dashboard")
    args = parser.parse_args()
    course = args.dir.resolve()
    marker = course / f"class-{args.students}x{args.labs}.done"
    if not marker.exists():
        shutil.rmtree(course, ignore_errors=True)
        course.mkdir(parents=True)
        t = time.perf_counter()
        write_class(course, random_class(args.students, args.labs, seed=24))
        marker.touch()
        print(f"generated the class in {time.perf_counter() - t:.1f} s")
    queue = course / "state" / "checks.sqlite"
    with sqlite3.connect(queue) as db:
        checks = db.execute("SELECT COUNT(*) FROM checks").fetchone()[0]
    results = sorted((course / "autograded").glob("*/*/results.json"))
    size = sum(p.stat().st_size for p in results)
    print(
        f"class: {args.students} students x {args.labs} labs; gradebook "
        f"{(course / 'gradebook.db').stat().st_size / 1e6:.1f} MB; {len(results)} results.json "
        f"({size / 1e6:.1f} MB); checks.sqlite {checks} checks ({queue.stat().st_size / 1e6:.1f} MB)"
    )
    shutil.rmtree(course / "state" / "plots", ignore_errors=True)
    cold = [fresh_process(course)]
    restart = [fresh_process(course) for _ in range(3)]
    print(
        f"cold (fresh process, nothing drawn): {cold[0][0]:.2f} s, {cold[0][1]} plots drawn, "
        f"page {cold[0][2] / 1e3:.0f} kB"
    )
    print(
        f"restart (fresh process, plots kept on disk): median {statistics.median(r[0] for r in restart):.2f} s "
        f"of {[round(r[0], 2) for r in restart]}, {restart[0][1]} drawn"
    )

    dash = Dashboard(Sources(course, queue), plot_dir=course / "state" / "plots")
    first = timed(dash)
    warm = [timed(dash) for _ in range(20)]
    print(
        f"in process: first {first:.2f} s; warm median {statistics.median(warm) * 1e3:.0f} ms, "
        f"max {max(warm) * 1e3:.0f} ms"
    )

    after_check, after_grade = [], []
    for i in range(5):
        with sqlite3.connect(queue) as db:
            row = db.execute("SELECT student, lab, results FROM checks ORDER BY id DESC").fetchone()
            now = time.time()
            db.execute(
                "INSERT INTO checks (student, lab, state, requested_at, started_at, finished_at,"
                " results) VALUES (?, ?, 'done', ?, ?, ?, ?)",
                (row[0], row[1], now, now, now + 30, row[2]),
            )
        drawn = dash.drawn
        after_check.append((timed(dash), dash.drawn - drawn))
        path = results[i * 7]
        data = json.loads(path.read_text())
        data["tests"][0]["status"] = (
            "failed" if data["tests"][0]["status"] == "passed" else "passed"
        )
        path.write_text(json.dumps(data))
        drawn = dash.drawn
        after_grade.append((timed(dash), dash.drawn - drawn))
    print(
        f"after a check finished: median {statistics.median(t for t, _ in after_check) * 1e3:.0f} ms "
        f"({after_check[0][1]} plot(s) redrawn)"
    )
    print(
        f"after a submission was regraded: median {statistics.median(t for t, _ in after_grade) * 1e3:.0f} ms "
        f"({after_grade[0][1]} plot(s) redrawn)"
    )
    t = time.perf_counter()
    header, rows = tables(dash.model())["checks"]
    text = to_csv(header, rows)
    print(
        f"CSV of checks ({len(rows)} rows, {len(text) / 1e3:.0f} kB): {(time.perf_counter() - t) * 1e3:.0f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark: warm sandboxes (introdl/grading/pool.py) against cold ones and against the peers.

Four measurements (issue 15, point 5), each chosen with a subcommand; method and results in
BENCHMARKS.md ("Warm sandboxes"):

  fixed       the fixed cost per submission, from "start grading" to the student's first cell
              running: `phases.sandbox_start` (the wait for a kernel) and that plus the first
              cell (the lab's imports: TensorFlow, Keras, numpy), cold and warm, alternating
              submission by submission. A warm run takes a kernel the pool already has ready.
  class       a class of N submissions (the instructor's answers in the release): per submission,
              (a) plain nbclient execution, (b) `nbgrader autograde`, (c) `introdl grade`
              (warm, 1 worker), (c0) `introdl grade --no-warm`, (d) otter-grader's `otter run`
              (no Docker); whole-class runs alternate round by round, ratios per round.
  throughput  `introdl grade` with 1 and 2 local workers, warm and cold: submissions per minute.
  labs        every lab's source notebook graded cold and warm, alternating: per-lab totals.

Run: .venv/bin/python benchmarks/warm_pool.py fixed [--lab lab1_tensorflow] [--runs 8]
     .venv/bin/python benchmarks/warm_pool.py class [--students 30] [--rounds 1]
     .venv/bin/python benchmarks/warm_pool.py throughput [--students 12] [--rounds 2]
     .venv/bin/python benchmarks/warm_pool.py labs [--repeats 1]
otter-grader is in the `bench` extra (pip install -e '.[bench]'); without it (d) is skipped
with a message.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from grading_overhead import build_course, command, plain  # type: ignore[import-not-found]

from introdl.grading.grade import GradeOptions, grade_submission, warm_pool
from introdl.grading.submission import find_submissions
from introdl.labs import LABS

# otter's tests for (d): one trivial doctest, so that otter pays its own pipeline (executing the
# notebook, its checks) and no test work of ours; introdl's (c) also runs the lab's hidden tests.
OTTER_TEST = (
    "OK_FORMAT = True\n"
    'test = {"name": "q1", "points": 1, "suites": [{"cases": [{"code": ">>> 1 + 1\\n2", '
    '"hidden": False, "locked": False}], "scored": True, "setup": "", "teardown": "", '
    '"type": "doctest"}]}\n'
)


def med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def rounded(values: list[float], digits: int = 2) -> list[float]:
    return [round(v, digits) for v in values]


def load() -> str:
    return "load average " + " ".join(f"{x:.1f}" for x in os.getloadavg())


def wait_ready(pool: object, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while not getattr(pool, "_ready") and time.monotonic() < deadline:  # noqa: B009
        time.sleep(0.05)


# --- fixed cost ----------------------------------------------------------------------------------
def fixed(lab: str, runs: int) -> None:
    with tempfile.TemporaryDirectory(prefix="introdl-bench-") as tmp:
        course = Path(tmp) / "course"
        build_course(lab, 1, course)
        sub = find_submissions(course, lab)[0]
        options = GradeOptions(backend="bwrap", seed=0)
        print(f"fixed cost, {lab}, {runs} runs each, alternating; {load()}")
        rows: dict[str, list[tuple[float, float]]] = {"cold": [], "warm": []}
        with warm_pool(course, options, size=1, labs=(lab,)) as pool:
            for i in range(runs):
                for kind in ("cold", "warm") if i % 2 == 0 else ("warm", "cold"):
                    if kind == "warm":
                        wait_ready(pool)  # steady state: the kernel warmed while the last graded
                        graded = grade_submission(course, sub, options, pool=pool)
                    else:
                        graded = grade_submission(course, sub, options)
                    start = graded.results.phases.sandbox_start or 0.0
                    first = next(c.duration for c in graded.results.cells if c.status != "skipped")
                    rows[kind].append((start, start + first))
                    print(
                        f"  {kind}: sandbox_start {start:5.2f} s  + first cell {first:5.2f} s"
                        f" = {start + first:5.2f} s   score {graded.results.score:g}"
                    )
        for kind, values in rows.items():
            starts = [v[0] for v in values]
            firsts = [v[1] for v in values]
            print(
                f"{kind}: sandbox_start median {med(starts):.2f} s {rounded(starts)}; "
                f"to the end of the first cell median {med(firsts):.2f} s {rounded(firsts)}"
            )
        print(f"{load()}")


# --- a class --------------------------------------------------------------------------------------
def otter_zip(where: Path) -> Path | None:
    otter = shutil.which("otter", path=str(Path(sys.executable).parent))
    if otter is None:
        print("(d) otter run: SKIPPED: otter-grader is not installed (pip install -e '.[bench]')")
        return None
    (where / "tests").mkdir(parents=True)
    (where / "tests" / "q1.py").write_text(OTTER_TEST)
    subprocess.run(
        [
            otter,
            "generate",
            "-t",
            "tests",
            "-o",
            "autograder.zip",
            "--no-requirements",
            "--no-environment",
            "--no-config",
        ],
        cwd=where,
        check=True,
        capture_output=True,
    )
    return where / "autograder.zip"


def otter_run(autograder: Path, paths: list[Path], out: Path) -> float:
    otter = str(Path(sys.executable).parent / "otter")
    total = 0.0
    for i, path in enumerate(paths):
        dest = out / str(i)
        dest.mkdir(parents=True, exist_ok=True)
        total += command([otter, "run", "-a", str(autograder), "-o", str(dest), str(path)], out)
    return total


def introdl_cmd(lab: str, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "introdl.cli",
        "grade",
        lab,
        "--backend",
        "bwrap",
        "--force",
        *extra,
    ]


def full_marks(course: Path, lab: str, students: int) -> None:
    """Stop the benchmark unless introdl grade graded every submission to full marks (a run that
    refused them all takes 0.5 s and would read as a speed-up)."""
    scores = []
    for results in sorted(course.glob(f"autograded/*/{lab}/results.json")):
        data = json.loads(results.read_text())
        scores.append((data.get("score"), data.get("max_score"), data.get("errors")))
    if len(scores) != students or any(s != m or e for s, m, e in scores):
        raise SystemExit(f"introdl grade did not grade all {students} to full marks: {scores}")


def a_class(lab: str, students: int, rounds: int, skip: set[str]) -> None:
    with tempfile.TemporaryDirectory(prefix="introdl-bench-") as tmp:
        course = Path(tmp) / "course"
        paths = build_course(lab, students, course)
        autograder = None if "d" in skip else otter_zip(Path(tmp) / "otter")
        print(f"a class of {students} {lab} submissions, {rounds} round(s); {load()}")
        nbgrader_cmd = [sys.executable, "-m", "nbgrader", "autograde", lab, "--force"]
        methods = {
            "a": ("plain nbclient", lambda: sum(plain(p) for p in paths)),
            "b": (
                "nbgrader autograde",
                lambda: command([*nbgrader_cmd, "--log-level=WARN"], course),
            ),
            "c": (
                "introdl grade (warm)",
                lambda: command(introdl_cmd(lab, "--workers", "1"), course),
            ),
            "c0": (
                "introdl grade --no-warm",
                lambda: command(introdl_cmd(lab, "--workers", "1", "--no-warm"), course),
            ),
        }
        if autograder is not None:
            out = Path(tmp) / "otter-out"
            methods["d"] = ("otter run", lambda: otter_run(autograder, paths, out))
        per: dict[str, list[float]] = {k: [] for k in methods if k not in skip}
        for r in range(rounds):
            order = list(per) if r % 2 == 0 else list(reversed(per))
            for key in order:
                seconds = methods[key][1]() / students
                per[key].append(seconds)
                if key in ("c", "c0"):
                    full_marks(course, lab, students)
                shutil.rmtree(course / "autograded", ignore_errors=True)
                print(
                    f"  round {r + 1}: ({key}) {methods[key][0]:<24} {seconds:6.2f} s/submission  ({load()})"
                )
        for key, values in per.items():
            print(
                f"({key}) {methods[key][0]:<24} median {med(values):6.2f} s per submission {rounded(values)}"
            )
        if "c" in per:
            for key in ("a", "b", "d", "c0"):
                if key in per:
                    ratios = [c / x for c, x in zip(per["c"], per[key], strict=True)]
                    print(f"ratio (c)/({key}) = {med(ratios):.2f}  per round {rounded(ratios)}")
        print(f"{load()}")


# --- throughput -----------------------------------------------------------------------------------
def throughput(lab: str, students: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory(prefix="introdl-bench-") as tmp:
        course = Path(tmp) / "course"
        build_course(lab, students, course)
        print(f"throughput, {students} {lab} submissions, {rounds} round(s); {load()}")
        runs = [(w, warm) for w in ("1", "2") for warm in ("--warm=1", "--no-warm")]
        for r in range(rounds):
            for workers, warm in runs if r % 2 == 0 else list(reversed(runs)):
                seconds = command(introdl_cmd(lab, "--workers", workers, warm), course)
                shutil.rmtree(course / "autograded", ignore_errors=True)
                print(
                    f"  round {r + 1}: workers {workers} {warm:<9}: {seconds:6.1f} s, "
                    f"{60 * students / seconds:5.1f} submissions/min  ({load()})"
                )


# --- every lab ------------------------------------------------------------------------------------
def labs(names: list[str], repeats: int) -> None:
    print(f"per-lab grading time, cold vs warm, {repeats} repeat(s); {load()}")
    for lab in names:
        with tempfile.TemporaryDirectory(prefix="introdl-bench-") as tmp:
            course = Path(tmp) / "course"
            build_course(lab, 1, course)
            sub = find_submissions(course, lab)[0]
            totals: dict[str, list[float]] = {"cold": [], "warm": []}
            with warm_pool(course, GradeOptions(backend="bwrap"), size=1, labs=(lab,)) as pool:
                for i in range(repeats):
                    for kind in ("cold", "warm") if i % 2 == 0 else ("warm", "cold"):
                        options = GradeOptions(backend="bwrap", seed=i + 1)
                        if kind == "warm":
                            wait_ready(pool)
                        graded = grade_submission(
                            course, sub, options, pool=pool if kind == "warm" else None
                        )
                        p = graded.results.phases
                        totals[kind].append(p.total or 0.0)
                        print(
                            f"  {lab} {kind}: {graded.results.score:g}/{graded.results.max_score:g}"
                            f"  sandbox {p.sandbox_start or 0:5.2f}  notebook {p.notebook or 0:6.2f}"
                            f"  hidden {p.hidden_tests or 0:6.2f}  total {p.total or 0:6.2f} s ({load()})"
                        )
            c, w = med(totals["cold"]), med(totals["warm"])
            print(f"{lab}: cold {c:6.1f} s, warm {w:6.1f} s, warm/cold {w / c:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("fixed")
    p.add_argument("--lab", default="lab1_tensorflow")
    p.add_argument("--runs", type=int, default=8)
    p = sub.add_parser("class")
    p.add_argument("--lab", default="lab1_tensorflow")
    p.add_argument("--students", type=int, default=30)
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--skip", action="append", default=[], help="a, b, c, c0 or d")
    p = sub.add_parser("throughput")
    p.add_argument("--lab", default="lab1_tensorflow")
    p.add_argument("--students", type=int, default=12)
    p.add_argument("--rounds", type=int, default=2, help="alternating the order")
    p = sub.add_parser("labs")
    p.add_argument("--labs", nargs="*", default=list(LABS))
    p.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    os.environ.setdefault("INTRODL_BUDGET", "smoke")  # the notebook's own training, as graded
    if args.what == "fixed":
        fixed(args.lab, args.runs)
    elif args.what == "class":
        a_class(args.lab, args.students, args.rounds, set(args.skip))
    elif args.what == "throughput":
        throughput(args.lab, args.students, args.rounds)
    else:
        labs(args.labs, args.repeats)


if __name__ == "__main__":
    main()

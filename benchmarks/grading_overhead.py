"""Benchmark: what does sandboxed grading cost over running the notebook, and over nbgrader?

On the same submissions of a lab (the instructor's answers filled into the release, one copy per
student) it times, per submission:

  (a) plain execution: nbclient runs the notebook in an ordinary local kernel (no sandbox, no tests);
  (b) `nbgrader autograde LAB` (the real command, one invocation for the class) / submissions;
  (c) `introdl grade LAB --backend bwrap --workers 1` (the real command) / submissions: sandboxed
      kernel, the notebook, the hidden tests, results.json, the gradebook;
  (c') the grading step alone, in process (grade_submission), for the split between phases.

With `--rounds R`, (a), (b) and (c) over the whole class alternate R times (a, b, c, a, b, c, ...),
so that the machine's drift in speed hits all three alike; (c)/(a) and (c)/(b) are then the
medians of the per-round ratios.

It prints the timings and the ratios (c)/(a) and (c)/(b). Method and results: BENCHMARKS.md.
Run: .venv/bin/python benchmarks/grading_overhead.py [--lab lab1_tensorflow] [--students 3]
     [--rounds 1]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from introdl.cli.demo_students import answered
from introdl.grading.course import nbgrader
from introdl.grading.grade import GradeOptions, grade_submission
from introdl.grading.submission import find_submissions

ROOT = Path(__file__).resolve().parents[1]


def build_course(lab: str, students: int, where: Path) -> list[Path]:
    (where / "source").mkdir(parents=True)
    shutil.copy(ROOT / "nbgrader_config.py", where)
    shutil.copytree(ROOT / "source" / lab, where / "source" / lab)
    (where / "grader_tests").mkdir()
    shutil.copy(ROOT / "grader_tests" / "__init__.py", where / "grader_tests")
    shutil.copytree(ROOT / "grader_tests" / lab, where / "grader_tests" / lab)
    nbgrader("generate_assignment", lab, "--force", "--log-level=WARN", cwd=where)
    source = nbformat.read(where / "source" / lab / f"{lab}.ipynb", as_version=4)
    release = nbformat.read(where / "release" / lab / f"{lab}.ipynb", as_version=4)
    paths = []
    for i in range(students):
        folder = where / "submitted" / f"student{i}" / lab
        folder.mkdir(parents=True)
        nbformat.write(answered(source, release), folder / f"{lab}.ipynb")
        # as `nbgrader collect` leaves it: introdl grade refuses a submission with no time stamp
        (folder / "timestamp.txt").write_text("2026-12-07 09:00:00.000000 UTC")
        paths.append(folder / f"{lab}.ipynb")
    return paths


def plain(path: Path) -> float:
    nb = nbformat.read(path, as_version=4)
    t0 = time.perf_counter()
    NotebookClient(
        nb, kernel_name="python3", timeout=1800, resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    return time.perf_counter() - t0


def command(args: list[str], cwd: Path) -> float:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    t0 = time.perf_counter()
    subprocess.run(args, cwd=cwd, env=env, check=True, capture_output=True)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lab", default="lab1_tensorflow")
    parser.add_argument("--students", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=1, help="alternations of (b) and (c)")
    args = parser.parse_args()
    os.environ.setdefault("INTRODL_BUDGET", "smoke")  # the notebook's own training, as graded
    with tempfile.TemporaryDirectory(prefix="introdl-bench-") as tmp:
        course = Path(tmp) / "course"
        paths = build_course(args.lab, args.students, course)
        print(f"lab {args.lab}, {args.students} submissions, load average {os.getloadavg()[0]:.1f}")
        # (a) and (c') alternate per submission, so a change of machine load hits both alike.
        a: list[float] = []
        steps = []
        for path, sub in zip(paths, find_submissions(course, args.lab), strict=True):
            a.append(plain(path))
            options = GradeOptions(backend="bwrap", seed=0)
            steps.append(grade_submission(course, sub, options).results.phases)
        print(f"(a) nbclient, per submission: median {statistics.median(a):6.1f} s  {rounded(a)}")
        for name in ("sandbox_start", "notebook", "hidden_tests", "total"):
            values = [getattr(p, name) or 0.0 for p in steps]
            print(
                f"(c') grading step, {name:<13} median {statistics.median(values):6.2f} s  {rounded(values)}"
            )
        nbgrader_cmd = [
            sys.executable,
            "-m",
            "nbgrader",
            "autograde",
            args.lab,
            "--force",
            "--log-level=WARN",
        ]
        introdl_cmd = [
            sys.executable,
            "-m",
            "introdl.cli",
            "grade",
            args.lab,
            "--backend",
            "bwrap",
            "--workers",
            "1",
            "--force",
        ]
        rounds_a: list[float] = []
        bs: list[float] = []
        cs: list[float] = []
        for _ in range(args.rounds):
            rounds_a.append(sum(plain(path) for path in paths) / args.students)
            bs.append(command(nbgrader_cmd, course) / args.students)
            shutil.rmtree(course / "autograded")
            cs.append(command(introdl_cmd, course) / args.students)
            shutil.rmtree(course / "autograded")
            print(
                f"round {len(bs)}: (a) {rounds_a[-1]:5.1f} s  (b) {bs[-1]:5.1f} s  (c) {cs[-1]:5.1f} s"
                f"  (c)/(a) {cs[-1] / rounds_a[-1]:.2f}  (c)/(b) {cs[-1] / bs[-1]:.2f}"
            )
        b, c = statistics.median(bs), statistics.median(cs)
        print(f"(b) nbgrader autograde, per submission: {b:6.1f} s")
        print(f"(c) introdl grade (bwrap), per submission: {c:6.1f} s")
        step = statistics.median([p.total or 0.0 for p in steps])
        over_a = [ci / ai for ai, ci in zip(rounds_a, cs, strict=True)]
        print(
            f"ratio (c)/(a)  = {statistics.median(over_a):.2f}   (target <= 1.15; median of rounds {[round(r, 2) for r in over_a]})"
        )
        print(
            f"ratio (c')/(a) = {step / statistics.median(a):.2f}   (the grading step alone, interleaved with (a))"
        )
        ratios = [ci / bi for bi, ci in zip(bs, cs, strict=True)]
        print(
            f"ratio (c)/(b)  = {statistics.median(ratios):.2f}   (target <= 1.00; median of rounds {[round(r, 2) for r in ratios]})"
        )
        print(f"load average at the end {os.getloadavg()[0]:.1f}")


def rounded(values: list[float]) -> list[float]:
    return [round(v, 1) for v in values]


if __name__ == "__main__":
    main()

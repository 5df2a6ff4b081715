"""`introdl demo` (make demo): the main job, a demo course graded end to end on embedded defaults.

1. the offline data sets are fetched into the cache (registry sources only);
2. every release is regenerated from its source notebook and every source notebook is validated
   with nbgrader (as an instructor does each term; notebooks run at the smoke budget);
3. a demo course is built in `build/demo-course/` (SQLite gradebook, local exchange): the
   lab1_tensorflow release goes out with `nbgrader release_assignment`; five students fetch it with
   `nbgrader fetch_assignment`, fill it in (see demo_students.py) and hand it in with
   `nbgrader submit --student ID`; the TA runs `nbgrader collect`;
4. the class is graded in bubblewrap sandboxes by the hidden tests, feedback is generated with
   `nbgrader generate_feedback`, grades are exported with `nbgrader export`, and a per-student table
   is printed.

The terminal gets one line per step and the table. Everything else the steps print (nbgrader's
logs, the validation kernels' TensorFlow/absl start-up lines and jupyter_client's "Kernel is running
over TCP" warnings) goes to `build/logs/demo.log`: the process's own stdout and stderr file
descriptors point there while the demo runs, so child processes write there too.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import nbformat

import introdl.data as registry
from introdl.cli.release import generate
from introdl.grading.batch import Row, grade_class
from introdl.grading.course import course_root, labs_with_source, nbgrader, validate_source
from introdl.grading.grade import GradeOptions
from introdl.grading.sandbox.limits import DEFAULT_LIMITS
from introdl.grading.submission import find_submissions

LAB = "lab1_tensorflow"
# The demo's hostile student loops forever: a short cell budget keeps the demo quick.
DEMO_LIMITS = replace(DEFAULT_LIMITS, cell_timeout=60.0, notebook_timeout=600.0)


@dataclass(frozen=True)
class DemoResult:
    course: str
    data: tuple[str, ...]
    releases: tuple[str, ...]
    validated: tuple[str, ...]
    rows: tuple[Row, ...]
    feedback: tuple[str, ...]
    export: str
    log: str = ""  # where the steps' own output went

    def summary(self) -> str:
        width = max([len(r.student) for r in self.rows] + [7])
        lines = [
            "introdl demo: done",
            f"  offline data cached:   {', '.join(self.data)}",
            f"  releases regenerated:  {len(self.releases)} notebooks under release/",
            f"  sources validated:     {len(self.validated)} notebooks under source/",
            f"  demo course:           {self.course}",
            "",
            f"  {LAB}, graded in sandboxes by the hidden tests:",
            f"  {'student':<{width}}  {'score':>9}  note",
        ]
        for r in self.rows:
            lines.append(
                f"  {r.student:<{width}}  {f'{r.score:g} / {r.max_score:g}':>9}  {r.message[:110]}"
            )
        lines += [
            "",
            f"  feedback: {len(self.feedback)} HTML file(s) under {self.course}/feedback/",
        ]
        lines.append(f"  grades exported (nbgrader export): {self.export}")
        if self.log:
            lines.append(f"  log of every step (nbgrader, kernels, TensorFlow): {self.log}")
        return "\n".join(lines)


@contextlib.contextmanager
def quiet(log: Path) -> Iterator[Callable[[str], None]]:
    """Send stdout and stderr (this process's and its children's) to LOG; yield a `say` that
    prints one line of progress to the terminal."""
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_bytes(b"")
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    terminal = os.fdopen(os.dup(1), "w", buffering=1)
    sink = os.open(log, os.O_WRONLY | os.O_APPEND)
    os.dup2(sink, 1)
    os.dup2(sink, 2)
    os.close(sink)
    try:
        with (
            open(log, "a", buffering=1, encoding="utf-8") as text,
            contextlib.redirect_stdout(text),
            contextlib.redirect_stderr(text),
        ):
            yield lambda line: print(line, file=terminal, flush=True)
    finally:
        for fd, old in zip((1, 2), saved, strict=True):
            os.dup2(old, fd)
            os.close(old)
        terminal.close()


@contextlib.contextmanager
def budget(name: str) -> Iterator[None]:
    before = os.environ.get("INTRODL_BUDGET")
    os.environ.setdefault("INTRODL_BUDGET", name)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("INTRODL_BUDGET", None)


def build_course(root: Path, course: Path) -> None:
    """A fresh demo course: the real course's config, one lab's source, release and hidden tests."""
    if course.exists():
        shutil.rmtree(course)
    (course / "source").mkdir(parents=True)
    shutil.copy(root / "nbgrader_config.py", course / "nbgrader_config.py")
    shutil.copytree(root / "source" / LAB, course / "source" / LAB)
    (course / "grader_tests").mkdir()
    shutil.copy(root / "grader_tests" / "__init__.py", course / "grader_tests" / "__init__.py")
    shutil.copytree(
        root / "grader_tests" / LAB,
        course / "grader_tests" / LAB,
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    (course / "exchange").mkdir(mode=0o777)
    os.chmod(course / "exchange", 0o777)


def hand_in(course: Path) -> list[str]:
    """Release, fetch, fill in, submit, collect: nbgrader's own exchange commands."""
    exchange = f"--Exchange.root={course / 'exchange'}"
    nbgrader("generate_assignment", LAB, "--force", "--log-level=WARN", cwd=course)
    nbgrader("release_assignment", LAB, "--force", "--log-level=WARN", exchange, cwd=course)
    from introdl.cli.demo_students import demo_notebooks

    source = nbformat.read(course / "source" / LAB / f"{LAB}.ipynb", as_version=4)
    release = nbformat.read(course / "release" / LAB / f"{LAB}.ipynb", as_version=4)
    students = demo_notebooks(source, release, course)
    for student, notebook in students.items():
        home = course / "homes" / student
        home.mkdir(parents=True)
        course_id = "--CourseDirectory.course_id=introdl"
        nbgrader("fetch_assignment", LAB, course_id, exchange, "--log-level=WARN", cwd=home)
        path = home / LAB / f"{LAB}.ipynb"
        if isinstance(notebook, bytes):
            path.write_bytes(notebook)
        else:
            nbformat.write(notebook, path)
        nbgrader(
            "submit", LAB, f"--student={student}", course_id, exchange, "--log-level=WARN", cwd=home
        )
    nbgrader("collect", LAB, "--update", exchange, "--log-level=WARN", cwd=course)
    return list(students)


def demo(*, workdir: str | None = None) -> DemoResult:
    """Fetch offline data, regenerate and validate releases, then grade a demo class end to end."""
    root = course_root()
    log = root / "build" / "logs" / "demo.log"
    course = Path(workdir).resolve() if workdir else root / "build" / "demo-course"
    with quiet(log) as say:
        say(f"introdl demo: each step's own output goes to {log.relative_to(root)}")
        fetched = tuple(
            n
            for n, ds in registry.REGISTRY.items()
            if ds.offline and not ds.grader_only and registry.fetch(n, progress=False)
        )
        say(f"[1/4] offline data cached: {', '.join(fetched)}")
        releases: list[str] = []
        validated: list[str] = []
        with budget("smoke"):
            for lab in labs_with_source(root):
                releases += [str(p.relative_to(root)) for p in generate(root, lab)]
                validated.append(validate_source(root, lab))
                say(f"[2/4] {lab}: release regenerated, source notebook validated by nbgrader")
        rows, feedback, csv = grade_demo_class(root, course, say)
    return DemoResult(
        str(course),
        fetched,
        tuple(releases),
        tuple(validated),
        tuple(rows),
        tuple(feedback),
        str(csv),
        str(log),
    )


def grade_demo_class(
    root: Path, course: Path, say: Callable[[str], None] = print
) -> tuple[list[Row], list[str], Path]:
    """Build the demo course at COURSE, hand in the five students, grade, feedback, export."""
    build_course(root, course)
    students = hand_in(course)
    say(f"[3/4] {LAB} released, fetched, filled in and submitted by {len(students)} students")
    subs = find_submissions(course, LAB)
    rows = grade_class(
        course,
        subs,
        GradeOptions(backend="bwrap", limits=DEMO_LIMITS),
        workers=1,
        force=True,
        on_row=lambda r: say(f"[4/4] graded {r.student}: {r.score:g} / {r.max_score:g}"),
    )
    from introdl.grading.record.gradebook import export_grades, generate_feedback

    feedback = [
        str(generate_feedback(course, LAB, r.student)) for r in rows if r.status == "graded"
    ]
    return rows, feedback, export_grades(course, course / "grades.csv")

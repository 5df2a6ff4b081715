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
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import nbformat

import introdl.data as registry
from introdl.grading.batch import Row, grade_class
from introdl.grading.commands.release import generate
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

    def summary(self) -> str:
        width = max([len(r.student) for r in self.rows] + [7])
        lines = [
            "introdl demo: done",
            f"  offline data cached:   {', '.join(self.data)}",
            f"  releases regenerated:  {', '.join(self.releases)}",
            f"  sources validated:     {', '.join(self.validated)}",
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
        return "\n".join(lines)


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
    from introdl.grading.commands.demo_students import demo_notebooks

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
    fetched = tuple(
        n
        for n, ds in registry.REGISTRY.items()
        if ds.offline and not ds.grader_only and registry.fetch(n, progress=False)
    )
    releases: list[str] = []
    validated: list[str] = []
    with budget("smoke"):
        for lab in labs_with_source(root):
            releases += [str(p.relative_to(root)) for p in generate(root, lab)]
            validated.append(validate_source(root, lab))
    course = Path(workdir).resolve() if workdir else root / "build" / "demo-course"
    rows, feedback, csv = grade_demo_class(root, course)
    return DemoResult(
        str(course),
        fetched,
        tuple(releases),
        tuple(validated),
        tuple(rows),
        tuple(feedback),
        str(csv),
    )


def grade_demo_class(root: Path, course: Path) -> tuple[list[Row], list[str], Path]:
    """Build the demo course at COURSE, hand in the five students, grade, feedback, export."""
    build_course(root, course)
    hand_in(course)
    subs = find_submissions(course, LAB)
    rows = grade_class(
        course, subs, GradeOptions(backend="bwrap", limits=DEMO_LIMITS), workers=1, force=True
    )
    from introdl.grading.record.gradebook import export_grades, generate_feedback

    feedback = [
        str(generate_feedback(course, LAB, r.student)) for r in rows if r.status == "graded"
    ]
    return rows, feedback, export_grades(course, course / "grades.csv")

"""The test phase: run a lab's hidden pytest suite in the grader's own process.

`run_hidden_tests` calls `pytest.main` in-process (no interpreter start) with the plugin in
`plugin.py` (markers `grade` and `budget`, fixtures `student`, `rng`, `seed`, source-free
outcomes). Assertion rewriting is off (`--assert=plain`, also when the grader itself runs under
pytest) and pytest's terminal is unplugged, so no traceback is ever rendered.

A broken suite (an import error, a test without a grade marker, points that do not add up) raises
`HiddenSuiteError` naming the file before any student is scored. One run at a time per process:
pytest keeps global state, so batch grading runs suites in separate worker processes.

Hidden tests take their numeric checks from `expect.py` (one place for tolerances).
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pytest

from introdl.grading.errors import BadInput
from introdl.grading.hidden.busy import BusyWatch
from introdl.grading.hidden.marks import DEFAULT_BUDGET
from introdl.grading.hidden.plugin import HiddenTestPlugin, StudentLike
from introdl.grading.record.live import Listener
from introdl.grading.record.results import TestResult


class HiddenSuiteError(BadInput):
    """The hidden suite is broken (an authoring error): fix grader_tests/, nobody is scored."""


def run_hidden_tests(
    suite_dir: Path,
    student: StudentLike,
    *,
    seed: int,
    points: Mapping[str, float],
    only: Sequence[str] = (),
    default_budget: float = DEFAULT_BUDGET,
    deadline: float | None = None,
    on_event: Listener | None = None,
    busy: BusyWatch | None = None,
) -> list[TestResult]:
    """Run the hidden suite in SUITE_DIR against STUDENT; one `TestResult` per test, in order.

    POINTS maps each autograded grade cell of the lab to its points (from the source notebook);
    the suite's markers must add up to it. ONLY keeps the tests whose grade id, name or node id is
    listed (calibration grades a known-wrong variant against just the tests meant to catch it).
    DEADLINE (a `time.monotonic()` value) ends the phase: a test's budget is cut to what is left
    of it, and a test that would start past it fails without running (the submission's grading
    limit, `Limits.grading_timeout`).
    ON_EVENT receives the plan and each outcome as it lands (introdl/grading/record/live.py).
    BUSY (made when the grading started) turns a limit that ran out on a too busy host into an
    error instead of a failure (hidden/busy.py).
    Raises `HiddenSuiteError` naming the file when the suite itself is broken.
    """
    suite_dir = suite_dir.resolve()
    if not suite_dir.is_dir():
        raise HiddenSuiteError(
            f"no hidden test suite at {suite_dir}; create it (grader_tests/<lab>/)"
        )
    if seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed}")
    scope = suite_dir.parent  # the suite and a shared grader_tests/conftest.py, nothing above
    plugin = HiddenTestPlugin(
        student,
        seed=seed,
        points=points,
        only=only,
        scrub=(str(scope), str(suite_dir)),
        default_budget=default_budget,
        deadline=deadline,
        on_event=on_event,
        busy=busy,
    )
    args = [
        str(suite_dir),
        "-c", "/dev/null",  # no ini file: the course's pytest settings are for the project's tests
        "--rootdir", str(suite_dir),
        "--confcutdir", str(scope),
        "--assert=plain",  # rewritten asserts put source lines into messages
        "--capture=sys",  # hidden tests' prints are discarded; the grader's own fds stay untouched
        "--strict-markers",
        "-p", "no:terminal",  # nothing printed, so no traceback is ever rendered
        "-p", "no:cacheprovider",  # writes nothing into grader_tests/
        "-p", "no:logging",
        "-p", "no:randomly",
    ]  # fmt: skip
    hypothesis = importlib.util.find_spec("_hypothesis_pytestplugin") is not None
    if hypothesis:
        args.append(f"--hypothesis-seed={seed}")
    console = io.StringIO()
    with (
        _fresh_imports(scope),
        _hypothesis_profile(hypothesis),
        contextlib.redirect_stdout(console),
        contextlib.redirect_stderr(console),
    ):
        code = pytest.main(args, plugins=[plugin])
    if plugin.interrupted:
        raise KeyboardInterrupt
    if plugin.problems:
        raise HiddenSuiteError(
            f"the hidden suite {suite_dir} is broken:\n- " + "\n- ".join(plugin.problems)
        )
    if code == pytest.ExitCode.NO_TESTS_COLLECTED and not points:
        return []  # a lab without autograded cells
    if code not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
        raise HiddenSuiteError(
            f"pytest could not run the hidden suite {suite_dir} (exit code {int(code)}):\n{console.getvalue()}"
        )
    return plugin.outcomes()


@contextlib.contextmanager
def _fresh_imports(scope: Path) -> Iterator[None]:
    """Import the suite afresh, unrewritten, and forget its modules and sys.path entries afterwards.

    The next grading re-imports them: no state leaks from one student to the next, and two labs
    may both have a `test_hidden.py`. When the grader itself runs under pytest (the project's own
    tests), the outer session's assertion-rewriting import hook would rewrite the hidden tests and
    put their source into messages: it is taken off sys.meta_path for the run.
    """
    # A suite inside a package (grader_tests/<lab>/ with __init__.py files) is imported as
    # `grader_tests.<lab>`: a `grader_tests` of another course imported earlier must not stand in.
    package = (
        scope.parent
        if (scope / "__init__.py").is_file() and (scope.parent / "__init__.py").is_file()
        else scope
    )
    for name in [n for n in sys.modules if n == package.name or n.startswith(package.name + ".")]:
        file = getattr(sys.modules[name], "__file__", None)
        if file and not Path(file).resolve().is_relative_to(package.resolve()):
            del sys.modules[name]
    scope = package
    path_before = list(sys.path)
    modules_before = set(sys.modules)
    meta_before = list(sys.meta_path)
    sys.meta_path[:] = [f for f in meta_before if type(f).__name__ != "AssertionRewritingHook"]
    try:
        yield
    finally:
        sys.meta_path[:] = meta_before
        sys.path[:] = path_before
        for name in set(sys.modules) - modules_before:
            file = getattr(sys.modules[name], "__file__", None)
            if file and Path(file).resolve().is_relative_to(scope):
                del sys.modules[name]


@contextlib.contextmanager
def _hypothesis_profile(enabled: bool) -> Iterator[None]:
    """Hypothesis without its example database (one student's failing input must not be replayed
    for the next) and without reproduction blobs; seeded by --hypothesis-seed."""
    if not enabled:
        yield
        return
    from hypothesis import settings

    previous = settings.get_current_profile_name()
    settings.register_profile(
        "introdl-grading", parent=settings.get_profile(previous), database=None, print_blob=False
    )
    settings.load_profile("introdl-grading")
    try:
        yield
    finally:
        settings.load_profile(previous)

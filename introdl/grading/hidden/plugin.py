"""The pytest plugin of the test phase: markers, fixtures, budgets and source-free outcomes.

- `@pytest.mark.grade(grade_id, points=N)`: every hidden test needs one; the points of the tests
  sharing a grade id must add up to that grade cell's points in the release notebook. An optional
  `visibility="hidden"` keeps a test's name and message out of feedback; `after_due_date` shows
  it in feedback but only counts it in a pre-deadline check (also as `@pytest.mark.visibility(...)`).
- `@pytest.mark.budget(seconds=S)`: a test's wall-clock budget, fixture setup included (default
  DEFAULT_BUDGET). An overrunning test is stopped by SIGALRM and fails with a clear message.
- `@pytest.mark.trains`: the test trains a model (slow); such tests run after all the others, so a
  live check shows the fast results first (introdl/grading/record/live.py).
- Fixtures: `student` (the only door into the student's kernel), `rng` (a NumPy generator seeded
  from the grading seed and the test's id) and `seed` (an int drawn the same way).
- A budget that runs out while the student's kernel used little CPU makes the test an error
  ("the grading machine was too busy"), never a failure (hidden/busy.py, kernel/cpu.py).
- Each test's outcome becomes a `TestResult` whose `output` is the authored message only (see
  `feedback_message`): never a traceback, a source line, a grader path or a local variable.
"""

from __future__ import annotations

import contextlib
import math
import signal
import threading
import time
from collections.abc import Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pytest

from introdl.grading.hidden.busy import BusyWatch
from introdl.grading.hidden.marks import (
    DEFAULT_BUDGET,
    BudgetExceeded,
    HostTooSlow,
    SetupBudgetExceeded,
    Timing,
    budget_of,
    feedback_message,
    grade_of,
    item_location,
    overrun_message,
    planned,
    seed_key,
)
from introdl.grading.record.live import Listener, notify
from introdl.grading.record.results import Status, TestResult

MARKERS = (
    "grade(grade_id, points): the grade cell a hidden test scores and the points it is worth",
    "budget(seconds): the wall-clock budget of a hidden test, fixture setup included",
    "visibility(name): who sees the test before the due date: visible (default), "
    "after_due_date (counted only, then shown), hidden (never shown in checks or feedback)",
    "trains: the test trains a model; it runs after every test that does not",
)


@runtime_checkable
class StudentLike(Protocol):
    """What hidden tests may do with the student's kernel (the door's `Student` implements it).

    An object that also has an `interrupt()` method gets it called when a test runs out of budget
    in the middle of a call, so the kernel stops working on the abandoned request.
    """

    def call(self, name: str, *args: Any, timeout: float = ..., **kwargs: Any) -> Any:
        """Call the student's function NAME on plain-data arguments; returns plain data."""
        ...

    def run(self, code: str) -> Any:
        """Run CODE in the student's kernel."""
        ...

    def get(self, name: str) -> Any:
        """The value of the student's variable NAME, as plain data."""
        ...


@dataclass
class _Phase:
    outcome: str  # pytest's: passed, failed, skipped; or error: the call raised HostTooSlow
    message: str = ""
    xfail: bool = False


class HiddenTestPlugin:
    """The pytest plugin behind `run_hidden_tests`; one instance per run."""

    def __init__(
        self,
        student: StudentLike,
        *,
        seed: int,
        points: Mapping[str, float],
        only: Sequence[str] = (),
        scrub: Sequence[str] = (),
        default_budget: float = DEFAULT_BUDGET,
        deadline: float | None = None,
        on_event: Listener | None = None,
        busy: BusyWatch | None = None,
    ) -> None:
        # Underscored: the public names are the fixtures `student` and `seed` below.
        self._student = student
        self._seed = seed
        self.points = dict(points)
        self.only = tuple(only)
        self.scrub = tuple(sorted({s for s in scrub if s}, key=len, reverse=True))
        self.default_budget = default_budget
        self.deadline = deadline  # time.monotonic() past which no hidden test may run
        self.on_event = on_event  # the live view: the plan, then each outcome as it lands
        self.busy = busy  # whether a limit that ran out was the host's fault (hidden/busy.py)
        self.problems: list[str] = []
        self.items: list[pytest.Item] = []
        self.phases: dict[str, dict[str, _Phase]] = {}
        self.timings: dict[str, Timing] = {}
        self.interrupted = False
        self.rootpath = Path()

    # --- configuration and collection ----------------------------------------------------------
    def pytest_configure(self, config: pytest.Config) -> None:
        for line in MARKERS:
            config.addinivalue_line("markers", line)
        self.rootpath = config.rootpath

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            where = self.rootpath / report.nodeid if report.nodeid else self.rootpath
            self.problems.append(
                f"{where} could not be imported or collected:\n{report.longreprtext}"
            )

    def pytest_collection_modifyitems(
        self, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        self._check_markers(items)
        self._check_points(items)
        selected = self._select(items)
        if self.problems:
            selected = []
        deselected = [it for it in items if it not in selected]
        if deselected:
            config.hook.pytest_deselected(items=deselected)
        # Fast tests first, those that train a model last (stable: authored order otherwise), so
        # that a student watching a check sees most results within seconds.
        selected.sort(key=lambda item: item.get_closest_marker("trains") is not None)
        items[:] = selected
        self.items = list(selected)
        if not self.problems:
            notify(self.on_event, {"event": "tests", "planned": [planned(i) for i in selected]})

    def _check_markers(self, items: list[pytest.Item]) -> None:
        names: dict[str, str] = {}
        for item in items:
            where = item_location(item)
            try:
                grade_of(item)
                budget_of(item, self.default_budget)
            except ValueError as err:
                self.problems.append(f"{where}: {err}")
                continue
            if item.name in names:
                self.problems.append(
                    f"{where}: another hidden test is also named {item.name!r} ({names[item.name]}); "
                    "feedback shows test names, so make them unique"
                )
            names[item.name] = where

    def _check_points(self, items: list[pytest.Item]) -> None:
        carried: dict[str, list[tuple[str, float]]] = {}
        for item in items:
            with contextlib.suppress(ValueError):  # already reported by _check_markers
                grade_id, pts, _ = grade_of(item)
                carried.setdefault(grade_id, []).append((item_location(item), pts))
        known = ", ".join(sorted(self.points)) or "none"
        for grade_id, tests in carried.items():
            if grade_id not in self.points:
                self.problems.append(
                    f"{tests[0][0]}: grade id {grade_id!r} is not an autograded grade cell of the "
                    f"source notebook (grade cells: {known})"
                )
                continue
            total = math.fsum(p for _, p in tests)
            if not math.isclose(total, self.points[grade_id], rel_tol=1e-9, abs_tol=1e-9):
                detail = ", ".join(f"{w.rsplit('::', 1)[-1]} {p:g}" for w, p in tests)
                self.problems.append(
                    f"{tests[0][0].split('::')[0]}: grade cell {grade_id!r} is worth "
                    f"{self.points[grade_id]:g} points in the release notebook (`introdl release` "
                    "makes it from the source), but its hidden tests "
                    f"carry {total:g} ({detail}); make the marker points add up"
                )
        for grade_id, pts in self.points.items():
            if grade_id not in carried:
                self.problems.append(
                    f"grade cell {grade_id!r} ({pts:g} points) has no hidden test; add tests marked "
                    f"@pytest.mark.grade({grade_id!r}, points=...)"
                )

    def _select(self, items: list[pytest.Item]) -> list[pytest.Item]:
        if not self.only:
            return list(items)
        wanted = set(self.only)
        chosen: list[pytest.Item] = []
        matched: set[str] = set()
        for item in items:
            keys = {item.name, item.nodeid, getattr(item, "originalname", item.name)}
            with contextlib.suppress(ValueError):
                keys.add(grade_of(item)[0])
            hits = keys & wanted
            if hits:
                chosen.append(item)
                matched |= hits
        missing = sorted(wanted - matched)
        if missing:
            self.problems.append(f"`only` names no hidden test or grade id: {', '.join(missing)}")
        return chosen

    # --- fixtures --------------------------------------------------------------------------------
    @pytest.fixture(scope="session")
    def student(self) -> StudentLike:
        """The student's kernel: `call`, `run`, `get` bring back plain data only."""
        return self._student

    @pytest.fixture
    def rng(self, request: pytest.FixtureRequest) -> np.random.Generator:
        """A generator seeded from the grading seed and this test's id: fresh per grading seed,
        reproducible from the seed recorded in results.json."""
        return np.random.default_rng(
            np.random.SeedSequence([self._seed, seed_key(request.node.nodeid, request.module)])
        )

    @pytest.fixture
    def seed(self, request: pytest.FixtureRequest) -> int:
        """A 31-bit seed drawn the same way as `rng`, for code that takes a plain int seed."""
        key = seed_key(request.node.nodeid, request.module)
        seq = np.random.SeedSequence([self._seed, key, 1])
        return int(seq.generate_state(1)[0] >> 1)

    # --- running: budgets ----------------------------------------------------------------------
    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> Generator[None, None, None]:
        budget = budget_of(item, self.default_budget)
        cut = self.deadline is not None and self.deadline - time.monotonic() < budget
        if cut:
            assert self.deadline is not None
            budget = max(0.0, self.deadline - time.monotonic())
        timing = self.timings[item.nodeid] = Timing(budget=budget, cut=cut)
        if self.busy is not None:
            self.busy.start(item.nodeid)
        if cut and budget <= 0:  # the deadline has passed: the test does not start
            self._overrun(item, timing)
            raise SetupBudgetExceeded(overrun_message(timing))
        with self._alarm(item, SetupBudgetExceeded):
            return (yield)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, None, None]:
        try:
            with self._alarm(item, BudgetExceeded):
                return (yield)
        finally:
            self.timings[item.nodeid].ended = time.monotonic()

    @contextlib.contextmanager
    def _alarm(self, item: pytest.Item, error: type[BaseException]) -> Iterator[None]:
        """Interrupt setup or call when the budget runs out (SIGALRM; main thread only).

        Teardown is never interrupted: pytest cannot clean up after a half-run teardown. Off the
        main thread the budget is still checked after the test (see `_resolve`).
        """
        timing = self.timings.get(item.nodeid)
        usable = threading.current_thread() is threading.main_thread() and hasattr(
            signal, "setitimer"
        )
        if timing is None or not usable:
            yield
            return
        remaining = timing.budget - (time.monotonic() - timing.started)
        over = overrun_message(timing)

        def on_alarm(signum: int, frame: FrameType | None) -> None:
            self._overrun(item, timing)
            raise BudgetExceeded(over)

        previous = signal.signal(signal.SIGALRM, on_alarm)
        try:
            if remaining <= 0:
                raise BudgetExceeded(over)
            signal.setitimer(signal.ITIMER_REAL, remaining, 1.0)
            yield
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            # None: the old handler was not installed from Python; the default is what was there.
            signal.signal(signal.SIGALRM, signal.SIG_DFL if previous is None else previous)

    # --- running: outcomes ---------------------------------------------------------------------
    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        message, host_too_slow = "", False
        if call.excinfo is not None:
            exc = call.excinfo.value
            message = feedback_message(exc, self.scrub)
            host_too_slow = call.when == "call" and isinstance(exc, HostTooSlow)
            if isinstance(exc, BudgetExceeded | SetupBudgetExceeded):
                self._interrupt_student()
        if self.busy is not None and call.when == "call":
            self.busy.ended(item.nodeid, call.excinfo.value if call.excinfo else None, message)
        self.phases.setdefault(item.nodeid, {})[call.when] = _Phase(
            outcome="error" if host_too_slow else report.outcome,
            message=message,
            xfail=report.outcome == "skipped" and hasattr(report, "wasxfail"),
        )
        return report

    def pytest_runtest_logfinish(self, nodeid: str, location: tuple[str, int | None, str]) -> None:
        if self.on_event is None:
            return
        for item in self.items:
            if item.nodeid == nodeid:
                notify(self.on_event, {"event": "test", "result": self._resolve(item).to_json()})
                return

    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        # pytest reports collection errors as Session.Interrupted, a KeyboardInterrupt subclass.
        if not isinstance(excinfo.value, pytest.Session.Interrupted | pytest.Session.Failed):
            self.interrupted = True

    def _overrun(self, item: pytest.Item, timing: Timing) -> None:
        if self.busy is not None:
            self.busy.overrun(item.nodeid, timing.budget, timing.cut)

    def _interrupt_student(self) -> None:
        """Stop whatever the student's kernel was doing for the overrun test, if it can be told."""
        interrupt = getattr(self._student, "interrupt", None)
        if callable(interrupt):
            with contextlib.suppress(Exception):
                interrupt()

    def outcomes(self) -> list[TestResult]:
        return [self._resolve(item) for item in self.items]

    def _resolve(self, item: pytest.Item) -> TestResult:
        grade_id, points, visibility = grade_of(item)
        phases = self.phases.get(item.nodeid, {})
        setup, call, teardown = phases.get("setup"), phases.get("call"), phases.get("teardown")
        timing = self.timings.get(item.nodeid)
        elapsed = 0.0
        if timing is not None:
            elapsed = (timing.ended or time.monotonic()) - timing.started
        status: Status
        if timing is not None and timing.cut and timing.budget <= 0:
            status, message = "failed", overrun_message(timing)
        elif setup is None or (setup.outcome == "passed" and call is None):
            status, message = "error", "the test did not run"
        elif setup.outcome == "skipped":
            status, message = "skipped", setup.message
        elif setup.outcome == "failed":
            status, message = "error", f"the test could not be set up: {setup.message}"
        elif call is not None and (call.outcome in ("failed", "error") or call.xfail):
            status, message = "error" if call.outcome == "error" else "failed", call.message
        elif call is not None and call.outcome == "skipped":
            status, message = "skipped", call.message
        elif timing is not None and elapsed > timing.budget:
            status = "failed"
            message = (
                overrun_message(timing)
                if timing.cut
                else f"the test took {elapsed:.1f} s, past its time budget of {timing.budget:g} s"
            )
        elif teardown is not None and teardown.outcome == "failed":
            status, message = "error", f"the test's clean-up failed: {teardown.message}"
        else:
            status, message = "passed", ""
        busy = self.busy.busy.get(item.nodeid) if self.busy and status != "passed" else None
        if busy is not None:  # the host's fault, not the submission's: an error (hidden/busy.py)
            status, message = "error", busy
        elif self.busy and status != "passed" and item.nodeid in self.busy.idle:
            message = f"{message} ({self.busy.idle[item.nodeid]})"
        return TestResult(
            name=item.name,
            grade_id=grade_id,
            score=points if status == "passed" else 0.0,
            max_score=points,
            status=status,
            output=message,
            visibility=visibility,
            duration=elapsed,
            host_busy=busy is not None,
        )

"""A busy grading host, as the hidden tests' budgets see it (the rule: introdl/grading/kernel/cpu.py).

`BusyWatch` is made when a submission's grading starts (its window for the lab's grading limit)
and handed to the hidden-test plugin, which asks it at three moments:

- a test starts: its window begins (the kernel's CPU and the grader thread's own CPU);
- its budget runs out, or the grading limit cuts it: the meter judges that window (a cut test:
  the whole grading's window against `Limits.grading_timeout`);
- it ends: a test that raised `HostTooSlow`, or during which any wall-clock limit was judged a busy
  host's (a door call's timeout, even one the test caught and turned into a failure), is an ERROR
  with the busy-host words, never a failure, unless it passed.

On a retry (`Meter.retry`), a test whose limit ran out while the sandbox had CPU to spare and did
not use it keeps its failure, with words saying the code waited without computing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from introdl.grading.hidden.marks import HostTooSlow
from introdl.grading.kernel.cpu import Mark, Meter


@dataclass
class _Window:
    mark: Mark
    grader_cpu: float  # time.thread_time() of the grader's thread at the start
    busy_before: int  # busy judgements of the meter before the test


@dataclass
class BusyWatch:
    """The busy-host verdicts of one hidden-test run (see the module docstring)."""

    meter: Meter
    grading_limit: float  # seconds: the lab's grading limit, whose window starts now
    grading: _Window = field(init=False)
    tests: dict[str, _Window] = field(default_factory=dict)
    busy: dict[str, str] = field(default_factory=dict)  # test id -> words for the student
    idle: dict[str, str] = field(default_factory=dict)  # test id -> words (a retry's own fault)

    def __post_init__(self) -> None:
        self.grading = self._window()

    def _window(self) -> _Window:
        return _Window(self.meter.mark(), time.thread_time(), self.meter.busy_count())

    def start(self, nodeid: str) -> None:
        self.tests[nodeid] = self._window()

    def overrun(self, nodeid: str, budget: float, cut: bool) -> None:
        """The test's budget ran out (CUT: the grading limit cut it); judge its window once."""
        if nodeid in self.busy or nodeid in self.idle:
            return
        window = self.grading if cut or nodeid not in self.tests else self.tests[nodeid]
        limit = self.grading_limit if cut else budget
        judged = self.meter.judge(
            window.mark, limit, grader_cpu=time.thread_time() - window.grader_cpu
        )
        if judged.kind == "busy":
            self.busy[nodeid] = judged.words
        elif judged.kind == "idle":
            self.idle[nodeid] = judged.words

    def ended(self, nodeid: str, exc: BaseException | None, message: str) -> None:
        """The test's call ended, raising EXC (or None) whose student-facing words are MESSAGE."""
        if isinstance(exc, HostTooSlow):
            self.busy.setdefault(nodeid, message)
        window = self.tests.get(nodeid)
        if window is not None and self.meter.busy_count() > window.busy_before:
            last = [j for j in self.meter.judged if j.kind == "busy"][-1]
            self.busy.setdefault(nodeid, last.words)

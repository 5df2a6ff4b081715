"""Telling a busy grading host from slow student code when a wall-clock limit fires.

Every wall-clock limit of the engine (a cell's and the notebook's timeouts, a door call's timeout,
a hidden test's budget, the lab's grading limit) asks `Meter.judge` before it gives its verdict.
The meter reads how much CPU the sandbox's processes used in the limit's window:

- CPU: utime + stime of every process of the sandbox (all their threads; children too: the
  launcher's whole process tree, walked through ``/proc/<pid>/task/<tid>/children``, plus the
  cutime + cstime of children already reaped). Under bwrap's pid namespace every process of the
  sandbox descends from the launcher, so nothing a submission starts escapes the count. A walk is a
  few dozen small /proc reads (about a millisecond for a TensorFlow kernel), once per window start
  and once when a limit fires.
- run-queue wait: field 2 of ``/proc/<pid>/task/<tid>/schedstat`` (time a thread was runnable
  but not running), summed over the threads alive at both ends of the window.

The rule (docs/grading.md, "Busy host or slow code"):

- CPU >= BUSY_SHARE of the window's wall seconds: the submission computed for at least half of the
  limit; its slowness is its own: today's verdict (timeout, failed) and today's words.
- Less, on a first grading: the host did not let it compute; the verdict is an ERROR, 0 points for
  now, "the grading machine was too busy", and the submission is graded again (batch.py).
- Less, on that second grading (`Meter.retry`): when its threads waited in the run queue for at
  least WAIT_SHARE of the window and at least as long as they ran, the host is still too busy (an
  error again); otherwise the CPU was there and it did not use it (sleeping, blocked on I/O): the
  verdict is today's, with words saying it waited without computing.

The root is the sandbox's (`Sandbox.cpu_root`, asked once the kernel answers): bwrap's launcher;
docker's container init as this host sees it (``State.Pid``), when ``/proc/<pid>/cgroup`` names the
container, i.e. on a local engine. A backend whose processes this host cannot see (an engine on
another host) has no meter (`root` None): its limits keep today's verdicts.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Literal

# CPU seconds per wall second of a limit from which a submission's slowness is its own. A busy loop
# on an idle core uses ~1.0, TensorFlow several; a frozen or sleeping kernel ~0.0 (docs/grading.md).
BUSY_SHARE = 0.5
# Run-queue seconds per wall second from which, on a retry, the host counts as still too busy.
WAIT_SHARE = 0.25
# What a busy-host verdict promises; the check service says "ask for a check again" instead.
AGAIN = "This is not a verdict on your code; it will be graded again."
TICK = os.sysconf("SC_CLK_TCK")

Kind = Literal["student", "busy", "idle"]


@dataclass(frozen=True)
class Mark:
    """Where a window starts: the wall clock, and the sandbox's CPU and run-queue seconds."""

    wall: float
    cpu: float | None  # None: this backend's processes cannot be measured here
    wait: float = 0.0


@dataclass(frozen=True)
class Judgement:
    """Why a wall-clock limit fired: the student's code (`student`), the host (`busy`), or a
    retry that had CPU to spare and did not use it (`idle`). `words` are for the student."""

    kind: Kind
    wall: float
    cpu: float | None
    wait: float
    words: str = ""


def tree(root: int) -> list[int]:
    """ROOT and every process below it (children of all threads), parents first."""
    pids, seen = [root], {root}
    for pid in pids:
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                with open(f"/proc/{pid}/task/{tid}/children") as fh:
                    kids = [int(k) for k in fh.read().split()]
            except (OSError, ValueError):
                continue
            for kid in kids:
                if kid not in seen:
                    seen.add(kid)
                    pids.append(kid)
    return pids


def usage(root: int) -> tuple[float, float]:
    """(CPU seconds, run-queue seconds) of the process tree under ROOT, as far as it is alive."""
    cpu = wait = 0.0
    for pid in tree(root):
        try:
            with open(f"/proc/{pid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            # after the name: state is fields[0]; utime, stime, cutime, cstime are 14-17 (1-based)
            cpu += sum(int(f) for f in fields[11:15]) / TICK
            tasks = os.listdir(f"/proc/{pid}/task")
        except (OSError, ValueError, IndexError):
            continue
        for tid in tasks:
            try:
                with open(f"/proc/{pid}/task/{tid}/schedstat") as fh:
                    wait += int(fh.read().split()[1]) / 1e9
            except (OSError, ValueError, IndexError):
                continue
    return cpu, wait


@dataclass
class Meter:
    """The CPU meter of one sandboxed kernel (`SandboxedKernel.meter`), and every judgement it
    gave (`judged`), so that a hidden test that caught a busy-host timeout is still an error."""

    root: int | None = None  # the launcher's pid on this host; None: cannot measure
    retry: bool = False  # this grading is the second chance of a busy-host error
    judged: list[Judgement] = field(default_factory=list)

    def mark(self) -> Mark:
        if self.root is None:
            return Mark(time.monotonic(), None)
        cpu, wait = usage(self.root)
        return Mark(time.monotonic(), cpu, wait)

    def busy_count(self) -> int:
        return sum(1 for j in self.judged if j.kind == "busy")

    def judge(self, since: Mark, limit: float, *, grader_cpu: float = 0.0) -> Judgement:
        """Why the limit of LIMIT wall seconds that started at SINCE fired (now).

        GRADER_CPU: CPU seconds the grader's own thread spent for the same limit (a hidden test's
        budget covers its own computing too)."""
        now = self.mark()
        wall = max(now.wall - since.wall, 1e-9)
        if now.cpu is None or since.cpu is None:
            judgement = Judgement("student", wall, None, 0.0)
        else:
            cpu = max(0.0, now.cpu - since.cpu) + grader_cpu
            wait = max(0.0, now.wait - since.wait)
            judgement = decide(wall, cpu, wait, limit, retry=self.retry)
        self.judged.append(judgement)
        return judgement


def decide(wall: float, cpu: float, wait: float, limit: float, *, retry: bool) -> Judgement:
    """The rule of the module docstring, on measured seconds."""
    if cpu >= BUSY_SHARE * wall:
        return Judgement("student", wall, cpu, wait)
    used = f"your code used only {cpu:.1f} CPU seconds of the {limit:g} seconds it was given"
    if retry and not (wait >= WAIT_SHARE * wall and wait >= cpu):
        words = (
            f"{used}, on a second try while the machine had CPU to spare: it waited without "
            "computing (sleeping, or blocked on input or output)"
        )
        return Judgement("idle", wall, cpu, wait, words)
    if wait >= WAIT_SHARE * wall:
        words = f"the grading machine was too busy: {used}. {AGAIN}"
    else:  # it did not even ask for the CPU: a frozen host, or code that sleeps (told on retry)
        words = (
            f"the grading machine was too busy, or your code waited without computing (sleeping, "
            f"or blocked on input or output): {used}. {AGAIN}"
        )
    return Judgement("busy", wall, cpu, wait, words)

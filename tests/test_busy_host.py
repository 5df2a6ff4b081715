"""A busy grading host is not slow student code: real kernels in bwrap, frozen with SIGSTOP.

A kernel whose process group is stopped is what a host that never schedules it looks like: its
wall-clock limits run out while it uses no CPU. Code that computes past a limit keeps today's
verdict; code that sleeps past one is an error the first time and a failure on the retry.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from nbformat.v4 import new_code_cell

from introdl.grading.batch import FINGERPRINT_FILE, grade_class
from introdl.grading.door.student import CallTimeout, Student
from introdl.grading.grade import GradeOptions
from introdl.grading.hidden.busy import BusyWatch
from introdl.grading.hidden.runner import run_hidden_tests
from introdl.grading.kernel import cpu
from introdl.grading.kernel.kernel import SandboxedKernel
from introdl.grading.record.results import Results, results_path
from introdl.grading.sandbox.limits import TEST_LIMITS
from introdl.grading.submission import find_submissions
from tests.corpus_course import LAB, answer, build_course, submit
from tests.sandboxed import needs_bwrap, sandboxed_kernel

pytestmark = needs_bwrap

LIMITS = dataclasses.replace(TEST_LIMITS, cell_timeout=2.0, call_timeout=2.0, interrupt_grace=1.0)
# A loop in the kernel and two child processes that spin too: more than half a core even on this
# shared 2-core machine at load 4 (one loop alone gets ~0.55 there; children count: cpu.py).
SPIN = """\
import subprocess, sys
children = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
try:
    while True:
        pass
finally:
    for child in children:
        child.kill()
"""


def kernel_group(kernel: SandboxedKernel) -> int:
    """The process group of the sandboxed ipykernel (bwrap --new-session puts it in its own)."""
    assert kernel.meter.root is not None
    for pid in cpu.tree(kernel.meter.root):
        if is_kernel(psutil.Process(pid)):
            return os.getpgid(pid)
    raise AssertionError("no ipykernel below the launcher")


def is_kernel(proc: psutil.Process) -> bool:
    """The kernel's own python, not the bwrap launchers whose argv ends in the same words."""
    return proc.cmdline()[1:3] == ["-m", "ipykernel_launcher"]


@contextlib.contextmanager
def frozen(group: int) -> Iterator[None]:
    os.killpg(group, signal.SIGSTOP)
    try:
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGCONT)


def kinds(kernel: SandboxedKernel) -> list[str]:
    return [e.kind for e in kernel.events]


def test_computing_past_a_cell_timeout_is_a_timeout_and_sleeping_is_busy_then_idle(
    tmp_path: Path,
) -> None:
    """Is a cell that computes past its timeout still a plain timeout, and one that sleeps past it
    a busy-host error the first time, but 'waited without computing' on the retry?"""
    with sandboxed_kernel(tmp_path, limits=LIMITS) as kernel:
        spun = kernel.execute(SPIN, timeout=LIMITS.cell_timeout, cell=0)
        assert spun.status == "timeout", spun
        assert spun.judgement is not None
        assert spun.judgement.kind == "student", spun.judgement
        assert "host_busy" not in kinds(kernel)
        slept = kernel.execute("import time; time.sleep(30)", timeout=2.0, cell=1)
        assert slept.status == "timeout"
        assert slept.judgement is not None
        assert slept.judgement.kind == "busy"
        assert "too busy, or your code waited without computing" in slept.judgement.words
        assert cpu.AGAIN in slept.judgement.words
        kernel.meter.retry = True
        again = kernel.execute("import time; time.sleep(30)", timeout=2.0, cell=2)
        assert again.judgement is not None
        assert again.judgement.kind == "idle", again.judgement
        assert "waited without computing" in again.judgement.words
        assert kinds(kernel).count("host_busy") == 1
        assert "waited_idle" in kinds(kernel)


def test_a_frozen_kernel_past_its_cell_timeout_is_a_busy_host(tmp_path: Path) -> None:
    """Does a kernel the host never schedules (SIGSTOP) get the busy-host error, not a fail?"""
    with sandboxed_kernel(tmp_path, limits=LIMITS) as kernel:
        with frozen(kernel_group(kernel)):
            result = kernel.execute("x = 1", timeout=LIMITS.cell_timeout, cell=0)
        assert result.status == "killed"  # a frozen kernel cannot answer the interrupt either
        assert result.judgement is not None
        assert result.judgement.kind == "busy"
        busy = [e for e in kernel.events if e.kind == "host_busy"]
        assert busy
        assert busy[0].cell == 0
        assert "your code used only 0.0 CPU seconds of the 2 seconds" in busy[0].detail


def test_door_calls_tell_a_frozen_kernel_from_a_spinning_one(tmp_path: Path) -> None:
    """Is a door call that spins past its timeout the student's, and one into a frozen kernel
    the host's?"""
    with sandboxed_kernel(tmp_path, limits=LIMITS) as kernel:
        student = Student(kernel)
        student.run("def spin():\n" + textwrap.indent(SPIN, "    "))
        with pytest.raises(CallTimeout):
            student.call("spin")
        assert kernel.meter.busy_count() == 0
        assert kernel.meter.judged[-1].kind == "student"
        with frozen(kernel_group(kernel)), pytest.raises(CallTimeout):
            student.call("spin", timeout=1.5)
        assert kernel.meter.busy_count() == 1
        assert "host_busy" in kinds(kernel)


SUITE = """
import os, signal, time
import pytest

@pytest.mark.grade("t", points=1)
@pytest.mark.budget(seconds=2)
def test_spins_past_its_budget(student):
    student.call("spin", timeout=30)

@pytest.mark.grade("t", points=1)
@pytest.mark.budget(seconds=2)
def test_frozen_past_its_budget(student):
    group = int(os.environ["BUSY_TEST_GROUP"])
    os.killpg(group, signal.SIGSTOP)
    try:
        student.call("spin", timeout=30)
    finally:
        os.killpg(group, signal.SIGCONT)

@pytest.mark.grade("t", points=1)
@pytest.mark.budget(seconds=10)
def test_catches_a_frozen_call_and_fails(student):
    group = int(os.environ["BUSY_TEST_GROUP"])
    os.killpg(group, signal.SIGSTOP)
    try:
        student.call("spin", timeout=1.5)
    except Exception as err:
        pytest.fail(f"too slow: {err}")
    finally:
        os.killpg(group, signal.SIGCONT)
"""


def test_hidden_test_budgets_tell_a_frozen_kernel_from_a_spinning_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Is a hidden test that spins past its budget failed, one whose kernel is frozen an error,
    and one that turns a frozen call's timeout into its own failure still an error?"""
    suite = tmp_path / "grader_tests" / "lab_x"
    suite.mkdir(parents=True)
    (suite / "test_x.py").write_text(SUITE)
    with sandboxed_kernel(tmp_path, limits=LIMITS) as kernel:
        student = Student(kernel)
        student.run("def spin():\n" + textwrap.indent(SPIN, "    "))
        monkeypatch.setenv("BUSY_TEST_GROUP", str(kernel_group(kernel)))
        watch = BusyWatch(kernel.meter, grading_limit=600)
        outcomes = {
            t.name: t for t in run_hidden_tests(suite, student, seed=0, points={"t": 3}, busy=watch)
        }
    spun = outcomes["test_spins_past_its_budget"]
    assert (spun.status, spun.host_busy) == ("failed", False), spun
    assert "time budget of 2 s" in spun.output
    for name in ("test_frozen_past_its_budget", "test_catches_a_frozen_call_and_fails"):
        test = outcomes[name]
        assert (test.status, test.score, test.host_busy) == ("error", 0.0, True), test
        assert "grading machine was too busy" in test.output


def test_a_batch_grades_a_busy_host_error_again_and_a_sleeper_fails_on_the_retry(
    tmp_path: Path,
) -> None:
    """Does a batch grade a submission frozen on its first grading again at its end, with full
    marks, while one that sleeps past its cell timeout fails on that retry, with words saying so?"""
    course = tmp_path / "course"
    release = build_course(course)
    alice = answer(release)  # correct; a cell of hers leaves a file for the freezer below
    alice.cells.insert(1, new_code_cell('open("freeze-me", "w").close()\nsum(range(10**7))'))
    submit(course, "alice", alice)
    bob = answer(release)  # sleeps in the cell that defines his answer: add is never defined
    for cell in bob.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "add_answer":
            cell.source = "import time\ntime.sleep(30)\n" + cell.source
    submit(course, "bob", bob)
    stop = threading.Event()
    froze: list[int] = []
    freezer = threading.Thread(target=freeze_once, args=(stop, froze), daemon=True)
    freezer.start()
    options = GradeOptions(backend="bwrap", seed=3, limits=LIMITS)
    try:
        rows = grade_class(course, find_submissions(course, LAB), options)
    finally:
        stop.set()
        freezer.join()
    assert froze, "the freezer never saw alice's kernel"
    by = {row.student: row for row in rows}
    assert (by["alice"].status, by["alice"].score) == ("graded", by["alice"].max_score), by
    assert (by["bob"].status, by["bob"].score) == ("graded", 0.0), by
    bobs = Results.read(results_path(course, "bob", LAB))
    assert bobs.host_busy == ()
    assert {t.status for t in bobs.tests} == {"failed"}, bobs.tests
    assert any(e.kind == "waited_idle" for e in bobs.events), bobs.events
    alice_results = Results.read(results_path(course, "alice", LAB))
    assert alice_results.host_busy == ()
    assert {t.status for t in alice_results.tests} == {"passed"}
    stamp = (results_path(course, "alice", LAB).parent / FINGERPRINT_FILE).read_text()
    assert "host-busy" not in stamp


def freeze_once(stop: threading.Event, froze: list[int]) -> None:
    """Stop the first sandboxed kernel below this process that writes freeze-me, for 4 s."""
    me = psutil.Process()
    while not stop.is_set() and not froze:
        for proc in me.children(recursive=True):
            with contextlib.suppress(psutil.Error, OSError):
                if is_kernel(proc) and os.path.exists(f"/proc/{proc.pid}/cwd/freeze-me"):
                    froze.append(proc.pid)
                    with frozen(os.getpgid(proc.pid)):
                        time.sleep(4)
                    return
        time.sleep(0.05)

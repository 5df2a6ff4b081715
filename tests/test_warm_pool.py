"""Warm sandboxes (introdl/grading/pool.py): one kernel per submission, nothing carried over.

The course is the TensorFlow-free corpus course (tests/corpus_course.py), so a submission grades
in about a second; every sandbox is real bubblewrap.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import nbformat
import psutil
import pytest
from nbformat import NotebookNode
from nbformat.v4 import new_code_cell

from introdl.grading.batch import grade_class
from introdl.grading.commands.grade import warm_size
from introdl.grading.errors import BadInput
from introdl.grading.grade import GradeOptions, grade_submission, warm_pool
from introdl.grading.kernel.launch import sweep_stale
from introdl.grading.pool import KernelPool, PoolTimeout, WarmKernel
from introdl.grading.sandbox import processes_of_uid
from introdl.grading.sandbox.limits import TEST_LIMITS, sandbox_uid
from introdl.grading.sandbox.slots import claim
from introdl.grading.sandbox.working_copy import is_quota_mount
from introdl.grading.submission import find_submissions
from tests.corpus_course import LAB, answer, build_course, submit
from tests.sandboxed import ROOT, needs_bwrap, test_slot

pytestmark = needs_bwrap

MARK = "a-was-here-7c1e"  # every trace submission A leaves carries it

# Submission A leaves files, environment, patched and invented modules, and background processes.
LEAVE_TRACES = textwrap.dedent(
    f"""\
    import builtins, os, subprocess, sys, types, numpy
    for where in ('/submission', '/tmp', os.environ['HOME'], '/dev/shm'):
        with open(os.path.join(where, '{MARK}.txt'), 'w') as f:
            f.write('{MARK}')
    os.makedirs(os.path.expanduser('~/.config/{MARK}'), exist_ok=True)
    os.environ['{MARK.upper().replace("-", "_")}'] = '1'
    os.putenv('PYTHONSTARTUP', '/tmp/{MARK}.txt')
    numpy.allclose = lambda *a, **k: True
    numpy.{MARK.replace("-", "_")} = True
    builtins.{MARK.replace("-", "_")} = True
    sys.modules['{MARK.replace("-", "_")}'] = types.ModuleType('{MARK.replace("-", "_")}')
    sys.path.insert(0, '/tmp/{MARK}')
    daemon = (
        "import os, time\\n"
        "if os.fork(): os._exit(0)\\n"
        "os.setsid()\\n"
        "if os.fork(): os._exit(0)\\n"
        "while True:\\n"
        "    for where in ('/submission', '/tmp'):\\n"
        "        try: open(os.path.join(where, '{MARK}-daemon.txt'), 'w').write('alive')\\n"
        "        except OSError: pass\\n"
        "    time.sleep(0.05)\\n"
    )
    subprocess.Popen([sys.executable, '-c', daemon, '{MARK}-daemon'])
    subprocess.Popen(['setsid', 'nohup', 'sleep', '600', '{MARK}'], start_new_session=True,
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    subprocess.Popen('nohup sleep 601 {MARK} >/dev/null 2>&1 &', shell=True)
    import time; time.sleep(0.5)
    print('left traces')
    """
)

# Submission B looks for every one of them; its `add` is right only when it finds none, and it
# prints what it saw. Its first cell notes whether numpy was imported before any of its code ran:
# the sign that it was handed a warm kernel.
FIRST_CELL = "import sys as _sys\nWARM = 'numpy' in _sys.modules\ndel _sys"
LOOK_FOR_TRACES = textwrap.dedent(
    f"""\
    import builtins, glob, json, os, sys, time, numpy
    found = {{}}
    found['files'] = sorted(
        p for where in ('/submission', '/tmp', os.environ['HOME'], '/dev/shm', '/tmp/.config')
        for p in glob.glob(os.path.join(where, '*{MARK}*'))
    )
    found['submission'] = sorted(os.listdir('/submission'))
    found['env'] = sorted(k for k, v in os.environ.items() if 'A_WAS_HERE' in k or '{MARK}' in v)
    found['modules'] = [
        what for what, seen in [
            ('numpy attribute', hasattr(numpy, '{MARK.replace("-", "_")}')),
            ('numpy.allclose patched', numpy.allclose(1, 2)),
            ('builtins attribute', hasattr(builtins, '{MARK.replace("-", "_")}')),
            ('sys.modules entry', '{MARK.replace("-", "_")}' in sys.modules),
            ('sys.path entry', any('{MARK}' in p for p in sys.path)),
        ] if seen
    ]
    found['processes'] = []
    for pid in os.listdir('/proc'):
        try:
            cmd = open(f'/proc/{{pid}}/cmdline', 'rb').read().replace(b'\\0', b' ').decode()
        except OSError:
            continue
        if '{MARK}' in cmd:
            found['processes'].append(cmd)
    time.sleep(0.3)  # a daemon of A that were still alive would write again by now
    found['late files'] = sorted(glob.glob('/submission/*daemon*') + glob.glob('/tmp/*daemon*'))
    clean = not any(v for k, v in found.items() if k != 'submission')
    print(json.dumps({{'warm': WARM, 'clean': clean, **found}}))
    def add(a, b):
        return a + b if clean else a - b
    """
)


def trace_class(course: Path, release: NotebookNode) -> None:
    leaver = answer(release)
    leaver.cells.append(new_code_cell(LEAVE_TRACES))
    submit(course, "a_leaves_traces", leaver)
    looker = answer(release)
    looker.cells.insert(0, new_code_cell(FIRST_CELL))
    looker.cells.append(new_code_cell(LOOK_FOR_TRACES))
    submit(course, "b_looks_for_traces", looker)


def report(course: Path, student: str) -> dict[str, object]:
    """What submission B printed in its last cell."""
    nb = nbformat.read(course / "autograded" / student / LAB / f"{LAB}.ipynb", as_version=4)
    text = "".join(o.get("text", "") for o in nb.cells[-1].get("outputs", []))
    assert text.strip(), f"B printed nothing: {nb.cells[-1].get('outputs')}"
    found: dict[str, object] = json.loads(text.strip().splitlines()[-1])
    return found


@pytest.fixture(scope="module")
def course(tmp_path_factory: pytest.TempPathFactory) -> Path:
    course = tmp_path_factory.mktemp("warm") / "course"
    trace_class(course, build_course(course))
    return course


def marked_processes() -> list[str]:
    """Live processes on the host whose command line carries A's mark."""
    cmds = (" ".join(p.info["cmdline"] or []) for p in psutil.process_iter(["cmdline"]))
    return [cmd for cmd in cmds if MARK in cmd]


@pytest.mark.parametrize("warm", [1, 0], ids=["warm", "cold"])
def test_a_submission_sees_nothing_of_the_one_graded_before_it(course: Path, warm: int) -> None:
    """Graded right after a submission that leaves files, environment, patched modules and
    background processes behind, does the next one (same batch, same pool) see none of them?"""
    options = GradeOptions(backend="bwrap", seed=7, limits=TEST_LIMITS)
    rows = grade_class(
        course, find_submissions(course, LAB), options, workers=1, warm=warm, force=True
    )
    assert [(r.student, r.status) for r in rows] == [
        ("a_leaves_traces", "graded"),
        ("b_looks_for_traces", "graded"),
    ]
    a = report_of_a(course)
    assert "left traces" in a
    found = report(course, "b_looks_for_traces")
    assert found["warm"] is bool(warm)  # the pool really served it (or really did not)
    assert found["submission"] == [f"{LAB}.ipynb"]
    assert found["clean"], found
    assert rows[1].score == 2
    assert marked_processes() == []  # nothing of A is left running on the host either


def report_of_a(course: Path) -> str:
    nb = nbformat.read(
        course / "autograded" / "a_leaves_traces" / LAB / f"{LAB}.ipynb", as_version=4
    )
    return "".join(o.get("text", "") for o in nb.cells[-1].get("outputs", []))


@pytest.fixture
def slot() -> int:
    return test_slot()


def test_warm_and_cold_results_are_alike(course: Path, slot: int) -> None:
    """Does a warm kernel give the same kind of results as a cold one (cells, execution counts,
    working directory, environment), with sandbox_start the wait for the kernel?"""
    sub = next(s for s in find_submissions(course, LAB) if s.student == "b_looks_for_traces")
    options = GradeOptions(backend="bwrap", seed=3, limits=TEST_LIMITS)
    cold = grade_submission(course, sub, options, slot=slot)
    with warm_pool(course, options, size=1, labs=(LAB,), slot=slot) as pool:
        warm = grade_submission(course, sub, options, slot=slot, pool=pool)
    assert cold.results.score == warm.results.score == 2
    assert [(c.index, c.status) for c in cold.results.cells] == [
        (c.index, c.status) for c in warm.results.cells
    ]
    nbs = [nbformat.reads(g.notebook_json or "", as_version=4) for g in (cold, warm)]
    counts = [[c.execution_count for c in nb.cells if c.cell_type == "code"] for nb in nbs]
    assert counts[0] == counts[1] == list(range(1, len(counts[0]) + 1))
    assert warm.results.sandbox.workdir_quota == cold.results.sandbox.workdir_quota
    assert warm.results.phases.sandbox_start >= 0


def test_closing_a_pool_leaves_no_process_mount_or_lock(course: Path, slot: int) -> None:
    """When a pool closes with kernels ready and one still warming, is everything gone?"""
    options = GradeOptions(backend="bwrap", limits=TEST_LIMITS)
    with warm_pool(course, options, size=2, labs=(LAB,), slot=slot) as pool:
        deadline = time.monotonic() + 60
        while pool.started < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        warm = pool.take(LAB)
        kernels = [warm.kernel]
        paths = [warm.path]
        warm.destroy()
        time.sleep(0.3)  # the refill is starting
    assert pool.started >= 2
    for kernel, path in zip(kernels, paths, strict=True):
        assert processes_of_uid(kernel.sandbox.spec.uid) == []
        assert not path.exists()
        assert not is_quota_mount(path)
        assert not kernel.runtime_dir.exists()
    for offset in range(4):  # every slot the pool used is free again
        lock = claim(slot + offset)
        lock.release()
        assert lock.slot == slot + offset
    assert all(processes_of_uid(sandbox_uid(slot + i)) == [] for i in range(4))


def test_sweep_cleans_up_after_a_killed_pool(course: Path, tmp_path: Path, slot: int) -> None:
    """A grader holding warm kernels is killed (SIGKILL): do its sandboxes die with it, and does
    sweep_stale remove its working copies, state directories and cgroups?"""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    script = textwrap.dedent(
        f"""\
        import os, signal, sys, time
        from pathlib import Path
        from introdl.grading.grade import GradeOptions, warm_pool
        from introdl.grading.sandbox.limits import TEST_LIMITS
        pool = warm_pool(Path({str(course)!r}), GradeOptions(backend="bwrap", limits=TEST_LIMITS),
                         size=2, labs=({LAB!r},), slot={slot})
        while len(pool._ready) < 2:
            time.sleep(0.1)
        for w in pool._ready:
            print(w.kernel.sandbox.spec.uid, w.kernel.runtime_dir, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    env = {**os.environ, "TMPDIR": str(tmp), "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == -9, done.stderr
    held = [line.split() for line in done.stdout.splitlines()]
    assert len(held) == 2
    deadline = time.monotonic() + 10
    while any(processes_of_uid(int(uid)) for uid, _ in held) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [processes_of_uid(int(uid)) for uid, _ in held] == [[], []]
    left = sorted(tmp.glob("introdl-*")) + [Path(d) for _, d in held]
    assert len(left) >= 4  # two working copies, two state dirs, two runtime dirs
    assert all(p.exists() for p in left)
    old = time.time() - 3600
    for path in left:
        os.utime(path, (old, old))
    removed = sweep_stale(tmp) + sweep_stale(Path("/tmp"))
    for path in left:
        assert not path.exists(), (path, removed)
        assert not is_quota_mount(path)


def test_a_pool_warming_for_another_lab_makes_room_for_the_lab_asked_for(
    course: Path, slot: int
) -> None:
    """A long-lived service's pool warmed for one lab: does take(other lab) destroy the kernel
    warmed for the first and hand out one started for the lab asked for?"""
    options = GradeOptions(backend="bwrap", limits=TEST_LIMITS)
    with warm_pool(course, options, size=1, labs=("lab_not_here",), slot=slot) as pool:
        deadline = time.monotonic() + 60
        while not pool._ready and time.monotonic() < deadline:
            time.sleep(0.1)
        stale = pool._ready[0]
        with pool.take(LAB) as warm:
            assert warm.lab == LAB
            assert not stale.path.exists()
            assert stale.kernel.dead


def test_a_pool_that_cannot_start_a_kernel_says_why(course: Path, slot: int) -> None:
    """Is a failure to start a warm kernel raised to the taker (not a hang)?"""
    with (
        KernelPool(course, size=1, labs=(LAB,), backend="no-such-backend", slot=slot) as pool,
        pytest.raises(BadInput, match="no-such-backend"),
    ):
        pool.take(LAB)


def test_a_pool_built_for_other_options_is_refused(course: Path, slot: int) -> None:
    """Would grading through a pool built with other limits grade differently? It is refused."""
    sub = find_submissions(course, LAB)[0]
    with warm_pool(course, GradeOptions(backend="bwrap"), size=1, slot=slot) as pool:
        options = GradeOptions(backend="bwrap", limits=TEST_LIMITS)
        with pytest.raises(ValueError, match="other grading options"):
            grade_submission(course, sub, options, slot=slot, pool=pool)


def test_the_warm_knob(monkeypatch: pytest.MonkeyPatch) -> None:
    """--warm N, else $INTRODL_WARM, else 1; a bad value is bad input naming the knob."""
    monkeypatch.delenv("INTRODL_WARM", raising=False)
    assert warm_size(None) == 1
    assert warm_size(3) == 3
    monkeypatch.setenv("INTRODL_WARM", "0")
    assert warm_size(None) == 0
    monkeypatch.setenv("INTRODL_WARM", "two")
    with pytest.raises(BadInput, match="INTRODL_WARM"):
        warm_size(None)
    with pytest.raises(BadInput, match="--warm -1"):
        warm_size(-1)


def test_a_batch_pool_starts_no_kernel_past_its_last_submission(course: Path, slot: int) -> None:
    """A pool for a batch of two (limit=2): after both are taken, does it start no third kernel?"""
    options = GradeOptions(backend="bwrap", limits=TEST_LIMITS)
    with warm_pool(course, options, size=1, labs=(LAB,), slot=slot, limit=2) as pool:
        for _ in range(2):
            with pool.take(LAB):
                pass
        time.sleep(2)
        assert pool.started == 2
        assert pool._ready == []
        assert pool._starting == []


OTHER = "other_lab"  # a second lab for the pool: no release, no hidden suite, nothing to import
TAKE_BOUND = 45.0  # seconds one take may wait here (two kernel starts take ~2 s)


def take_in_thread(pool: KernelPool, lab: str, bound: float = TAKE_BOUND) -> tuple[str, float]:
    """Take a kernel of LAB from POOL in a thread, waiting at most BOUND seconds for it (so a
    starved take fails the test instead of hanging it); destroy it; (its lab, seconds waited)."""
    got: list[object] = []

    def run() -> None:
        try:
            got.append(pool.take(lab))
        except BaseException as err:  # reported below
            got.append(err)

    started = time.monotonic()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(bound)
    waited = time.monotonic() - started
    if thread.is_alive():
        pool.close()  # ends the starved take, so the thread does not outlive the test
        thread.join(30)
        raise AssertionError(f"take({lab!r}) waited {waited:.0f} s and was still waiting")
    (warm,) = got
    if isinstance(warm, BaseException):
        raise warm
    assert isinstance(warm, WarmKernel)
    warm.destroy()
    return warm.lab, waited


def test_a_pool_of_one_serves_labs_in_turn_without_waiting_for_ever(
    course: Path, slot: int
) -> None:
    """A service's pool of one kernel asked for lab A, then B, then A, then B: the warmer
    re-fills the only place for the lab asked last while the next take already asks for another
    (issue 21: check my work froze). Is every kernel handed out, of the lab asked for, in time?"""
    options = GradeOptions(backend="bwrap", limits=TEST_LIMITS)
    with warm_pool(course, options, size=1, labs=(LAB,), slot=slot) as pool:
        served = [take_in_thread(pool, lab) for lab in (LAB, OTHER, LAB, OTHER, LAB)]
    assert [lab for lab, _ in served] == [LAB, OTHER, LAB, OTHER, LAB]
    assert max(waited for _, waited in served) < TAKE_BOUND


def test_two_takers_of_two_labs_share_a_pool_without_starving(course: Path, slot: int) -> None:
    """Two graders (threads) take from one pool at once, one always lab A, the other always
    lab B: does each get kernels of its own lab, every time, in time?"""
    options = GradeOptions(backend="bwrap", limits=TEST_LIMITS)
    served: dict[str, list[tuple[str, float]]] = {LAB: [], OTHER: []}
    errors: list[BaseException] = []

    def taker(lab: str) -> None:
        try:
            for _ in range(3):
                served[lab].append(take_in_thread(pool, lab))
        except BaseException as err:
            errors.append(err)

    with warm_pool(course, options, size=1, labs=(LAB,), slot=slot) as pool:
        threads = [threading.Thread(target=taker, args=(lab,)) for lab in (LAB, OTHER)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(6 * TAKE_BOUND)
    assert errors == []
    assert [lab for lab, _ in served[LAB]] == [LAB] * 3
    assert [lab for lab, _ in served[OTHER]] == [OTHER] * 3


def test_a_take_that_no_kernel_can_serve_ends_in_time_naming_the_lab(
    course: Path, slot: int
) -> None:
    """A batch pool whose one kernel is spent: does another take end at its deadline with an
    error that names the lab and what to do, instead of waiting for ever?"""
    options = GradeOptions(backend="bwrap", limits=TEST_LIMITS)
    with warm_pool(course, options, size=1, labs=(LAB,), slot=slot, limit=1) as pool:
        with pool.take(LAB):
            pass
        started = time.monotonic()
        with pytest.raises(PoolTimeout, match=rf"no warm kernel for {LAB} was ready within 2 s"):
            pool.take(LAB, timeout=2.0)
        assert time.monotonic() - started < 10

"""Warm sandboxes: sandboxed kernels started ahead of need, each used for ONE submission.

A `KernelPool` keeps up to `size` kernels ready. Each is a fresh sandbox over an EMPTY working
copy (bound at /submission, the kernel's working directory, exactly as in the cold path), with
the heavy imports of its lab already done (the modules the lab's release notebook imports:
numpy, tensorflow, keras, the lab's helpers) and its data sets' checksums checked (the notebook's
first `fetch` of each then costs a stat). Nothing of any submission is in it yet.

`take(lab)` hands one out as a `WarmKernel`; `bind` then copies ONE submission's files into its
working copy, and from there grading goes on as in the cold path. On leaving the `with` block the
kernel, its sandbox, its working copy and its slot are destroyed: a warm kernel is never reused,
so nothing a submission leaves (files, environment, patched modules, background processes) can
reach the next one. A background thread starts the next kernel while the current one grades.

Example (what `grade.py:grade_submission` does with `pool=`)::

    with KernelPool(root, size=1, env={"INTRODL_BUDGET": "smoke"}) as pool:
        for sub in submissions:
            with pool.take(sub.lab) as warm:      # waits only if no kernel is ready yet
                warm.bind(sub, notebook)          # the submission's files enter the sandbox
                run_notebook(warm.kernel, warm.path / sub.notebook.name)

`take` may be called from several threads at once (a service grading several requests): each
caller gets its own kernel. The pool holds at most `size` kernels that are starting or ready (the
ones handed out are their takers'); each holds a machine-wide slot (sandbox/slots.py) while it
waits. The warmer serves the takers waiting, oldest first, whatever their labs; when no one waits
it warms for the lab asked for last. A ready kernel of a lab no waiting taker wants is destroyed to
make room, so a take waits for at most two starts (one already under way, then its own), and
every take has a deadline (`PoolTimeout`, naming the lab): nothing on a grading's path waits for
ever on the pool. `close` (the end of the `with`, an exception, Ctrl-C) destroys every kernel it
holds and leaves no process, mount or lock; a pool killed outright leaves what
`launch.sweep_stale` removes, like a killed cold grader.
"""

from __future__ import annotations

import ast
import contextlib
import threading
import time
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from introdl.grading.kernel.kernel import SandboxedKernel
from introdl.grading.kernel.launch import start_kernel
from introdl.grading.sandbox import chown_tree, gpu_count
from introdl.grading.sandbox.limits import DEFAULT_LIMITS, Limits, lab_limits
from introdl.grading.sandbox.public_data import public_data_dir, sandbox_datasets
from introdl.grading.sandbox.slots import claim
from introdl.grading.sandbox.working_copy import WorkingCopy, working_copy
from introdl.grading.submission import Submission, prepare_workdir

# Run silently before binding: no output, no history (the student's first cell is still In[1]),
# no name left in the user namespace, the environment left as it was. A module that fails to
# import, or a data set that fails its check (`is_cached` never fetches), is left to the
# notebook. TensorFlow's C++ log level is read once, at its first log line (during import): it
# is set quiet for the import, as every lab's first cell does before its own.
# Then a full garbage-collector pass over what the imports made, and `gc.freeze` (later passes
# skip those objects): otherwise that pass fell in the student's notebook (0.2-0.3 s in
# lab1_music's cell 4). It changes when passes run, never what the code computes.
WARM_CODE = """\
def _introdl_warm(names, datasets):
    import importlib, os
    before = os.environ.get("TF_CPP_MIN_LOG_LEVEL")
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    try:
        for name in names:
            try:
                importlib.import_module(name)
            except BaseException:
                pass
        for name in datasets:
            try:
                importlib.import_module("introdl.data").is_cached(name)
            except BaseException:
                pass
    finally:
        if before is None:
            del os.environ["TF_CPP_MIN_LOG_LEVEL"]
        else:
            os.environ["TF_CPP_MIN_LOG_LEVEL"] = before
    import gc
    gc.collect()
    gc.freeze()
_introdl_warm({names!r}, {datasets!r})
del _introdl_warm
"""
# Run at bind time: the empty /submission was listed by the import system during warm-up.
BIND_CODE = "__import__('importlib').invalidate_caches()"
WARM_TIMEOUT = 120.0  # seconds for the warm imports (TensorFlow takes ~4 s on a quiet machine)


def lab_imports(root: Path, lab: str) -> tuple[str, ...]:
    """The modules the lab's release notebook imports at the top level of its code cells."""
    path = root / "release" / lab / f"{lab}.ipynb"
    try:
        nb = nbformat.read(path, as_version=4)
    except (OSError, ValueError):
        return ()
    names: list[str] = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:  # IPython magics
            continue
        for node in tree.body:
            if isinstance(node, ast.Import):
                names += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.append(node.module)
    return tuple(dict.fromkeys(names))


class WarmKernel:
    """A kernel in a fresh sandbox over an empty working copy, for one submission of `lab`."""

    def __init__(
        self, kernel: SandboxedKernel, copy: WorkingCopy, lab: str, stack: contextlib.ExitStack
    ) -> None:
        self.kernel = kernel
        self.copy = copy
        self.path = copy.path  # the working copy on the host (/submission inside)
        self.lab = lab
        self.ready_at = time.monotonic()
        self.bound = False
        self._stack = stack

    def bind(self, submission: Submission, nb: NotebookNode) -> list[str]:
        """Copy SUBMISSION's files (NB as its notebook) in; returns notes as prepare_workdir."""
        if self.bound:
            raise RuntimeError("a warm kernel grades exactly one submission")
        self.bound = True
        notes = prepare_workdir(submission, nb, self.path, quota=self.copy.quota)
        refused = chown_tree(self.path, self.kernel.sandbox.spec.uid)
        if refused:
            notes.append(f"left {len(refused)} hard-linked file(s) owned by the grader")
        self.kernel.execute(BIND_CODE, timeout=30.0, silent=True, store_history=False)
        return notes

    def destroy(self) -> None:
        """Kill the kernel and its sandbox, unmount and remove the working copy, free the slot."""
        self._stack.close()

    def __enter__(self) -> WarmKernel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.destroy()


class PoolTimeout(TimeoutError):
    """No warm kernel of the lab asked for came in time (the message names the lab and why)."""


class KernelPool:
    """Up to `size` warm kernels, each for exactly one submission (see the module docstring)."""

    def __init__(
        self,
        root: Path,
        *,
        size: int = 1,
        labs: tuple[str, ...] = (),
        backend: str = "bwrap",
        limits: Limits = DEFAULT_LIMITS,
        env: Mapping[str, str] | None = None,
        image: str | None = None,
        gpus: int | None = None,
        slot: int = 0,
        limit: int | None = None,
        take_timeout: float | None = None,
        datadir: Path | None = None,
    ) -> None:
        if size < 1:
            raise ValueError("a kernel pool needs size >= 1 (no pool at all: pool=None)")
        self.root = root
        self.size = size
        self.backend = backend
        self.limits = limits
        self.env = dict(env or {})
        self.image = image
        self.gpus = gpu_count(gpus)  # the docker backend's: None none, -1 all, N that many
        self.slot = slot
        self.limit = limit  # kernels to start at most (a batch of N needs N); None: no end
        self.datadir = datadir  # the sandboxes' /data (None: this machine's public data sets)
        # One start is bounded (the sandbox's start, then the warm imports); a taker may have to
        # wait for a start of another lab to end and be destroyed, then for its own: two starts.
        one_start = limits.startup_timeout + max(WARM_TIMEOUT, limits.startup_timeout)
        self.take_timeout = take_timeout if take_timeout is not None else 2 * one_start
        self.started = 0  # kernels started so far (for tests and benchmarks)
        self._launched = 0  # starts attempted
        self._lab: str | None = labs[0] if labs else None  # warmed for when no one waits
        self._ready: list[WarmKernel] = []
        self._starting: list[str] = []  # the labs of the kernels being started
        self._waiting: list[str] = []  # the labs of the takers waiting now, oldest first
        self._errors: dict[str, BaseException] = {}  # a failed start, for a taker of its lab
        self._warming: SandboxedKernel | None = None
        self._closed = False
        self._cond = threading.Condition()
        # The kernels' sandboxes die with the thread that started them (bwrap --die-with-parent
        # is PR_SET_PDEATHSIG, which follows the thread): one thread for the pool's whole life.
        self._thread = threading.Thread(target=self._warm_loop, name="introdl-pool", daemon=True)
        self._thread.start()

    # --- taking ------------------------------------------------------------------------------
    def take(self, lab: str, timeout: float | None = None) -> WarmKernel:
        """A warm kernel for LAB, bound to nothing yet; waits while one is being started, at most
        TIMEOUT seconds (default `take_timeout`), then raises PoolTimeout.

        A kernel of another lab never serves LAB, and never keeps LAB's kernel from starting:
        the warmer starts kernels for the takers waiting, oldest first, and destroys a ready
        kernel that no taker waits for to make room (issue 21: a take that waited while the
        warmer re-filled the pool's only place with the previous lab's kernel waited for ever).
        """
        timeout = self.take_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while True:
            warm = self._wait_for(lab, deadline, timeout)
            if warm.kernel.alive:
                return warm
            warm.destroy()  # died while waiting (the host's OOM killer): take another
            with self._cond:
                self._replace(1)

    def _wait_for(self, lab: str, deadline: float, timeout: float) -> WarmKernel:
        with self._cond:
            self._lab = lab  # the lab asked for last: warmed for next when no one waits
            self._waiting.append(lab)
            self._cond.notify_all()
            try:
                while True:
                    if self._closed:
                        raise RuntimeError("the kernel pool is closed")
                    err = self._errors.pop(lab, None)
                    if err is not None:
                        self._replace(1)  # the warmer tries again for the next taker
                        raise err
                    warm = next((w for w in self._ready if w.lab == lab), None)
                    if warm is not None:
                        self._ready.remove(warm)
                        return warm
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise PoolTimeout(
                            f"no warm kernel for {lab} was ready within {timeout:.0f} s "
                            f"(kernels starting: {', '.join(self._starting) or 'none'}; "
                            f"ready: {', '.join(w.lab for w in self._ready) or 'none'}); "
                            "the grading host may be overloaded: try again, or grade cold "
                            "(warm 0)"
                        )
                    self._cond.wait(remaining)
            finally:
                self._waiting.remove(lab)
                self._cond.notify_all()  # the warmer starts the next one

    def _replace(self, lost: int) -> None:
        """LOST kernels will serve no one: the warmer may start as many more (lock held)."""
        if self.limit is not None:
            self.limit += lost
        self._cond.notify_all()

    # --- warming -----------------------------------------------------------------------------
    def _plan(self) -> tuple[str | None, WarmKernel | None]:
        """What the warmer does next (lock held): the lab to start a kernel for (None: nothing
        to do now), and the ready kernel to destroy first to make room for it (or None)."""
        if self.limit is not None and self._launched >= self.limit:
            return None, None
        room = len(self._ready) + len(self._starting) < self.size
        # each waiting taker, oldest first, is covered by a ready or starting kernel of its lab
        supply = Counter(w.lab for w in self._ready) + Counter(self._starting)
        needed: str | None = None
        for lab in self._waiting:
            if supply[lab] > 0:
                supply[lab] -= 1
            elif lab not in self._errors:  # a failed start waits for its taker to hear of it
                needed = needed or lab
        if needed is None:
            idle = self._lab is not None and self._lab not in self._errors
            return (self._lab if idle and room else None), None
        if room:
            return needed, None
        # full: a ready kernel that no waiting taker will use makes room (the oldest first)
        wanted = Counter(self._waiting)
        for warm in self._ready:
            if wanted[warm.lab] > 0:
                wanted[warm.lab] -= 1
            else:
                self._ready.remove(warm)
                return needed, warm
        return None, None  # every place holds or starts a kernel a taker will use: wait

    def _warm_loop(self) -> None:
        while True:
            with self._cond:
                while True:
                    if self._closed:
                        return
                    lab, stale = self._plan()
                    if lab is not None:
                        break
                    self._cond.wait()
                self._starting.append(lab)
                self._launched += 1
            if stale is not None:
                stale.destroy()
            warm: WarmKernel | None = None
            error: BaseException | None = None
            try:
                warm = self._start(lab)
            except BaseException as err:
                error = err
            with self._cond:
                self._starting.remove(lab)
                self._warming = None
                if error is not None:
                    if lab in self._waiting:
                        self._errors[lab] = error  # the next taker of LAB raises it
                    else:  # warmed ahead for no one: try again when someone asks for LAB
                        if self._lab == lab:
                            self._lab = None
                        self._replace(1)
                elif warm is not None and not self._closed:
                    self._ready.append(warm)
                    warm = None
                self._cond.notify_all()
            if warm is not None:  # closed while it was starting
                warm.destroy()

    def _start(self, lab: str) -> WarmKernel:
        limits = lab_limits(self.root / "grader_tests" / lab, self.limits)
        stack = contextlib.ExitStack()
        try:
            lock = claim(self.slot)
            stack.callback(lock.release)  # idempotent: a started kernel releases it at shutdown
            copy = stack.enter_context(working_copy(lock.slot, limits))
            kernel = start_kernel(
                workdir=copy.path,
                datadir=self.datadir
                if self.datadir is not None
                else public_data_dir(self.root, lab),
                backend=self.backend,
                slot=lock.slot,
                limits=limits,
                env=self.env,
                image=self.image,
                gpus=self.gpus,
                slot_lock=lock,
            )
            stack.callback(kernel.shutdown)  # before the working copy is unmounted
            with self._cond:
                self._warming = kernel
                if self._closed:
                    raise RuntimeError("the kernel pool closed while a kernel was starting")
            self.started += 1
            names, datasets = lab_imports(self.root, lab), sandbox_datasets(self.root, lab)
            if names or datasets:
                done = kernel.execute(
                    WARM_CODE.format(names=list(names), datasets=list(datasets)),
                    timeout=max(WARM_TIMEOUT, limits.startup_timeout),
                    silent=True,
                    store_history=False,
                )
                if done.status != "ok":
                    raise RuntimeError(
                        f"a warm kernel for {lab} failed while importing {', '.join(names)}: "
                        f"{done.status} {done.ename or ''} {done.evalue or ''}\n"
                        f"{kernel.kernel_log()[-2000:]}"
                    )
            kernel.events.clear()
            return WarmKernel(kernel, copy, lab, stack)
        except BaseException:
            stack.close()
            raise

    # --- closing -----------------------------------------------------------------------------
    def close(self) -> None:
        """Destroy every kernel the pool holds and stop its thread. Idempotent."""
        with self._cond:
            self._closed = True
            ready, self._ready = self._ready, []
            warming = self._warming
            self._cond.notify_all()
        if warming is not None:
            warming.kill("the kernel pool was closed")  # ends its warm imports at once
        for warm in ready:
            warm.destroy()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=self.limits.startup_timeout + 30)

    def __enter__(self) -> KernelPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

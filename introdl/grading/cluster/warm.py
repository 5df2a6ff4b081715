"""What a Dask worker keeps between tasks: warm kernels, and a way to stop the task it runs.

`WarmKernels` is a worker plugin: the scheduler runs it on every worker (and on workers that
join later), and each keeps a `KernelPool` (introdl/grading/pool.py) of `size` warm kernels for
the lab bundle it graded last, with that lab's data bundle as the sandboxes' /data. A task finds
it by the name it was registered under (`pool_of`). Each kernel serves exactly one submission and
is destroyed, as on a local worker; a pool for another bundle (another lab, a changed hidden
suite, other grading options) replaces the one held. Unregistering the plugin, or the worker
closing, destroys its kernels; a worker killed outright takes them with it (bwrap's
--die-with-parent).

Every grading task runs under `stoppable(key)`: `stop_task(key)`, sent to the workers with
`client.run`, raises SystemExit in that task's thread, which unwinds the grading as SIGTERM does
in a local worker (the sandbox and working copy are destroyed, the worker and its other kernels
stay). The check service's watchdog uses it (introdl/checkwork/cluster_workers.py).

Each task also says on the scheduler where it started (`TOPIC`, `started`): the coordinator
shows which worker grades what, and the check service starts a check's clock there.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from distributed import WorkerPlugin

from introdl.grading.grade import GradeOptions, sandbox_env, warm_pool
from introdl.grading.kernel.launch import sweep_stale
from introdl.grading.pool import KernelPool

# Events on the scheduler: {"key", "name" (the worker's), "address", "what": "started"}.
TOPIC = "introdl-grading"
# Keys of the tasks this worker process graded with a warm kernel, in order.
SERVED: list[str] = []


class GradingStopped(Exception):
    """A grading task was stopped (`stop_task`): the check service's watchdog."""


class WarmKernels(WorkerPlugin):
    """SIZE warm kernels per worker, for the lab bundle it graded last (see the module docstring).

    Only `size` travels to the workers; the pool is made on the worker at the first task."""

    idempotent = False

    def __init__(self, size: int) -> None:
        self.size = size

    async def setup(self, worker: Any) -> None:
        self._lock = threading.Lock()
        self._pool: KernelPool | None = None
        self._key: str | None = None
        # what a worker killed earlier on this machine left (working copies, cgroups), old enough
        await asyncio.get_running_loop().run_in_executor(None, sweep_stale)

    async def teardown(self, worker: Any) -> None:
        with self._lock:
            pool, self._pool, self._key = self._pool, None, None
        if pool is not None:  # off the event loop: closing joins the pool's thread
            await asyncio.get_running_loop().run_in_executor(None, pool.close)

    def pool(self, course: Path, datadir: Path, options: GradeOptions, slot: int) -> KernelPool:
        """The pool for the lab bundle COURSE and data view DATADIR, grading as OPTIONS say."""
        key = repr(
            (
                str(course),
                str(datadir),
                options.backend_name(),
                options.limits,
                sandbox_env(options),
                options.image,
                options.gpus,
            )
        )
        with self._lock:
            old = None
            if self._key != key or self._pool is None:
                old = self._pool
                self._pool = warm_pool(course, options, size=self.size, slot=slot, datadir=datadir)
                self._key = key
            pool = self._pool
        if old is not None:
            old.close()
        return pool


def pool_of(worker: Any, name: str | None) -> WarmKernels | None:
    """The WarmKernels plugin registered as NAME on WORKER (None: none, grade cold)."""
    if name is None:
        return None
    plugin = worker.plugins.get(name)
    return plugin if isinstance(plugin, WarmKernels) else None


# --- stopping a task ----------------------------------------------------------------------------
_RUNNING: dict[str, int] = {}  # task key -> the thread running it
_LOCK = threading.Lock()


@contextlib.contextmanager
def stoppable(key: str) -> Iterator[None]:
    """Run a grading that `stop_task(KEY)` can stop: it then raises GradingStopped."""
    try:
        with _LOCK:
            _RUNNING[key] = threading.get_ident()
        try:
            yield
        finally:
            with _LOCK:
                _RUNNING.pop(key, None)
    except SystemExit:  # sent by stop_task (never a real exit: this is a worker's thread)
        raise GradingStopped(f"the grading {key} was stopped") from None


def stop_task(key: str) -> bool:
    """On a worker (client.run): stop the grading task KEY if it runs here; True if it did."""
    with _LOCK:
        ident = _RUNNING.get(key)
        if ident is None:
            return False
        done = ctypes.pythonapi.PyThreadState_SetAsyncExc(
            ctypes.c_ulong(ident), ctypes.py_object(SystemExit)
        )
    return bool(done == 1)

"""Grading a class on a Dask cluster: bundles out once per worker, submissions out with each task.

For each lab in the batch the coordinator offers two bundles on the scheduler (the lab bundle and
the data bundle, `shipping.py`) and registers a small worker plugin for each; the scheduler runs it
on every worker, and on workers that join later (a restarted or a new one). A worker whose bundle
cache (`bundles.py`) already has the hash fetches nothing; another fetches the bytes once and
installs them, where the next batch finds them. Every task carries only the hashes and the
submission as plain data; the worker grades from its cached copies in its own sandbox and returns
`Graded` (plain data). A task whose worker dies is given to another worker by the scheduler.
Nothing on a worker reads the course directory, which workers need not see.

Workers run the coordinator's own introdl code (`same_code.py`: checked before anything is sent,
and by every task), one thread each (`dask worker --nthreads 1`): one sandbox a worker at a time,
and the grader's data cache (`INTRODL_DATA_DIR`) is set per task.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import tempfile
import zlib
from collections import deque
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

from distributed import Client, Future, WorkerPlugin, as_completed

from introdl.grading.cluster.bundles import Bundle, BundleError, cache_dir, install, installed
from introdl.grading.cluster.same_code import check_same_code, own_fingerprint, refuse_other_code
from introdl.grading.cluster.shipping import (
    ShippedSubmission,
    data_bundle,
    finish_data,
    lab_bundle,
    pack_submission,
    unpack_submission,
)
from introdl.grading.cluster.warm import SERVED, TOPIC, WarmKernels, pool_of, stoppable
from introdl.grading.errors import BadInput
from introdl.grading.grade import Graded, GradeOptions, grade_submission
from introdl.grading.submission import Submission

logger = logging.getLogger("distributed.worker.introdl")
DATA_DIR_ENV = "INTRODL_DATA_DIR"
# Tasks handed to the scheduler ahead of the workers, per worker thread: the coordinator reads
# (and holds in memory) only that many submissions ahead of the results.
AHEAD_PER_THREAD = 2


# The scheduler's metadata under [OFFERED, sha256] holds a bundle's bytes while a batch runs.
OFFERED = "introdl-bundles"
# Hashes this worker process fetched from the scheduler, in order (each should appear once).
FETCHED: list[str] = []


class BundlePlugin(WorkerPlugin):
    """Makes sure one bundle is in this worker's cache, fetching it only when it is not.

    The plugin itself is small (the hash); the scheduler runs it on every worker, and on workers
    that join later. A worker whose cache has the hash fetches nothing; another fetches the
    bytes the coordinator offered on the scheduler, once, and installs them off the event loop.
    """

    idempotent = False  # registering it again re-runs setup: a cache hit, nothing fetched

    def __init__(self, sha256: str, what: str, kind: str, under: str = OFFERED) -> None:
        self.sha256, self.what, self.kind = sha256, what, kind
        self.under = under  # the scheduler's metadata key the bytes are offered under

    async def setup(self, worker: Any) -> None:
        if (cache_dir() / self.sha256).is_dir():
            return
        data = await worker.scheduler.get_metadata(keys=[self.under, self.sha256], default=None)
        if not isinstance(data, bytes):
            raise BundleError(
                f"the bundle of {self.what} is no longer offered by the scheduler (its batch "
                "ended or the coordinator stopped); run the batch again"
            )
        FETCHED.append(self.sha256)
        finish = finish_data if self.kind == "data" else None
        bundle = Bundle(self.sha256, data, self.what)
        await asyncio.get_running_loop().run_in_executor(None, install, bundle, finish)
        logger.info(
            "introdl: installed %s (%.1f MB) as %s", self.what, len(data) / 2**20, self.sha256
        )


def plugin_name(bundle: Bundle) -> str:
    return f"introdl-bundle-{bundle.sha256[:20]}"


def offer(client: Client, bundle: Bundle, kind: str) -> str:
    """Offer BUNDLE's bytes on the scheduler and have every worker install it; returns its name."""
    client.set_metadata([OFFERED, bundle.sha256], bundle.data)
    name = plugin_name(bundle)
    client.register_plugin(BundlePlugin(bundle.sha256, bundle.what, kind), name=name)
    return name


def withdraw(client: Client, bundle: Bundle) -> None:
    """The scheduler forgets BUNDLE's bytes and plugin; workers keep their caches."""
    with contextlib.suppress(Exception):  # a closing cluster: nothing left to forget
        client.unregister_worker_plugin(plugin_name(bundle))
    with contextlib.suppress(Exception):
        client.set_metadata([OFFERED, bundle.sha256], None)


def grade_on_worker(
    lab_sha: str,
    data_sha: str,
    shipped: ShippedSubmission,
    options: GradeOptions,
    code: str,
    warm: str | None = None,
    take_timeout: float | None = None,
    live: bool = False,
) -> Graded:
    """The worker's task: grade SHIPPED from the installed bundles, in a sandbox of this worker.

    CODE is the coordinator's introdl fingerprint, which must be this worker's (`same_code`).
    WARM names the `WarmKernels` plugin whose kernels to use (None: a cold sandbox); a warm
    kernel comes within TAKE_TIMEOUT seconds (default: the pool's) or PoolTimeout says why not.
    LIVE: send the grading's progress events (`progress` on TOPIC) for the check service's live
    view; a batch does not ask for them."""
    from distributed import get_worker

    worker = get_worker()
    key = str(worker.get_current_task())
    worker.log_event(
        TOPIC,
        {"key": key, "name": str(worker.name), "address": worker.address, "what": "started"},
    )
    refuse_other_code(code, str(worker.name))
    check_threads({str(worker.name): worker.state.nthreads})
    lab = shipped.lab
    course = installed(lab_sha, f"lab {lab}")
    data = installed(data_sha, f"data of lab {lab}")
    previous = os.environ.get(DATA_DIR_ENV)
    os.environ[DATA_DIR_ENV] = str(data / "data")  # the hidden tests' data cache
    try:
        with stoppable(key), tempfile.TemporaryDirectory(prefix="introdl-shipped-") as tmp:
            sub = unpack_submission(shipped, Path(tmp))
            slot = worker_slot(worker.name)
            plugin = pool_of(worker, warm)

            def send(event: dict[str, object]) -> None:  # the service's live view of a check
                worker.log_event(TOPIC, {"key": key, "what": "progress", "event": event})

            progress = send if live else None

            if plugin is None:
                return grade_submission(
                    course, sub, options, slot=slot, datadir=data / "view", on_progress=progress
                )
            pool = plugin.pool(course, data / "view", options, slot)
            if take_timeout is not None:
                pool.take_timeout = take_timeout
            graded = grade_submission(
                course, sub, options, slot=slot, pool=pool, on_progress=progress
            )
            SERVED.append(key)
            return graded
    finally:
        if previous is None:
            os.environ.pop(DATA_DIR_ENV, None)
        else:
            os.environ[DATA_DIR_ENV] = previous


def check_threads(threads: dict[str, int]) -> None:
    """One thread per worker: one sandbox at a time, and the data cache is set per task."""
    many = {name: n for name, n in threads.items() if n != 1}
    if many:
        name, n = next(iter(many.items()))
        raise BadInput(
            f"Dask worker {name} runs {n} threads, and grading needs one per worker: start "
            "workers with `dask worker --nthreads 1` (LocalCluster: threads_per_worker=1; "
            "dask-jobqueue: cores=1, processes=1, job_cpu=N) and more workers for more sandboxes"
        )


def worker_slot(name: object) -> int:
    """A stable preferred sandbox slot per worker name (a taken one moves to the next free)."""
    if isinstance(name, int) or str(name).isdigit():
        return int(str(name)) % 1000
    return zlib.crc32(str(name).encode()) % 1000


def run_dask(
    root: Path,
    subs: list[Submission],
    options: GradeOptions,
    scheduler: str,
    *,
    warm: int = 0,
    on_start: Callable[[Submission, str], None] | None = None,
) -> Generator[tuple[Submission, Graded | BaseException], None, None]:
    """Grade SUBS on the Dask cluster at SCHEDULER; workers need not see the course directory.

    WARM > 0: each worker keeps that many warm kernels for the batch (`WarmKernels`, destroyed
    when the batch ends). ON_START(submission, worker name) when a worker starts grading one (again
    on another worker when its first died)."""
    bundles = {
        lab: (lab_bundle(root, lab), data_bundle(root, lab)) for lab in {s.lab for s in subs}
    }
    with Client(scheduler) as client:
        check_threads({str(w): n for w, n in client.nthreads().items()})
        check_same_code(client)
        offered: dict[str, Bundle] = {}
        plugin = f"introdl-warm-batch-{secrets.token_hex(6)}" if warm > 0 else None
        keys: dict[str, Submission] = {}
        if on_start is not None:

            def started(event: tuple[float, dict[str, str]]) -> None:
                sub = keys.get(event[1].get("key", ""))
                if sub is not None and event[1].get("what") == "started":
                    on_start(sub, event[1].get("name", "?"))

            client.subscribe_topic(TOPIC, started)
        try:
            for lab_b, data_b in bundles.values():
                for bundle, kind in ((lab_b, "lab"), (data_b, "data")):
                    if bundle.sha256 not in offered:
                        offered[bundle.sha256] = bundle
                        offer(client, bundle, kind)
            if plugin is not None:
                client.register_plugin(WarmKernels(warm), name=plugin)
            yield from _stream(client, subs, options, bundles, plugin, keys)
        finally:
            with contextlib.suppress(Exception):
                client.unsubscribe_topic(TOPIC)
            if plugin is not None:  # the workers destroy the batch's warm kernels
                with contextlib.suppress(Exception):
                    client.unregister_worker_plugin(plugin)
            for bundle in offered.values():
                withdraw(client, bundle)


def _stream(
    client: Client,
    subs: list[Submission],
    options: GradeOptions,
    bundles: dict[str, tuple[Bundle, Bundle]],
    warm: str | None,
    keys: dict[str, Submission],
) -> Iterator[tuple[Submission, Graded | BaseException]]:
    waiting = deque(subs)
    running: dict[Future[Graded], Submission] = {}
    pending = as_completed()

    def fill() -> list[tuple[Submission, BaseException]]:
        """Hand out submissions until the workers' threads have AHEAD_PER_THREAD each."""
        unreadable: list[tuple[Submission, BaseException]] = []
        ahead = max(2, sum(client.nthreads().values()) * AHEAD_PER_THREAD)
        while waiting and len(running) < ahead:
            sub = waiting.popleft()
            lab_b, data_b = bundles[sub.lab]
            try:
                shipped = pack_submission(sub)
            except OSError as err:  # an unreadable submission: an error row, the class goes on
                unreadable.append((sub, err))
                continue
            key = f"grade-{sub.lab}-{sub.student}-{sub.fingerprint()[:12]}"
            keys[key] = sub
            future = client.submit(
                grade_on_worker,
                lab_b.sha256,
                data_b.sha256,
                shipped,
                options,
                own_fingerprint(),
                warm,
                key=key,
                pure=False,
            )
            running[future] = sub
            pending.add(future)
        return unreadable

    yield from fill()
    while running:
        future = next(pending)
        sub = running.pop(future)
        try:
            outcome: Graded | BaseException = future.result()
        except Exception as err:  # a worker that died too often, or an engine failure
            outcome = err
        yield sub, outcome
        yield from fill()

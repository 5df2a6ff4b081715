"""The check service's grading on a Dask cluster (`c.CheckService.cluster`, `--cluster`).

The fair queue and its SQLite stay in the service (fair_queue.py); what changes is where a check
is graded: instead of the service's own worker processes (workers.py), on the Dask cluster that
grades batches, one check per free worker thread. Each check travels as its notebook's bytes,
the student's name, the lab and the hashes of the lab's two bundles (introdl/grading/cluster/):
a worker fetches a bundle it lacks from the scheduler once and keeps it; it needs no course
directory and no shared disk. A `WarmKernels` plugin keeps warm kernels on every worker
(introdl/grading/cluster/warm.py), as `c.CheckService.warm` says.

- Checks go ahead of batch tasks waiting on the scheduler (a Dask priority).
- The watchdog bounds each check from the moment a worker starts it (the worker says so on the
  scheduler): past its lab's grading limit plus the margin the grading is stopped on its worker
  (it unwinds, the worker and its kernels stay), and a worker where it does not stop within
  STOP_GRACE is restarted by its nanny; the student reads the same sentence as on the service's
  own workers.
- A worker that dies mid-check: the scheduler gives the check to another worker, and its clock
  starts again there; a check that killed workers several times gets a verdict that says so.
- A check the cluster lost (the connection to the scheduler broke, or no worker started it
  within twice its bound) goes back to the fair queue; past MAX_ATTEMPTS it gets a verdict.
- A verdict whose student or lab is not its check's is refused (logged; the student is told to
  ask staff), never stored as theirs.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import contextlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol, cast

from distributed import Client, Future, KilledWorker

import introdl.data as registry
from introdl.checkwork.fair_queue import Check, CheckQueue
from introdl.checkwork.live import LiveChecks, with_first_result
from introdl.checkwork.workers import (
    MAX_ATTEMPTS,
    STOP_GRACE,
    Serving,
    failed,
    grading_limit,
    overran,
)
from introdl.grading.cluster.bundles import Bundle
from introdl.grading.cluster.dask_run import BundlePlugin, grade_on_worker, plugin_name
from introdl.grading.cluster.same_code import mismatch, own_fingerprint, worker_code
from introdl.grading.cluster.shipping import (
    data_bundle,
    lab_bundle,
    lab_datasets,
    ship_notebook,
    tree,
)
from introdl.grading.cluster.warm import TOPIC, GradingStopped, WarmKernels, stop_task
from introdl.grading.grade import Graded, GradeOptions
from introdl.grading.pool import PoolTimeout

log = logging.getLogger("introdl.checkwork")
OFFERED = "introdl-check-bundles"  # the scheduler's metadata key of the service's bundles
WARM_PLUGIN = "introdl-warm-checks"
PRIORITY = 10  # ahead of batch tasks (priority 0) waiting for a worker
RECONNECT = 10.0  # seconds between two tries to reach a scheduler that cannot be reached


class Grading(Protocol):
    """What the service needs of its graders (workers.Workers, ClusterWorkers)."""

    wake: asyncio.Event
    on_done: Callable[[Check], None] | None
    options: GradeOptions
    live: LiveChecks

    @property
    def workers(self) -> int: ...

    async def run(self) -> None: ...


class Lost(Exception):
    """The cluster lost a check (not the student's doing): it goes back to the fair queue."""


class ClusterWorkers(Serving):
    """Grade QUEUE's checks on the Dask cluster at SCHEDULER, one per free worker thread; each
    worker keeps WARM kernels (0: cold). The rest as for workers.Serving."""

    def __init__(
        self,
        queue: CheckQueue,
        course: Path,
        scheduler: str,
        warm: int = 0,
        margin: float | None = None,
        options: GradeOptions | None = None,
    ) -> None:
        super().__init__(queue, course, warm, margin, options)
        self.scheduler = scheduler
        self.threads = 0  # the cluster's worker threads at the last look
        self.started: dict[str, tuple[float, str, str]] = {}  # key -> (when, worker, address)
        # check id -> (name, address) of each worker that started it, in order
        self.graded_on: dict[int, list[tuple[str, str]]] = {}
        self._offered: dict[tuple[str, str], str] = {}  # (lab, kind) -> sha256 offered
        self._data: dict[
            str, tuple[object, Bundle]
        ] = {}  # lab -> (what it was packed from, bundle)

    @property
    def workers(self) -> int:
        """Gradings at once (for the ETA): the cluster's worker threads, at least 1."""
        return max(1, self.threads)

    async def run(self) -> None:
        """Serve the queue on the cluster for ever (or until cancelled); while the scheduler
        cannot be reached, checks wait in the queue and the service tries again."""
        while True:
            grading: dict[asyncio.Task[None], int] = {}
            try:
                await self._serve_on_cluster(grading)
            except Exception as err:  # the scheduler is down or refused us: try again later
                for task, check_id in grading.items():
                    task.cancel()
                    self.queue.requeue(check_id)
                self.threads = 0
                log.error("the Dask scheduler %s cannot be reached (%s); checks wait in the "
                          "queue; trying again in %.0f s", self.scheduler, err, RECONNECT)  # fmt: skip
                await asyncio.sleep(RECONNECT)

    async def _serve_on_cluster(self, grading: dict[asyncio.Task[None], int]) -> None:
        async with Client(self.scheduler, asynchronous=True) as client:
            client.subscribe_topic(TOPIC, self._on_event)
            await self._check_code(client)
            if self.warm > 0:
                await client.register_plugin(WarmKernels(self.warm), name=WARM_PLUGIN)
            try:
                while True:
                    self.threads = await self._threads(client)
                    while len(grading) < self.threads:
                        check = self.queue.take()
                        if check is None:
                            break
                        grading[asyncio.create_task(self._serve(client, check))] = check.id
                    self.wake.clear()
                    waker = asyncio.create_task(self.wake.wait())
                    await asyncio.wait(
                        {waker, *grading}, timeout=2.0, return_when="FIRST_COMPLETED"
                    )
                    waker.cancel()
                    for task in [t for t in grading if t.done()]:
                        del grading[task]
            finally:
                for task in grading:  # the service stops: these stay running, re-queued at start
                    task.cancel()
                with contextlib.suppress(Exception):
                    await client.unregister_worker_plugin(WARM_PLUGIN)

    async def _threads(self, client: Client) -> int:
        """The cluster's worker threads now (0 while the scheduler cannot be reached)."""
        try:
            return sum((await client.nthreads()).values())
        except Exception as err:  # a lost scheduler: take nothing until it is back
            if self.threads:
                log.error("the Dask scheduler %s cannot be reached: %s", self.scheduler, err)
            return 0

    def _on_event(self, event: tuple[float, dict[str, Any]]) -> None:
        msg = event[1]
        if msg.get("what") == "progress" and str(msg.get("key", "")).startswith("check-"):
            if isinstance(msg.get("event"), dict):
                self.live.update(int(str(msg["key"]).split("-")[1]), msg["event"])
            return
        if msg.get("what") == "started" and str(msg.get("key", "")).startswith("check-"):
            key = str(msg["key"])
            self.started[key] = (time.monotonic(), str(msg.get("name")), str(msg.get("address")))
            check_id = int(key.split("-")[1])
            self.graded_on.setdefault(check_id, []).append(self.started[key][1:])
            log.info("check %d started on Dask worker %s", check_id, msg.get("name"))

    async def _check_code(self, client: Client) -> None:
        """Say in the log, at once, when a worker runs other introdl code (its checks would fail)."""
        found = await client.run(worker_code, on_error="return")
        for address, answer in sorted(found.items()):
            if isinstance(answer, tuple) and answer[0] != own_fingerprint():
                log.error("%s", mismatch(address, answer[0], answer[1]))

    async def _serve(self, client: Client, check: Check) -> None:
        self.live.start(check.id)
        try:
            results = await self._grade(client, check)
        except Lost as err:
            log.warning("check %d: %s; back to the queue", check.id, err)
            self.live.finish(check.id)
            self.queue.requeue(check.id)
            self.wake.set()
            return
        except asyncio.CancelledError:
            raise  # the service stops: the check stays running, re-queued at the next start
        except Exception as err:  # never leave a check running: it gets a verdict
            log.exception("check %d: grading on the cluster failed", check.id)
            results = failed(
                check, f"the check could not be graded ({type(err).__name__}); ask staff"
            )
        self.queue.finish(check.id, with_first_result(results, self.live.finish(check.id), check))
        log.info("check %d: %s / %s", check.id, results.get("score"), results.get("max_score"))
        if self.on_done is not None:
            self.on_done(self.queue.get(check.id))

    async def _grade(self, client: Client, check: Check) -> dict[str, Any]:
        if check.attempts > MAX_ATTEMPTS:
            return failed(
                check, "the grading cluster lost this check several times (a worker or the "
                "scheduler stopped); ask staff to look at it"
            )  # fmt: skip
        loop = asyncio.get_running_loop()
        notebook = self.queue.notebook(check.id)
        limit = grading_limit(self.course, check.lab)
        lab_b, data_b = await loop.run_in_executor(None, self._bundles, check.lab)
        await self._offer(client, check.lab, lab_b, "lab")
        await self._offer(client, check.lab, data_b, "data")
        key = f"check-{check.id}-{check.attempts}-{secrets.token_hex(4)}"
        future = client.submit(
            grade_on_worker,
            lab_b.sha256,
            data_b.sha256,
            ship_notebook(check.student, check.lab, notebook),
            self.options,
            own_fingerprint(),
            WARM_PLUGIN if self.warm > 0 else None,
            max(1.0, self.margin * 2 / 3),  # a warm kernel well within the margin
            live=True,
            key=key,
            pure=False,
            priority=PRIORITY,
        )
        log.info("check %d (%s, %s) sent to the cluster as %s", check.id, check.student,
                 check.lab, key)  # fmt: skip
        try:
            graded = await self._watch(client, future, key, check, limit)
        except GradingStopped:
            return overran(check, limit, self.margin)
        except KilledWorker:
            return failed(check, "the grading worker stopped while grading this notebook, "
                          "several times; ask staff")  # fmt: skip
        except PoolTimeout as err:
            return failed(check, f"the check could not start: {err}")
        finally:
            self.started.pop(key, None)
        results = graded.results.to_json()
        if (results.get("student"), results.get("lab")) != (check.student, check.lab):
            log.error(
                "check %d of %s/%s: a Dask worker (%s) sent back a verdict of %s/%s; refused",
                check.id, check.student, check.lab, self.graded_on.get(check.id),
                results.get("student"), results.get("lab"),
            )  # fmt: skip
            return failed(check, "the grading cluster sent back a verdict that was not of "
                          "this notebook; it was not kept. Ask staff")  # fmt: skip
        return results

    async def _watch(
        self, client: Client, future: Future[Graded], key: str, check: Check, limit: float
    ) -> Graded:
        """FUTURE's result, within the watchdog's bound from when a worker started it."""
        bound = limit + self.margin
        sent = time.monotonic()
        # an asynchronous client's result() is a coroutine
        waiter = asyncio.ensure_future(cast(Awaitable[Graded], future.result()))
        try:
            while True:
                done, _ = await asyncio.wait({waiter}, timeout=1.0)
                if done:
                    try:
                        return waiter.result()
                    except cf.CancelledError as err:  # the scheduler lost it (not asyncio's)
                        raise Lost(f"the cluster cancelled its task ({err})") from err
                started = self.started.get(key)
                now = time.monotonic()
                if started is None and now - sent > 2 * bound:
                    await client.cancel([future])
                    raise Lost(f"no Dask worker started it within {2 * bound:.0f} s")
                if started is not None and now - started[0] > bound:
                    log.error("check %d (%s, %s): still grading on %s after %.0f s (limit %.0f +"
                              " margin %.0f s); stopping it", check.id, check.student, check.lab,
                              started[1], now - started[0], limit, self.margin)  # fmt: skip
                    await self._stop(client, future, waiter, key)
                    raise GradingStopped(key)
        finally:
            if not waiter.done():
                waiter.cancel()
            waiter.add_done_callback(lambda w: w.cancelled() or w.exception())  # seen, not logged

    async def _stop(
        self, client: Client, future: Future[Graded], waiter: asyncio.Future[Any], key: str
    ) -> None:
        """Stop task KEY on its worker (it unwinds its sandbox); restart the worker where it does
        not end within STOP_GRACE (its nanny starts a new one; its sandboxes die with it)."""
        hits = await client.run(stop_task, key, on_error="return")
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.shield(waiter), timeout=STOP_GRACE)
        if waiter.done():
            log.info("check task %s stopped on its worker; the worker goes on", key)
            return
        stuck = [address for address, hit in hits.items() if hit is True]
        log.error("check task %s did not stop within %.0f s: restarting %s", key, STOP_GRACE, stuck)
        await client.cancel([future], force=True)
        if stuck:
            with contextlib.suppress(Exception):
                await client.restart_workers(stuck, raise_for_error=False)

    def _bundles(self, lab: str) -> tuple[Bundle, Bundle]:
        """LAB's bundles as they are now: the suite packed again (small), the data packed again
        only when its files changed."""
        lab_b = lab_bundle(self.course, lab)
        stamp = data_stamp(self.course, lab)
        cached = self._data.get(lab)
        if cached is None or cached[0] != stamp:
            cached = self._data[lab] = (stamp, data_bundle(self.course, lab))
        return lab_b, cached[1]

    async def _offer(self, client: Client, lab: str, bundle: Bundle, kind: str) -> None:
        """Offer BUNDLE on the scheduler (once) for as long as it is LAB's; every worker installs
        it. The one it replaces (a changed suite) is withdrawn."""
        old = self._offered.get((lab, kind))
        if old == bundle.sha256:
            return
        await client.set_metadata([OFFERED, bundle.sha256], bundle.data)
        plugin = BundlePlugin(bundle.sha256, bundle.what, kind, under=OFFERED)
        await client.register_plugin(plugin, name="check-" + plugin_name(bundle))
        self._offered[(lab, kind)] = bundle.sha256
        if old is not None and old not in self._offered.values():
            with contextlib.suppress(Exception):
                await client.unregister_worker_plugin(f"check-introdl-bundle-{old[:20]}")
                await client.set_metadata([OFFERED, old], None)


def data_stamp(course: Path, lab: str) -> object:
    """What LAB's data bundle is packed from: its declared sets' files, sizes and times."""
    stamp: list[tuple[str, int, int]] = []
    listed = course / "grader_tests" / lab / "datasets.txt"
    for path in [listed] if listed.is_file() else []:
        stamp.append((str(path), path.stat().st_size, path.stat().st_mtime_ns))
    for name, _ in lab_datasets(course, lab):
        folder = registry.cache_dir() / name
        for _, path in tree(folder) if folder.is_dir() else []:
            info = path.stat()
            stamp.append((str(path), info.st_size, info.st_mtime_ns))
    return tuple(stamp)

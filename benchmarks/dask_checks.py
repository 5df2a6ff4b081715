"""Benchmark: N checks asked at once, graded by the check service's own 2 workers or on 2 Dask workers.

The same load as `check_latency.py --load N` (each student's notebook the lab's source, full
marks expected), served ROUNDS times by each of:

  local-2  the service's grading workers (introdl/checkwork/workers.py): 2 spawned processes;
  dask-2   `ClusterWorkers` (introdl/checkwork/cluster_workers.py) on a real `dask scheduler` with two
           `dask worker --nthreads 1` processes on this machine, empty bundle caches at the start.

Both keep WARM warm kernels per worker. Per round: every verdict arrived and is its student's
own, the wait (request to verdict) median and worst, the grading time (taken to verdict) median,
and the whole round's time. Needs root (the sandbox). Results: docs/cluster.md.

Run: .venv/bin/python benchmarks/dask_checks.py [--lab lab1_tensorflow] [--load 10] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dask_throughput import free_port

from introdl.checkwork.cluster_workers import ClusterWorkers
from introdl.checkwork.fair_queue import Check, CheckQueue, Limits
from introdl.checkwork.workers import Workers

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


async def serve(
    grading: Workers | ClusterWorkers, queue: CheckQueue, asks: list[str], lab: str
) -> list[Check]:
    notebook = (ROOT / "source" / lab / f"{lab}.ipynb").read_bytes()
    ids = [queue.request(student, lab, notebook).id for student in asks]
    task = asyncio.create_task(grading.run())
    grading.wake.set()
    while not all(queue.get(i).state == "done" for i in ids):
        await asyncio.sleep(0.2)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return [queue.get(i) for i in ids]


def report(mode: str, round_: int, checks: list[Check], took: float) -> None:
    waits = sorted(c.wait or 0.0 for c in checks)
    graded = sorted((c.finished_at or 0.0) - (c.started_at or 0.0) for c in checks)
    mine = all(c.results and c.results.get("student") == c.student for c in checks)
    scores = sorted({(c.results or {}).get("score") for c in checks})
    print(
        f"{mode} round {round_}: {len(checks)} verdicts, each its student's own: {mine}; wait "
        f"median {statistics.median(waits):.1f} s, worst {waits[-1]:.1f} s; grading median "
        f"{statistics.median(graded):.1f} s; all in {took:.1f} s; scores {scores}",
        flush=True,
    )


def start_cluster(tmp: Path) -> tuple[str, list[subprocess.Popen[bytes]]]:
    address = f"tcp://127.0.0.1:{free_port()}"
    port = address.rsplit(":")[-1]
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "start_new_session": True}
    processes = [
        subprocess.Popen(
            [BIN / "dask", "scheduler", "--host", "127.0.0.1", "--port", port, "--no-dashboard"],
            **quiet,  # type: ignore[call-overload]
        )
    ]
    for name in ("w0", "w1"):
        processes.append(
            subprocess.Popen(
                [
                    BIN / "dask",
                    "worker",
                    address,
                    "--name",
                    name,
                    "--nthreads",
                    "1",
                    "--no-dashboard",
                    "--local-directory",
                    str(tmp / name),
                ],
                env={**os.environ, "INTRODL_BUNDLE_DIR": str(tmp / f"{name}-bundles")},
                **quiet,  # type: ignore[call-overload]
            )
        )
    from distributed import Client

    with Client(address, timeout=60) as client:
        client.wait_for_workers(2, timeout=120)
    return address, processes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lab", default="lab1_tensorflow")
    parser.add_argument("--load", type=int, default=10, help="students asking at once")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--warm", type=int, default=1, help="warm kernels per worker")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("the sandbox needs root: run as root")
        return 2
    with tempfile.TemporaryDirectory(prefix="introdl-dask-checks-") as name:
        tmp = Path(name)
        address, processes = start_cluster(tmp)
        try:
            for mode in ("local-2", "dask-2"):
                for round_ in range(1, args.rounds + 1):
                    queue = CheckQueue(
                        tmp / f"{mode}-{round_}.sqlite",
                        Limits(checks_per_day=100, cooldown_seconds=0),
                    )
                    grading: Workers | ClusterWorkers = (
                        Workers(queue, ROOT, 2, args.warm)
                        if mode == "local-2"
                        else ClusterWorkers(queue, ROOT, address, args.warm)
                    )
                    asks = [f"st-{mode}-{round_}-{i:02d}" for i in range(args.load)]
                    started = time.monotonic()
                    checks = asyncio.run(serve(grading, queue, asks, args.lab))
                    report(mode, round_, checks, time.monotonic() - started)
                    if isinstance(grading, Workers):
                        grading.stop()
        finally:
            for process in reversed(processes):
                os.killpg(process.pid, signal.SIGTERM)
            for process in processes:
                process.wait(30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

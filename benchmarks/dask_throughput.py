"""Benchmark: a class graded by 1 and 2 local workers and by a 2-worker Dask cluster (no shared disk).

The same class of N submissions (the instructor's answers filled into the release) is graded,
alternating, R rounds of:

  local-1  `grade_class(workers=1)`: in this process, one sandbox at a time;
  local-2  `grade_class(workers=2)`: two local worker processes;
  dask-2   `grade_class(scheduler=...)` on a real `dask scheduler` with two `dask worker
           --nthreads 1` processes, each in its own mount namespace with the course directory
           and this machine's data cache hidden (root only; `--no-hide` runs them plainly). The workers' bundle caches start
           empty, so round 1 includes shipping and installing the bundles (cold) and later rounds
           find them by hash (warm).

Every round regrades everything (`force`). It prints seconds per round and submissions per minute
for each mode, the bundles' sizes and how long packing them took. Method and results: BENCHMARKS.md.
Run: .venv/bin/python benchmarks/dask_throughput.py [--lab lab1_tensorflow|corpus] [--students 6]
     [--rounds 2] [--no-hide]   (corpus: the engine tests' one-exercise course, no TensorFlow,
     so the fixed costs of each path show)
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from grading_overhead import build_course

from introdl.data import cache_dir
from introdl.grading.batch import grade_class
from introdl.grading.cluster.shipping import data_bundle, lab_bundle
from introdl.grading.grade import GradeOptions
from introdl.grading.submission import find_submissions

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_cluster(
    course: Path, where: Path, hide: bool
) -> tuple[str, list[subprocess.Popen[bytes]]]:
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    procs = [
        subprocess.Popen(
            [
                BIN / "dask",
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-dashboard",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    ]
    for name in ("w0", "w1"):
        worker = f"{BIN / 'dask'} worker {address} --name {name} --nthreads 1 --no-dashboard"
        worker += f" --local-directory {where / name}"
        command = (
            ["unshare", "--mount", "--propagation", "private", "sh", "-c",
             f"mount -t tmpfs hidden {course} && mount -t tmpfs hidden {cache_dir()} && exec {worker}"]
            if hide
            else ["sh", "-c", f"exec {worker}"]
        )  # fmt: skip
        procs.append(
            subprocess.Popen(
                command,
                env={**os.environ, "INTRODL_BUNDLE_DIR": str(where / f"{name}-bundles")},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        )
    from distributed import Client

    with Client(address, timeout=60) as client:
        client.wait_for_workers(2, timeout=60)
    return address, procs


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in reversed(procs):
        os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lab", default="lab1_tensorflow")
    parser.add_argument("--students", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--no-hide", action="store_true", help="workers see the course directory")
    args = parser.parse_args()
    hide = not args.no_hide and os.geteuid() == 0
    options = GradeOptions(backend="bwrap", seed=1)
    with tempfile.TemporaryDirectory(prefix="introdl-dask-bench-") as tmp:
        where = Path(tmp)
        course = where / "course"
        if args.lab == "corpus":  # the engine tests' one-exercise course: no TensorFlow
            sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
            import nbformat

            from tests.corpus_course import answer
            from tests.corpus_course import build_course as build_corpus

            release = build_corpus(course)
            for i in range(args.students):
                folder = course / "submitted" / f"student{i}" / "corpus"
                folder.mkdir(parents=True)
                nbformat.write(answer(release), folder / "corpus.ipynb")
        else:
            build_course(args.lab, args.students, course)
        subs = find_submissions(course, args.lab)
        for label, make in (("lab", lab_bundle), ("data", data_bundle)):
            started = time.perf_counter()
            bundle = make(course, args.lab)
            print(
                f"{label} bundle of {args.lab}: {len(bundle.data) / 2**20:.2f} MiB, packed and "
                f"hashed in {time.perf_counter() - started:.2f} s ({bundle.sha256[:12]})"
            )
        print(f"load before: {os.getloadavg()}; workers hidden from the course: {hide}")
        address, procs = start_cluster(course, where, hide)
        times: dict[str, list[float]] = {"local-1": [], "local-2": [], "dask-2": []}
        try:
            for round_ in range(1, args.rounds + 1):
                for mode in times:
                    started = time.perf_counter()
                    if mode == "dask-2":
                        rows = grade_class(course, subs, options, scheduler=address, force=True)
                    else:
                        workers = int(mode[-1])
                        rows = grade_class(course, subs, options, workers=workers, force=True)
                    seconds = time.perf_counter() - started
                    scores = sorted((r.student, r.status, r.score, r.max_score) for r in rows)
                    print(f"  scores {mode}: {scores}")
                    times[mode].append(seconds)
                    print(
                        f"round {round_} {mode}: {seconds:.1f} s, "
                        f"{60 * len(subs) / seconds:.1f} submissions/min, "
                        f"load {os.getloadavg()[0]:.1f}",
                        flush=True,
                    )
        finally:
            stop(procs)
        print(f"\n{args.lab}, {len(subs)} submissions, {args.rounds} alternating rounds:")
        for mode, values in times.items():
            med = statistics.median(values)
            rate = 60 * len(subs) / med
            print(
                f"  {mode}: median {med:.1f} s a round, {rate:.1f} submissions/min; rounds {values}"
            )
        print(
            f"  dask-2 / local-2 time: {statistics.median(times['dask-2']) / statistics.median(times['local-2']):.2f}"
        )


if __name__ == "__main__":
    main()

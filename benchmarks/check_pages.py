"""Benchmark: do the check service's pages answer fast while its queue is long (issue 23, point 4)?

The whole HTTP path, for real: a JupyterHub on loopback (tests/hub.py's course and accounts), its
proxy, the hub's token check, the check service's tornado process and its one grading worker.
A class of STUDENTS asks for a check of the corpus lab (tests/corpus_course.py) at once; each
notebook also burns about BURN seconds of CPU, so that the queue stays long for minutes while the
worker grades on the same 2 cores. Meanwhile every student's "page" is read once a second, as an
open check page refreshes itself (the HTML page `checks/<id>`, which replays the queue for the
student's ETA, and the JSON `api/checks/<id>`), and a member of staff reads the queue
(`api/queue`, and the HTML `staff` page) every 2 s. Every answer is timed from the request to its
last byte; the queue's length is read from the staff answers. Prints p50 / p95 / worst per kind
of request, and how many were not 200.

Needs root (Unix accounts, the sandbox) and nothing else running a hub (`flock /tmp/introdl-hub.lock`).
Method and results: BENCHMARKS.md, "Check pages under a long queue".

Run: flock /tmp/introdl-hub.lock .venv/bin/python benchmarks/check_pages.py [--students 30] [--burn 2]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import nbformat
import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from introdl.hub.local import running_hub  # noqa: E402
from tests import hub as hubs  # noqa: E402
from tests.corpus_course import answer, with_cell  # noqa: E402
from tests.test_hub_check import CORPUS, put_notebook  # noqa: E402

Timing = tuple[str, float, int]  # kind, seconds, HTTP status


def burner(seconds: float) -> str:
    """A notebook cell that computes for about SECONDS of CPU (no sleeping: the busy-host rule
    would call a sleeper's grading 'waited without computing')."""
    return (
        "import time\n_t = time.process_time()\n"
        f"while time.process_time() - _t < {seconds}:\n    sum(range(1000))"
    )


def timed(session: requests.Session, url: str, headers: dict[str, str]) -> tuple[float, int, str]:
    started = time.perf_counter()
    try:
        answer_ = session.get(url, headers=headers, timeout=30, allow_redirects=False)
        body = answer_.text
        status = answer_.status_code
    except requests.RequestException as err:
        body, status = str(err), 0
    return time.perf_counter() - started, status, body


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, default=30, help="students asking at once (<= 30)")
    parser.add_argument("--burn", type=float, default=2.0, help="CPU seconds each notebook burns")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("needs root: Unix accounts and the sandbox")
        return 2
    reason = hubs.skip_reason()
    if reason:
        print(f"cannot start the hub: {reason}")
        return 2
    hubs.reset_homes()
    state = Path(tempfile.mkdtemp(prefix="introdl-hub-bench-", dir="/tmp"))
    try:
        with running_hub(hubs.settings(ROOT, state)) as hub:
            return measure(hub, hubs.LOAD_CLASS[: args.students], args.burn)
    finally:
        shutil.rmtree(state, ignore_errors=True)


def measure(hub, students: list[str], burn: float) -> int:  # type: ignore[no-untyped-def]
    release = hubs.install_corpus(hub)
    notebook = nbformat.writes(with_cell(answer(release), burner(burn))).encode()
    tokens = {
        n: hub.token_for(n, "bench: check pages") for n in [*students, hub.settings.instructor]
    }
    base = f"{hub.settings.url}/services/check"
    asked: dict[str, int] = {}
    for name in students:
        put_notebook(name, CORPUS, notebook)
    started = time.monotonic()
    for name in students:
        ans = requests.post(
            f"{base}/api/labs/{CORPUS}/checks",
            headers={"Authorization": f"token {tokens[name]}"},
            timeout=60,
        )
        assert ans.status_code == 202, ans.text
        asked[name] = int(ans.json()["id"])
    print(f"{len(asked)} checks asked in {time.monotonic() - started:.1f} s", flush=True)

    timings: list[Timing] = []
    queue_lengths: list[int] = []
    lock = threading.Lock()
    stop = threading.Event()

    def student(name: str) -> None:
        session = requests.Session()
        headers = {"Authorization": f"token {tokens[name]}"}
        while not stop.is_set():
            for kind, url in (
                ("check page (HTML, with ETA)", f"{base}/checks/{asked[name]}"),
                ("api/checks/<id> (JSON)", f"{base}/api/checks/{asked[name]}"),
            ):
                seconds, status, _ = timed(session, url, headers)
                with lock:
                    timings.append((kind, seconds, status))
            stop.wait(1.0)

    def staff() -> None:
        session = requests.Session()
        headers = {"Authorization": f"token {tokens[hub.settings.instructor]}"}
        while not stop.is_set():
            seconds, status, _ = timed(session, f"{base}/staff", headers)
            with lock:
                timings.append(("staff page (HTML)", seconds, status))
            answer_ = session.get(f"{base}/api/queue", headers=headers, timeout=30)
            if answer_.status_code == 200:
                queue_lengths.append(len(answer_.json().get("queued", [])))
            stop.wait(2.0)

    threads = [threading.Thread(target=student, args=(n,), daemon=True) for n in students]
    threads.append(threading.Thread(target=staff, daemon=True))
    for thread in threads:
        thread.start()
    checker = requests.Session()
    headers = {"Authorization": f"token {tokens[students[-1]]}"}
    while time.monotonic() - started < 1800:
        row = checker.get(f"{base}/api/checks/{asked[students[-1]]}", headers=headers, timeout=30)
        if row.status_code == 200 and row.json().get("state") == "done":
            break
        time.sleep(2.0)
    drained = time.monotonic() - started
    stop.set()
    for thread in threads:
        thread.join(timeout=35)

    print(
        f"{len(students)} students, each notebook burning {burn:g} CPU s; the last verdict "
        f"{drained:.0f} s after the first request; queue length seen by staff: max "
        f"{max(queue_lengths, default=0)}, median {statistics.median(queue_lengths or [0]):.0f}; "
        f"load {os.getloadavg()[0]:.1f}"
    )
    print("| request | n | p50 | p95 | worst | not 200 |\n|---|---|---|---|---|---|")
    for kind in sorted({k for k, _, _ in timings}):
        secs = sorted(s for k, s, _ in timings if k == kind)
        bad = sum(1 for k, _, st in timings if k == kind and st != 200)
        p95 = secs[min(len(secs) - 1, int(0.95 * len(secs)))]
        print(
            f"| {kind} | {len(secs)} | {1000 * statistics.median(secs):.0f} ms | "
            f"{1000 * p95:.0f} ms | {1000 * secs[-1]:.0f} ms | {bad} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

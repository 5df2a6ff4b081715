"""Thirty students fetch and hand in at the same moment: nothing lost, nothing misfiled.

Simulated over HTTP against the loopback hub (each with their own real hub token, through the
hub's proxy), bounded in count (30 students, one fetch and one hand-in each) and in time (60 s a
request). The time it took is printed (run with -s) and written down in BENCHMARKS.md.
"""

from __future__ import annotations

import io
import tarfile
import time
from concurrent.futures import ThreadPoolExecutor

from introdl.hub.local import Hub
from tests.hub import LOAD_CLASS, Exchange, tarball

LAB = "lab1_tensorflow"
CLASS = LOAD_CLASS


def hand_in(hub: Hub, student: str, token: str) -> tuple[str, str, float]:
    """One student's fetch and hand-in; (student, the exchange's time stamp, seconds taken)."""
    started = time.perf_counter()
    me = Exchange(hub, token)
    release = me.call("GET", f"assignments/{LAB}")
    release.raise_for_status()
    with tarfile.open(fileobj=io.BytesIO(release.content), mode="r:gz") as tar:
        notebook = tar.extractfile(f"{LAB}.ipynb")
        assert notebook is not None
        work = notebook.read() + f"\n# handed in by {student}\n".encode()
    answer = me.call("POST", f"submissions/{LAB}", data=tarball({f"{LAB}.ipynb": work}))
    answer.raise_for_status()
    assert answer.json()["student"] == student
    return student, answer.json()["timestamp"], time.perf_counter() - started


def test_thirty_students_hand_in_at_once(hub: Hub) -> None:
    """Does every one of 30 simultaneous hand-ins arrive exactly once, under the right name?"""
    tokens = {name: hub.token_for(name, "test: load") for name in CLASS}
    teacher = Exchange(hub, hub.token_for(hub.settings.instructor, "test: load"))
    before = {r["id"] for r in teacher.call("GET", f"collect/{LAB}").json()}

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=len(CLASS)) as pool:
        done = list(pool.map(lambda name: hand_in(hub, name, tokens[name]), CLASS))
    wall = time.perf_counter() - started

    rows = [r for r in teacher.call("GET", f"collect/{LAB}").json() if r["id"] not in before]
    assert sorted(r["student"] for r in rows) == sorted(CLASS)  # each exactly once
    stamps = {student: stamp for student, stamp, _ in done}
    for row in rows:
        assert row["timestamp"] == stamps[row["student"]]
        blob = teacher.call(
            "GET", f"collect/{LAB}/{row['student']}", params={"timestamp": row["timestamp"]}
        )
        with tarfile.open(fileobj=io.BytesIO(blob.content), mode="r:gz") as tar:
            notebook = tar.extractfile(f"{LAB}.ipynb")
            assert notebook is not None
            assert notebook.read().endswith(f"# handed in by {row['student']}\n".encode())
    each = sorted(seconds for _, _, seconds in done)
    print(
        f"\n30 students fetched and handed in at once in {wall:.2f} s "
        f"(per student: median {each[len(each) // 2]:.2f} s, worst {each[-1]:.2f} s)"
    )

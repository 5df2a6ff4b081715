"""What a TA sees while a class is graded: a first line at once, then one line per submission.

On a terminal a tqdm bar stays below those lines, refreshed in place every second: done/total,
ETA, counts (graded / with failed tests / errors) and what each worker is grading, for how long.
Anywhere else (a pipe, a log file, `--json`'s stderr) only the plain lines are written, so a log
reads the same as the screen without the bar.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from tqdm import tqdm

    from introdl.grading.record.row import Row

REFRESH_SECONDS = 1.0


def describe(row: Row) -> str:
    """The kind of outcome a row is, in the TA's words."""
    if row.status == "error":
        return "error"
    if row.status == "unchanged":
        return "unchanged"
    return "all tests passed" if row.score >= row.max_score else "failed tests"


class Progress:
    """Progress of one batch, written to STREAM (standard output unless told)."""

    def __init__(self, lab: str, total: int, where: str, stream: TextIO | None = None) -> None:
        """Say at once what starts: TOTAL submissions of LAB, graded WHERE ("2 worker(s)")."""
        self.stream = stream or sys.stdout
        self.live = self.stream.isatty()
        self.todo = 0
        self.done = 0
        self.counts = {"graded": 0, "failed tests": 0, "error": 0}
        self.running: dict[str, float] = {}  # student -> when its grading started
        self.on: dict[str, str] = {}  # student -> the Dask worker grading it
        self.by_worker: dict[str, int] = {}  # Dask worker -> submissions it graded
        self.bar: tqdm | None = None
        self._lock = threading.Lock()  # the ticker thread refreshes while rows land
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self._say(f"grading {total} submission(s) of {lab} on {where}...")

    def _say(self, line: str) -> None:
        if self.bar is not None:
            self.bar.write(line, file=self.stream)
        else:
            print(line, file=self.stream, flush=True)

    def plan(self, todo: int, skipped: int) -> None:
        """TODO submissions will be graded; SKIPPED are already graded and unchanged."""
        self.todo = todo
        if skipped:
            self._say(
                f"{skipped} already graded and unchanged: kept, not regraded (--force regrades)"
            )
        if self.live and todo:
            from tqdm import tqdm

            self.bar = tqdm(
                total=todo,
                file=self.stream,
                unit="sub",
                dynamic_ncols=True,
                bar_format="{n}/{total} [{elapsed}<{remaining}] {postfix}",
            )
            self._ticker = threading.Thread(target=self._tick, name="introdl-progress", daemon=True)
            self._ticker.start()

    def started(self, student: str, worker: str | None = None) -> None:
        """STUDENT's grading started (on WORKER of a Dask cluster: said, and counted per worker)."""
        with self._lock:
            self.running[student] = time.monotonic()
            again = self.on.get(student)
            if worker is not None:
                self.on[student] = worker
        if worker is not None and again is not None:
            self._say(f"{student}: graded again on {worker} ({again} stopped)")
        self._refresh()

    def landed(self, row: Row) -> None:
        """A submission's row is recorded: one line, and the counts."""
        with self._lock:
            began = self.running.pop(row.student, None)
            worker = self.on.pop(row.student, None)
            if worker is not None:
                self.by_worker[worker] = self.by_worker.get(worker, 0) + 1
        kind = describe(row)
        self.counts["graded"] += row.status == "graded"
        self.counts["failed tests"] += kind == "failed tests"
        self.counts["error"] += kind == "error"
        self.done += 1
        took = f" in {time.monotonic() - began:.0f} s" if began is not None else ""
        note = f": {row.message[:100]}" if row.message else ""
        on = f" on {worker} ({self.by_worker[worker]} there)" if worker is not None else ""
        self._say(
            f"[{self.done}/{self.todo}] {row.student}: {row.score:g} / {row.max_score:g}, "
            f"{kind}{took}{on}{note}"
        )
        if self.bar is not None:
            self.bar.update(1)
        self._refresh()

    def status(self) -> str:
        """Counts and what each worker is grading (the bar's text)."""
        now = time.monotonic()
        with self._lock:
            running = sorted(self.running.items())
            on = dict(self.on)
        busy = ", ".join(
            f"{s} ({now - t:.0f} s{', ' + on[s] if s in on else ''})" for s, t in running
        )
        counts = (
            f"graded {self.counts['graded']} | failed tests {self.counts['failed tests']} | "
            f"errors {self.counts['error']}"
        )
        return f"{counts} | grading: {busy}" if busy else counts

    def _refresh(self) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(self.status(), refresh=True)

    def _tick(self) -> None:
        while not self._stop.wait(REFRESH_SECONDS):
            self._refresh()

    def close(self) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
        if self.bar is not None:
            self.bar.close()
            self.bar = None

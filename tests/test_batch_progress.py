"""`introdl grade` as a TA sees it: a first line at once, a line per submission, a live bar on a
terminal, JSON alone on stdout with `--json`, and Ctrl-C that stops cleanly and costs only a rerun.

The CLI runs in a subprocess on the one-exercise course of tests/corpus_course.py (seconds a
submission) in real bwrap sandboxes, as in tests/test_batch_workers.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from introdl.grading.record.results import results_path
from introdl.grading.sandbox.working_copy import is_quota_mount
from tests.corpus_course import LAB
from tests.test_batch_workers import (
    assert_sandboxes_died_with_their_worker,
    course_with_class,
    needs_bwrap,
)

RESUME = "run the same command again: graded submissions are not regraded"


# `python -m introdl.cli`, with the test course's lab added to the course's labs.
CLI = (
    "import sys, introdl.grading.course as course; course.LABS += (sys.argv[1],); "
    "from introdl.cli import main; sys.exit(main(sys.argv[2:]))"
)


def introdl_grade(*extra: str) -> list[str]:
    return [sys.executable, "-c", CLI, LAB, "grade", LAB, "--backend", "bwrap", *extra]


def env_for(course: Path) -> dict[str, str]:
    return {**os.environ, "INTRODL_COURSE_ROOT": str(course)}


def read_pty(fd: int, proc: subprocess.Popen[bytes], timeout: float) -> list[tuple[float, str]]:
    """Everything the process writes to its terminal, as (seconds since start, text) chunks."""
    started = time.monotonic()
    chunks: list[tuple[float, str]] = []
    while time.monotonic() - started < timeout:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                data = os.read(fd, 65536)
            except OSError:  # the terminal closed: the process is gone
                break
            if not data:
                break
            chunks.append((time.monotonic() - started, data.decode(errors="replace")))
        elif proc.poll() is not None:
            break
    return chunks


def when_seen(chunks: list[tuple[float, str]], text: str) -> float:
    """Seconds after the start at which TEXT had been written in full."""
    so_far = ""
    for at, chunk in chunks:
        so_far += chunk
        if text in so_far:
            return at
    raise AssertionError(f"never written: {text!r} in {so_far!r}")


@needs_bwrap
def test_a_terminal_sees_the_first_line_at_once_then_each_submission_and_a_live_bar(
    tmp_path: Path,
) -> None:
    """On a terminal, does the TA see the batch start within seconds, before any result, then one
    line per submission and a bar with counts, and the final table?"""
    course, expected = course_with_class(tmp_path)
    primary, secondary = pty.openpty()
    proc = subprocess.Popen(
        introdl_grade("--workers", "2", "--seed", "11"),
        stdin=subprocess.DEVNULL,
        stdout=secondary,
        stderr=secondary,
        env=env_for(course),
    )
    os.close(secondary)
    try:
        chunks = read_pty(primary, proc, timeout=240)
        assert proc.wait(timeout=60) == 0
    finally:
        os.close(primary)
        if proc.poll() is None:
            proc.kill()
    text = "".join(c for _, c in chunks)
    first = f"grading {len(expected)} submission(s) of {LAB} on 2 worker(s)..."
    first_at = when_seen(chunks, first)
    assert first_at < 5, f"the first line took {first_at:.1f} s"  # measured ~1 s here
    assert text.index(first) < text.index(f"[1/{len(expected)}] ")
    for student, score in expected.items():
        assert f"] {student}: {score:g} / 2, " in text, text
    assert "\r" in text  # the bar, redrawn in place
    assert "failed tests " in text
    assert "student" in text.split(f"[{len(expected)}/{len(expected)}]")[-1]  # the final table


@needs_bwrap
def test_json_keeps_stdout_machine_readable_and_progress_goes_to_stderr_as_lines(
    tmp_path: Path,
) -> None:
    """With --json and no terminal: is stdout the JSON alone, and stderr plain per-submission
    lines (no bar)?"""
    course, expected = course_with_class(tmp_path)
    done = subprocess.run(
        introdl_grade("--workers", "2", "--seed", "11", "--json"),
        capture_output=True,
        text=True,
        env=env_for(course),
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    assert {r["student"]: r["score"] for r in payload["rows"]} == expected
    lines = done.stderr.splitlines()
    assert lines[0] == f"grading {len(expected)} submission(s) of {LAB} on 2 worker(s)..."
    graded = [line for line in lines if line.startswith("[")]
    assert len(graded) == len(expected), lines
    assert "\r" not in done.stderr


@needs_bwrap
@pytest.mark.parametrize("workers", ["1", "2"])  # 1: grading in the CLI's own process
def test_ctrl_c_stops_cleanly_keeps_what_landed_and_a_rerun_finishes(
    tmp_path: Path, workers: str
) -> None:
    """Ctrl-C (SIGINT to the foreground process group, as a terminal sends it) after the first
    result: does the batch stop with exit 130 and say how to resume, leave no sandbox running and
    nothing half-written, and does the same command then grade only what had not landed?"""
    course, expected = course_with_class(tmp_path)
    proc = subprocess.Popen(
        introdl_grade("--workers", workers, "--seed", "11"),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env_for(course),
        start_new_session=True,  # its own process group, as a shell's foreground job
        # with Ctrl-C's default action, as a terminal's job has it, even when this suite runs as
        # a background job of a non-interactive shell (which starts its children ignoring SIGINT)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert proc.stdout is not None
    seen = []
    for raw in proc.stdout:
        seen.append(raw.decode())
        if raw.startswith(b"[1/"):
            break
    doomed = psutil.Process(proc.pid).children(recursive=True)
    workdirs = set()  # the working copies of busy and of warm sandboxes (bwrap binds them)
    for process in doomed:
        with contextlib.suppress(psutil.Error):
            workdirs.update(a for a in process.cmdline() if "/introdl-work-" in a)
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=90)
    assert proc.returncode == 130, (seen, out, err)
    assert RESUME in err.decode(), err
    assert_sandboxes_died_with_their_worker(doomed)
    assert workdirs
    assert [w for w in workdirs if Path(w).exists() or is_quota_mount(Path(w))] == []

    landed = {}
    for student in expected:
        path = results_path(course, student, LAB)
        stamp = path.parent / "fingerprint.txt"
        assert path.exists() == stamp.exists(), student  # landed whole, or not at all
        if path.exists():
            landed[student] = path.read_bytes()
    assert 1 <= len(landed) < len(expected), landed

    again = subprocess.run(
        introdl_grade("--workers", "2", "--seed", "11", "--json"),
        capture_output=True,
        text=True,
        env=env_for(course),
        timeout=240,
        check=False,
    )
    assert again.returncode == 0, again.stderr
    rows = {r["student"]: r for r in json.loads(again.stdout)["rows"]}
    assert {s: r["score"] for s, r in rows.items()} == expected
    assert {s: rows[s]["status"] for s in landed} == dict.fromkeys(landed, "unchanged")
    assert {r["status"] for s, r in rows.items() if s not in landed} == {"graded"}
    for student, data in landed.items():
        assert results_path(course, student, LAB).read_bytes() == data

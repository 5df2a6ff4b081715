"""The student phase: a submitted notebook run cell by cell in a real sandboxed kernel."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from introdl.grading.door.student import Student
from introdl.grading.errors import BadInput
from introdl.grading.kernel.launch import start_kernel, sweep_stale
from introdl.grading.kernel.notebook import run_notebook
from introdl.grading.sandbox import processes_of_uid
from introdl.grading.sandbox.cgroups import Cgroups
from introdl.grading.sandbox.limits import TEST_LIMITS
from tests.sandboxed import FIXTURES, needs_bwrap, run_fixture, sandboxed_kernel, test_slot

pytestmark = needs_bwrap


def statuses(run) -> list[str]:  # type: ignore[no-untyped-def]
    return [cell.status for cell in run.cells]


def kinds(run) -> list[str]:  # type: ignore[no-untyped-def]
    return [event.kind for event in run.events]


def test_well_behaved_notebook_runs_every_cell(tmp_path: Path) -> None:
    """Does a correct submission run cell by cell, with outputs, counts and timings recorded?"""
    with sandboxed_kernel(tmp_path, "submitted-numpy-functions") as kernel:
        run = run_fixture(kernel, "submitted-numpy-functions")
        assert set(statuses(run)) == {"ok"}, run.to_dict()
        assert len(run.cells) == 9  # code cells only; the markdown cell is not executed
        assert run.kernel_alive
        assert kernel.alive
        assert run.events == []
        last = run.cells[-1]
        assert last.outputs[0]["output_type"] == "execute_result"
        assert "-1.41" in last.outputs[0]["data"]["text/plain"]
        assert [c.execution_count for c in run.cells] == list(range(1, 10))
        assert kernel.timings["kernel_start"] > 0
        assert kernel.timings["notebook"] > 0
        # the executed copy is a valid notebook with the recorded outputs
        nb = nbformat.read(FIXTURES / "submitted-numpy-functions.ipynb", as_version=4)
        executed = run.executed_notebook(nb)
        nbformat.validate(executed)
        assert executed.cells[-1].outputs[0]["output_type"] == "execute_result"
        json.dumps(run.to_dict())  # results.json can hold it


def test_infinite_loop_is_interrupted_and_the_next_cell_runs(tmp_path: Path) -> None:
    """Does a cell that never ends get interrupted at its timeout, with the kernel kept for later cells?"""
    with sandboxed_kernel(tmp_path, "submitted-infinite-loop") as kernel:
        run = run_fixture(kernel, "submitted-infinite-loop")
        assert statuses(run) == ["ok", "timeout", "ok"]
        loop = run.cells[1]
        assert loop.index == 2
        assert loop.cell_id == "cell-2"
        assert TEST_LIMITS.cell_timeout <= loop.duration < TEST_LIMITS.cell_timeout + 5
        assert kinds(run) == ["cell_timeout"]
        assert run.events[0].cell == 2
        assert Student(kernel).get("after") == 42


def test_loop_that_swallows_interrupts_gets_the_sandbox_killed(tmp_path: Path) -> None:
    """Is a cell that ignores the interrupt killed with its whole sandbox, and reported?"""
    with sandboxed_kernel(tmp_path, "submitted-ignores-interrupt") as kernel:
        run = run_fixture(kernel, "submitted-ignores-interrupt")
        assert statuses(run) == ["ok", "killed", "skipped"]
        # it sleeps: little CPU, so a first grading cannot blame it (tests/test_busy_host.py)
        assert kinds(run) == ["cell_timeout", "host_busy", "kernel_killed"]
        assert not run.kernel_alive
        assert not kernel.alive
        assert run.cells[2].evalue == "the kernel is no longer running"
        # killed means gone, before any shutdown
        assert processes_of_uid(kernel.sandbox.spec.uid) == []


def test_os_exit_is_reported_as_a_dead_kernel(tmp_path: Path) -> None:
    """Does a submission that calls os._exit get 'died' for that cell and 'skipped' after it?"""
    with sandboxed_kernel(tmp_path, "submitted-exits-kernel") as kernel:
        run = run_fixture(kernel, "submitted-exits-kernel")
        assert statuses(run) == ["ok", "died", "skipped"]
        assert kinds(run) == ["kernel_died"]
        assert "exit code" in run.events[0].detail


def test_killing_everything_it_can_only_kills_its_own_sandbox(tmp_path: Path) -> None:
    """Can the submission kill its parent? No: only its own processes die, and that is reported."""
    with sandboxed_kernel(tmp_path, "submitted-kills-parent") as kernel:
        run = run_fixture(kernel, "submitted-kills-parent")
        assert statuses(run) == ["ok", "died", "skipped"]
        assert run.cells[0].outputs[0]["text"].strip() == (
            "{'parent': 'PermissionError', 'init': 'PermissionError'}"
        )
        assert kinds(run) == ["kernel_died"]
    # the grader (this process) is still here, and the context manager found no leftovers


def test_huge_output_is_truncated(tmp_path: Path) -> None:
    """Are megabytes of prints cut to the per-cell cap, and a 100 MB message dropped, with notes?"""
    limits = dataclasses.replace(TEST_LIMITS, cell_timeout=30.0)  # 100 MB takes a while to send
    with sandboxed_kernel(tmp_path, "submitted-huge-output", limits=limits) as kernel:
        run = run_fixture(kernel, "submitted-huge-output")
        assert statuses(run) == ["ok", "ok", "ok"]
        flood, giant, small = run.cells
        assert flood.truncated
        kept = sum(len(o.get("text", "")) for o in flood.outputs)
        assert kept <= TEST_LIMITS.cell_output_bytes + 200
        assert "output truncated by the grader" in flood.outputs[-1]["text"]
        assert giant.truncated
        assert giant.outputs == [
            {
                "output_type": "stream",
                "name": "stderr",
                "text": "\n[output truncated by the grader: an output message was too large to receive]\n",
            }
        ]
        # the link to the kernel survives the oversized message
        assert small.outputs == [{"output_type": "stream", "name": "stdout", "text": "small\n"}]
        assert kinds(run) == ["output_truncated", "output_truncated"]


def test_notebook_budget_skips_the_remaining_cells(tmp_path: Path) -> None:
    """When the whole-notebook budget runs out mid-cell, are later cells skipped and the reason given?"""
    limits = dataclasses.replace(TEST_LIMITS, notebook_timeout=2.0, cell_timeout=30.0)
    with sandboxed_kernel(tmp_path, "submitted-infinite-loop", limits=limits) as kernel:
        run = run_fixture(kernel, "submitted-infinite-loop")
        assert statuses(run) == ["ok", "timeout", "skipped"]
        assert run.cells[1].duration < 5
        assert "budget" in (run.cells[2].evalue or "")
        assert "budget_exhausted" in kinds(run)


def test_memory_hog_is_stopped(tmp_path: Path) -> None:
    """Is a submission that eats memory stopped (MemoryError or OOM kill) and reported as such?"""
    limits = dataclasses.replace(TEST_LIMITS, cell_timeout=30.0)  # filling 1 GiB takes a while
    with sandboxed_kernel(tmp_path, "submitted-memory-hog", limits=limits) as kernel:
        run = run_fixture(kernel, "submitted-memory-hog")
        hog = run.cells[1]
        assert hog.status in ("error", "died"), run.to_dict()
        if hog.status == "error":
            assert hog.ename == "MemoryError"
        assert "memory_exhausted" in kinds(run)


def test_start_failure_leaves_nothing_behind(tmp_path: Path) -> None:
    """Does a bad working copy give a clear error and no leftover runtime directory?"""
    before = set(Path("/tmp").glob("introdl-k*"))
    with pytest.raises(BadInput, match="not a directory"):
        start_kernel(workdir=tmp_path / "missing", slot=test_slot(), limits=TEST_LIMITS)
    assert set(Path("/tmp").glob("introdl-k*")) == before


def test_unreadable_notebook_is_bad_input(tmp_path: Path) -> None:
    """Is a corrupt .ipynb a BadInput naming the file, not a crash?"""
    with sandboxed_kernel(tmp_path) as kernel:
        broken = kernel.sandbox.spec.workdir / "broken.ipynb"
        broken.write_text("{ not json")
        with pytest.raises(BadInput, match=r"broken\.ipynb"):
            run_notebook(kernel, broken)


def test_sweep_removes_what_a_crashed_grader_left(tmp_path: Path) -> None:
    """After a grader died mid-batch, are its old runtime dirs and empty cgroups removed, live ones kept?"""
    old = time.time() - 3600
    stale = tmp_path / "introdl-k9-0123abcd-xyz"
    stale_state = tmp_path / "introdl-bwrap-9-0123abcd-q1"
    live = tmp_path / "introdl-k9-4567beef-abc"
    young = tmp_path / "introdl-k9-89abcdef-new"
    unrelated = tmp_path / "introdl-notes"
    for path in (stale, stale_state, live, young, unrelated):
        (path / "ipc").mkdir(parents=True)
    for path in (stale, stale_state, live, unrelated):
        os.utime(path, (old, old))
    cgroups = Cgroups("9-0123abcd", memory_bytes=64 * 1024 * 1024, pids=8)
    cgroups.create()
    # a running process that names the live directory on its command line, as bwrap does
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", str(live)])
    try:
        removed = sweep_stale(tmp_path)
    finally:
        holder.kill()
        holder.wait()
    assert sorted(removed[:2]) == [str(stale_state), str(stale)]
    assert not stale.exists()
    assert not stale_state.exists()
    assert live.exists()
    assert young.exists()
    assert unrelated.exists()
    assert [path for path in cgroups.created if path.exists()] == []
    assert removed[2:] == (["cgroups introdl-9-0123abcd"] if cgroups.created else [])

"""Real sandboxed kernels for the grading engine's tests (real bubblewrap, real ipykernel)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
import pytest

from introdl.grading.kernel.kernel import SandboxedKernel
from introdl.grading.kernel.launch import start_kernel
from introdl.grading.kernel.notebook import run_notebook
from introdl.grading.sandbox import processes_of_uid
from introdl.grading.sandbox.limits import TEST_LIMITS, Limits

FIXTURES = Path(__file__).resolve().parent / "fixtures"
ROOT = Path(__file__).resolve().parents[1]

needs_bwrap = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("bwrap") is None,
    reason="the bwrap sandbox needs root and bubblewrap (apt-get install -y bubblewrap)",
)


def test_slot() -> int:
    """A sandbox slot no batch run on this machine is likely to use (uids are per slot)."""
    return 3000 + os.getpid() % 900


test_slot.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


@contextmanager
def sandboxed_kernel(
    tmp_path: Path,
    notebook: str | None = None,
    *,
    limits: Limits = TEST_LIMITS,
    datadir: Path | None = None,
    backend: str = "bwrap",
) -> Iterator[SandboxedKernel]:
    """A kernel over a fresh working copy holding fixture `notebook`; checks cleanup afterwards."""
    workdir = tmp_path / "submission"
    workdir.mkdir()
    if notebook is not None:
        shutil.copy(FIXTURES / f"{notebook}.ipynb", workdir)
    kernel = start_kernel(
        workdir=workdir, datadir=datadir, backend=backend, slot=test_slot(), limits=limits
    )
    try:
        yield kernel
    finally:
        kernel.shutdown()
    assert_no_leftovers(kernel)


def run_fixture(kernel: SandboxedKernel, notebook: str):  # type: ignore[no-untyped-def]
    return run_notebook(kernel, kernel.sandbox.spec.workdir / f"{notebook}.ipynb")


def assert_no_leftovers(kernel: SandboxedKernel) -> None:
    """No process of the sandbox uid, no launcher left, no runtime dir, no cgroup."""
    if kernel.sandbox.sandboxed:
        assert processes_of_uid(kernel.sandbox.spec.uid) == []
    launcher = kernel.launcher_pid
    assert launcher is not None
    mine = [p.pid for p in psutil.Process().children(recursive=True)]
    assert launcher not in mine
    assert not kernel.runtime_dir.exists()
    cgroups = getattr(kernel.sandbox, "cgroups", None)
    if cgroups is not None:
        assert cgroups.dirs == {}
        assert [path for path in cgroups.created if path.exists()] == []


def fill_working_copy(chunk: int) -> str:
    """Student code writing files of CHUNK bytes until an OSError; sets `written` and `failure`."""
    return (
        "import errno\n"
        "written, failure = 0, None\n"
        "for i in range(1000):\n"
        "    try:\n"
        "        with open(f'chunk{i}.bin', 'wb') as f:\n"
        f"            f.write(bytes({chunk}))\n"
        f"        written += {chunk}\n"
        "    except OSError as err:\n"
        "        failure = errno.errorcode[err.errno]\n"
        "        break\n"
    )

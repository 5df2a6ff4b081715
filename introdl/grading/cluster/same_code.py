"""The coordinator and its Dask workers must run the same `introdl`.

Dask sends a task's function and arguments (`grade_on_worker`, `GradeOptions`, the shipped
submission) by reference: each worker imports them from its own installed `introdl`, and the
student's notebook imports the lab helpers from there too. A worker with other code (a grader
image built from an older checkout, a stale venv) would grade by other rules, or fail half way in
a confusing place. So the coordinator compares a fingerprint of its `introdl` (the sha256 of every
.py file, by path) with each worker's before anything is sent, and every task checks it again on
its worker (a worker that joins mid-batch); a difference stops the batch, saying what to rebuild.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import Any

from introdl.grading.errors import BadInput

PACKAGE = Path(__file__).resolve().parents[2]  # the introdl package this process imports


def fingerprint(package: Path = PACKAGE) -> str:
    """sha256 over the package's .py files: their paths inside it and their contents."""
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        digest.update(path.relative_to(package).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


@functools.cache
def own_fingerprint() -> str:
    return fingerprint()


def worker_code() -> tuple[str, str]:
    """(fingerprint, where) of the introdl that this process (a Dask worker) imports."""
    return own_fingerprint(), str(PACKAGE)


def mismatch(name: str, theirs: str, where: str) -> BadInput:
    return BadInput(
        f"Dask worker {name} runs other introdl code ({where}, fingerprint {theirs[:12]}) than "
        f"this coordinator ({PACKAGE}, fingerprint {own_fingerprint()[:12]}); tasks run the "
        "worker's own copy, so both must be the same. Rebuild the grader image from this "
        "checkout (scripts/grader-image here; docs/cluster.md) or install this introdl on the "
        "workers, then run the batch again"
    )


def check_same_code(client: Any) -> None:
    """Stop, in words, when any worker of CLIENT's cluster runs other introdl code."""
    try:
        found: dict[str, tuple[str, str]] = client.run(worker_code)
    except (ImportError, AttributeError) as err:  # a worker's introdl predates this check
        raise BadInput(
            f"a Dask worker runs an older introdl than this coordinator ({err}): rebuild the "
            "grader image from this checkout (scripts/grader-image here; docs/cluster.md)"
        ) from err
    names = {address: str(info.get("name", address)) for address, info in _workers(client)}
    for address, (theirs, where) in sorted(found.items()):
        if theirs != own_fingerprint():
            raise mismatch(names.get(address, address), theirs, where)


def refuse_other_code(expected: str, name: str) -> None:
    """On a worker, before grading: the coordinator's fingerprint must be this worker's."""
    if expected != own_fingerprint():
        raise BadInput(
            f"Dask worker {name} runs other introdl code ({PACKAGE}, fingerprint "
            f"{own_fingerprint()[:12]}) than the coordinator (fingerprint {expected[:12]}): "
            "rebuild the grader image from the coordinator's checkout (docs/cluster.md), then "
            "run the batch again"
        )


def _workers(client: Any) -> list[tuple[str, dict[str, Any]]]:
    return list(client.scheduler_info().get("workers", {}).items())

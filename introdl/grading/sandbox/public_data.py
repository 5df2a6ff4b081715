"""The data directory a sandbox sees: every cached data set that students may see, nothing else.

The registry's cache also holds grader-only sets (held-out labels) and raw downloads. The sandbox
gets a separate view, `<cache>/.sandbox-view/`, rebuilt from hard links (copies across file
systems) of the public data sets' folders, and mounted read-only.

A lab declares the data sets it grades with in `grader_tests/<lab>/datasets.txt` (one name a
line, `# comments`, a name followed by `optional` where the lab can do without it):
`public_data_dir(root, lab)` fetches the required ones into the cache first, on the grader's side
(the sandbox has no network and a read-only view). A grading host that cannot get one refuses
to grade with `DataMissing`, naming the set and the remedy: without it, the student's notebook
would fail on its first data cell and the student would lose points for the host's fault.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import introdl.data as registry
from introdl.grading.errors import BadInput

VIEW = ".sandbox-view"
DATASETS_FILE = "datasets.txt"


class DataMissing(BadInput):
    """A data set a lab grades with is not on this grading host and could not be fetched."""


def lab_datasets(root: Path, lab: str) -> list[tuple[str, bool]]:
    """(name, required) of the data sets LAB declares; [] when it declares none."""
    declared = root / "grader_tests" / lab / DATASETS_FILE
    if not declared.is_file():
        return []
    sets = []
    for number, line in enumerate(declared.read_text(encoding="utf-8").splitlines(), 1):
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        if words[0] not in registry.REGISTRY or words[1:] not in ([], ["optional"]):
            raise BadInput(
                f"{declared}, line {number}: {line.strip()!r} is not `NAME` or `NAME optional` "
                f"with a known data set (known: {', '.join(registry.REGISTRY)})"
            )
        sets.append((words[0], not words[1:]))
    return sets


def sandbox_datasets(root: Path, lab: str) -> tuple[str, ...]:
    """The data sets LAB declares that its sandbox's /data may hold (the public ones): what a
    warm kernel checks before the notebook arrives (introdl/grading/pool.py). A bad datasets.txt
    gives () here; building the sandbox's data reports it."""
    try:
        declared = lab_datasets(root, lab)
    except BadInput:
        return ()
    public = set(registry.public_datasets())
    return tuple(name for name, _ in declared if name in public)


def ensure_lab_data(root: Path, lab: str) -> None:
    """Fetch the data sets LAB requires that this host's cache lacks. `fetch` verifies a cached
    set's checksums once per process, then only that its files are unchanged (a stat each)."""
    for name, required in lab_datasets(root, lab):
        if not required:
            continue
        try:
            registry.fetch(name, progress=False)
        except registry.DataUnavailable as err:
            raise DataMissing(
                f"{lab} grades with the data set {name} (grader_tests/{lab}/{DATASETS_FILE}) and "
                f"this grading host cannot get it, so nothing of {lab} is graded here: {err}"
            ) from err


def public_data_dir(root: Path | None = None, lab: str | None = None) -> Path:
    """Build (or refresh) the sandbox's view of the public, cached data sets; returns its path.
    With ROOT and LAB, the data sets LAB requires are fetched first (`ensure_lab_data`)."""
    if root is not None and lab is not None:
        ensure_lab_data(root, lab)
    cache = registry.cache_dir()
    view = cache / VIEW
    view.mkdir(parents=True, exist_ok=True)
    os.chmod(view, 0o755)
    wanted = {name for name in registry.public_datasets() if (cache / name).is_dir()}
    for stale in [p for p in view.iterdir() if p.name not in wanted]:
        shutil.rmtree(stale) if stale.is_dir() and not stale.is_symlink() else stale.unlink()
    for name in wanted:
        mirror(cache / name, view / name)
    return view


def mirror(src: Path, dest: Path) -> None:
    """Make DEST hold the same regular files as SRC (hard links where possible), world-readable."""
    dest.mkdir(parents=True, exist_ok=True)
    os.chmod(dest, 0o755)
    for path in src.rglob("*"):
        target = dest / path.relative_to(src)
        if path.is_symlink():
            continue
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            os.chmod(target, 0o755)
            continue
        if target.exists() and os.path.samefile(path, target):
            continue
        target.unlink(missing_ok=True)
        try:
            os.link(path, target)
        except OSError:
            shutil.copy2(path, target)
        os.chmod(target, 0o644)

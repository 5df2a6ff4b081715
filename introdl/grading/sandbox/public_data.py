"""The data directory a sandbox sees: every cached data set that students may see, nothing else.

The registry's cache also holds grader-only sets (held-out labels) and raw downloads. The sandbox
gets a separate view, `<cache>/.sandbox-view/`, rebuilt from hard links (copies across file
systems) of the public data sets' folders, and mounted read-only.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import introdl.data as registry

VIEW = ".sandbox-view"


def public_data_dir() -> Path:
    """Build (or refresh) the sandbox's view of the public, cached data sets; returns its path."""
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

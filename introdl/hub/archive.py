"""Folders travel through the exchange as gzip'd tar archives of plain files.

The service stores an archive as it came, after `check` has read it whole: regular files and
folders only, relative names, bounded size. Whoever unpacks one (`unpack`) does so with Python's
`data` filter, so a crafted archive cannot write outside its folder.
"""

from __future__ import annotations

import fnmatch
import io
import shutil
import tarfile
from pathlib import Path, PurePosixPath

# Written by the exchange itself on the receiving side; a sender's copy is never trusted.
EXCHANGE_FILES = frozenset({"timestamp.txt", "submission_secret.txt"})


class ArchiveError(ValueError):
    """An archive the exchange will not take, with the reason in words."""


def pack(folder: Path, *, ignore: tuple[str, ...] = (), max_file_bytes: int | None = None) -> bytes:
    """A tar.gz of `folder`'s files (names relative to it), skipping ignored names and big files."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in sorted(folder.rglob("*")):
            rel = path.relative_to(folder)
            if any(fnmatch.fnmatch(part, pattern) for part in rel.parts for pattern in ignore):
                continue
            if rel.as_posix() in EXCHANGE_FILES or path.is_symlink() or not path.is_file():
                continue
            if max_file_bytes is not None and path.stat().st_size > max_file_bytes:
                continue
            tar.add(path, arcname=rel.as_posix(), recursive=False)
    return buffer.getvalue()


def check(blob: bytes, *, max_bytes: int) -> list[str]:
    """The file names inside a tar.gz, or ArchiveError if it is not one the exchange takes."""
    if len(blob) > max_bytes:
        raise ArchiveError(f"the archive is {len(blob)} bytes; the limit is {max_bytes}")
    names: list[str] = []
    total = 0
    try:
        with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar:
            for member in tar:
                name = PurePosixPath(member.name)
                if name.is_absolute() or ".." in name.parts:
                    raise ArchiveError(
                        f"the archive names a file outside its folder: {member.name}"
                    )
                if not (member.isfile() or member.isdir()):
                    raise ArchiveError(f"the archive holds a link or a device: {member.name}")
                total += member.size
                if total > 8 * max_bytes:
                    raise ArchiveError("the archive unpacks to more than the exchange allows")
                if member.isfile():
                    names.append(name.as_posix())
    except (tarfile.TarError, EOFError, OSError) as error:
        raise ArchiveError(f"not a gzip'd tar archive: {error}") from error
    return sorted(names)


def unpack(blob: bytes, dest: Path) -> list[Path]:
    """Unpack an archive into `dest` (created): plain files and folders only, never outside it.

    Done by hand rather than with `extractall(filter="data")`, which Debian 12's Python 3.11.2
    (the interpreter of the hub's user servers) does not have. The exchange's own files are left out.
    """
    dest.mkdir(parents=True, exist_ok=True)
    top = dest.resolve()
    written: list[Path] = []
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar:
        for member in tar:
            name = PurePosixPath(member.name)
            if name.is_absolute() or ".." in name.parts or not (member.isfile() or member.isdir()):
                raise ArchiveError(
                    f"refusing to unpack {member.name!r} (a link or outside the folder)"
                )
            target = (top / name).resolve()
            if top not in (target, *target.parents):
                raise ArchiveError(f"refusing to unpack {member.name!r}: it leaves {dest}")
            if member.isdir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            if name.as_posix() in EXCHANGE_FILES:
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            source = tar.extractfile(member)
            assert source is not None  # a regular file always has content
            with source, target.open("wb") as out:
                shutil.copyfileobj(source, out)
            written.append(target)
    return written

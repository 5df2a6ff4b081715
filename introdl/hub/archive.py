"""Folders travel through the exchange as gzip'd tar archives of plain files.

`check` reads every member of an archive before anything is stored or written: plain files and
folders only, relative names a file system can hold (each part at most 255 bytes, the whole name,
the depth and the number of members bounded), a bounded unpacked size and compression ratio. The
gzip stream is read through a counter, so a bomb costs at most the bound, never what it unpacks
to. `unpack` checks first, then writes; it is done by hand because Debian 12's Python 3.11.2 (the
interpreter of the hub's user servers) lacks tarfile's extraction filters.

The bounds are the course's (`c.ExchangeService.*` in nbgrader_config.py, read by `Limits.from_config`);
the same `Limits` guard the service at upload and nbgrader's collect at unpacking, so an archive
stored before a bound was tightened, or by another version, is still refused by name.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import gzip
import io
import shutil
import tarfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

# Written by the exchange itself on the receiving side; a sender's copy is never trusted.
EXCHANGE_FILES = frozenset({"timestamp.txt", "submission_secret.txt"})
MIB = 1024 * 1024
BLOCK = 512
# A pax or GNU long-name header carries a name and a few attributes, never more than this; tarfile
# reads such a header into memory whole, so a larger one is refused before tarfile sees it.
MAX_META_BYTES = 64 * 1024
META_TYPES = frozenset({b"x", b"g", b"L", b"K"})
# Below this unpacked size the ratio is not judged: a small notebook of printed lines packs 50x.
RATIO_FLOOR = 16 * MIB
# What the course's `c.ExchangeService` section calls each bound, and its unit in bytes.
CONFIG_KEYS = {
    "max_upload_mb": ("max_archive_bytes", MIB),
    "max_unpacked_mb": ("max_unpacked_bytes", MIB),
    "max_ratio": ("max_ratio", 1),
    "max_files": ("max_files", 1),
    "max_depth": ("max_depth", 1),
    "max_name_bytes": ("max_name_bytes", 1),
    "max_path_bytes": ("max_path_bytes", 1),
    "quota_mb": ("quota_bytes", MIB),
    "submissions_per_hour": ("submissions_per_hour", 1),
}


class ArchiveError(ValueError):
    """An archive the exchange will not take or unpack, with the reason in words."""


@dataclass(frozen=True)
class Limits:
    """What one archive may hold, and what one student may store (the defaults: docs/hub.md)."""

    max_archive_bytes: int = 200 * MIB  # the gzip'd upload (also the web server's body limit)
    max_unpacked_bytes: int = 500 * MIB  # the files it holds, added up
    max_ratio: int = 100  # unpacked / packed, for archives unpacking past RATIO_FLOOR
    max_files: int = 2000  # files and folders
    max_depth: int = 16  # folders deep
    max_name_bytes: int = 255  # one part of a name (ext4, xfs, btrfs: 255 at most)
    max_path_bytes: int = 1024  # the whole relative name
    quota_bytes: int = 2048 * MIB  # every hand-in of one student, as stored (service only)
    submissions_per_hour: int = 30  # hand-ins of one student, every lab (service only)

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> Limits:
        """The course's `c.ExchangeService` section (keys in CONFIG_KEYS); others are refused."""
        values: dict[str, int] = {}
        for key, value in section.items():
            if key not in CONFIG_KEYS:
                raise ArchiveError(
                    f"c.ExchangeService.{key} is not an exchange limit; use one of "
                    + ", ".join(CONFIG_KEYS)
                )
            field, unit = CONFIG_KEYS[key]
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise ArchiveError(f"c.ExchangeService.{key} = {value!r}: give a positive number")
            values[field] = int(value * unit)
        values["max_name_bytes"] = min(values.get("max_name_bytes", 255), 255)
        return cls(**values)

    def to_config(self) -> dict[str, int]:
        """The inverse of from_config (whole MiB), for a limits file or a generated config."""
        fields = dataclasses.asdict(self)
        return {key: fields[field] // unit for key, (field, unit) in CONFIG_KEYS.items()}

    def stream_budget(self) -> int:
        """Bytes of tar stream a legal archive can hold: its files plus headers and padding."""
        per_member = 4 * BLOCK + MAX_META_BYTES
        return self.max_unpacked_bytes + (self.max_files + 1) * per_member + 20 * BLOCK


def show(name: str, width: int = 80) -> str:
    """A member's name fit for a log line: control characters escaped, the middle of a long one cut."""
    text = name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    text = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)
    if len(text) > width:
        size = len(name.encode("utf-8", "surrogateescape"))
        return f"'{text[: width - 25]}...{text[-20:]}' ({size} bytes)"
    return f"'{text}'"


def name_problem(name: str, limits: Limits) -> str | None:
    """Why a file system, the exchange or a log cannot take this relative name; None if fine."""
    try:
        raw = name.encode("utf-8")
    except UnicodeEncodeError:
        return "its name is not UTF-8 text"
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        return "its name holds a control character (a new line, an escape...)"
    path = PurePosixPath(name)
    if not name or path.is_absolute() or ".." in path.parts:
        return "its name points outside the folder (absolute, or with ..)"
    for part in path.parts:
        size = len(part.encode("utf-8"))
        if size > limits.max_name_bytes:
            return (
                f"one part of its name is {size} bytes long; a file system holds at most "
                f"{limits.max_name_bytes} bytes"
            )
    if len(raw) > limits.max_path_bytes:
        return f"its name is {len(raw)} bytes long; the limit is {limits.max_path_bytes} bytes"
    if len(path.parts) > limits.max_depth:
        return f"it is {len(path.parts)} folders deep; the limit is {limits.max_depth}"
    return None


class _Counted(io.RawIOBase):
    """The decompressed bytes of a gzip blob, refused past `budget` (a bomb costs the budget)."""

    def __init__(self, blob: bytes, budget: int) -> None:
        self._gzip = gzip.GzipFile(fileobj=io.BytesIO(blob), mode="rb")
        self._budget = budget
        self.seen = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = 1 << 20
        data = self._gzip.read(min(size, 1 << 20))
        self.seen += len(data)
        if self.seen > self._budget:
            raise ArchiveError(
                f"the archive unpacks to more than {self._budget // MIB} MiB of tar stream "
                "(a compression bomb, or more than the course allows): it was not unpacked"
            )
        return data


def _tar_size(field: bytes) -> int:
    if field[:1] in (b"\x80", b"\xff"):  # GNU base-256
        value = int.from_bytes(field[1:], "big")
        return -value if field[:1] == b"\xff" else value
    text = field.split(b"\0", 1)[0].strip(b" \0")
    return int(text, 8) if text else 0


def _read_exact(stream: _Counted, size: int) -> bytes:
    chunks = []
    while size > 0:
        data = stream.read(size)
        if not data:
            break
        chunks.append(data)
        size -= len(data)
    return b"".join(chunks)


def _scan_headers(blob: bytes, limits: Limits) -> None:
    """First pass, raw 512-byte headers only: no metadata header too large for tarfile to read."""
    stream = _Counted(blob, limits.stream_budget())
    total = 0
    while True:
        header = _read_exact(stream, BLOCK)
        if len(header) < BLOCK or header == bytes(BLOCK):
            return  # the end (a truncated archive is tarfile's to report)
        try:
            size = _tar_size(header[124:136])
        except ValueError as error:
            raise ArchiveError(f"not a tar archive: a header has a bad size ({error})") from error
        if size < 0:
            raise ArchiveError("not a tar archive: a header has a negative size")
        if header[156:157] in META_TYPES:
            if size > MAX_META_BYTES:
                raise ArchiveError(
                    f"the archive has a name or attribute header of {size} bytes "
                    f"(at most {MAX_META_BYTES} make sense): it was not unpacked"
                )
        else:  # the sizes the headers declare: a bomb is refused before its data is read
            total += size
            if total > limits.max_unpacked_bytes:
                raise ArchiveError(
                    f"the archive unpacks to more than {limits.max_unpacked_bytes // MIB} MiB "
                    f"(the course's limit): it was not unpacked"
                )
            _check_ratio(total, len(blob), limits)
        remaining = -(-size // BLOCK) * BLOCK
        while remaining > 0:
            data = stream.read(min(remaining, 1 << 20))
            if not data:
                return
            remaining -= len(data)


def check(blob: bytes, limits: Limits | None = None) -> list[str]:
    """The file names inside a tar.gz, or ArchiveError naming the first member it cannot take.

    Reads headers only (the data is decompressed to reach the next header, within the budget);
    nothing is written anywhere.
    """
    limits = limits or Limits()
    if len(blob) > limits.max_archive_bytes:
        raise ArchiveError(
            f"the archive is {len(blob) // MIB} MiB ({len(blob)} bytes); the course's limit is "
            f"{limits.max_archive_bytes // MIB} MiB: leave out large files (data, checkpoints)"
        )
    files: list[str] = []
    folders: set[str] = set()
    total = members = 0
    try:
        _scan_headers(blob, limits)
        stream = _Counted(blob, limits.stream_budget())
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            for member in tar:
                members += 1
                if members > limits.max_files:
                    raise ArchiveError(
                        f"the archive holds more than {limits.max_files} files and folders, "
                        "the course's limit"
                    )
                if member.type not in (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.DIRTYPE):
                    raise ArchiveError(
                        f"the archive holds {show(member.name)}, which is not a plain file or "
                        "folder (a link, a device, a sparse file)"
                    )
                problem = name_problem(member.name, limits)
                if problem:
                    raise ArchiveError(f"the archive holds {show(member.name)}: {problem}")
                name = PurePosixPath(member.name)
                folders.update(p.as_posix() for p in name.parents if p.as_posix() != ".")
                if member.isdir():
                    folders.add(name.as_posix())
                    continue
                total += member.size
                if total > limits.max_unpacked_bytes:
                    raise ArchiveError(
                        f"the archive unpacks to more than {limits.max_unpacked_bytes // MIB} MiB "
                        f"(the course's limit), reached at {show(member.name)}"
                    )
                files.append(name.as_posix())
    except ArchiveError:
        raise
    except (tarfile.TarError, EOFError, OSError, zlib.error, UnicodeError) as error:
        raise ArchiveError(f"not a gzip'd tar archive: {error}") from error
    clash = sorted(set(files) & folders)
    if clash:
        raise ArchiveError(f"the archive holds {show(clash[0])} both as a file and as a folder")
    _check_ratio(total, len(blob), limits)
    return sorted(set(files))


def _check_ratio(total: int, packed: int, limits: Limits) -> None:
    if total > RATIO_FLOOR and total > limits.max_ratio * packed:
        raise ArchiveError(
            f"the archive unpacks to more than {total // max(packed, 1)} times its size "
            f"({packed} bytes to {total // MIB} MiB or more; a compression bomb?); the course's "
            f"limit is {limits.max_ratio} times: it was not unpacked"
        )


def select(
    folder: Path,
    *,
    ignore: tuple[str, ...] = (),
    max_file_bytes: int | None = None,
    limits: Limits | None = None,
) -> tuple[list[Path], list[tuple[str, str]]]:
    """The files of `folder` to pack, and (name, why) for each file left out."""
    limits = limits or Limits()
    chosen: list[Path] = []
    left_out: list[tuple[str, str]] = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        name = rel.as_posix()
        if any(fnmatch.fnmatch(part, pattern) for part in rel.parts for pattern in ignore):
            if not any(fnmatch.fnmatch(p, pat) for p in rel.parts[:-1] for pat in ignore):
                left_out.append((name, "the course's ignore list leaves it out"))
            continue
        if name in EXCHANGE_FILES:
            continue
        if path.is_symlink():
            left_out.append((name, "it is a symbolic link, not a file"))
            continue
        if not path.is_file():
            continue
        problem = name_problem(name, limits)
        if problem:
            left_out.append((name, problem))
            continue
        size = path.stat().st_size
        if max_file_bytes is not None and size > max_file_bytes:
            left_out.append(
                (
                    name,
                    f"it is {size / 1e6:.1f} MB; the course takes files up to "
                    f"{max_file_bytes / 1e6:.1f} MB (CourseDirectory.max_file_size)",
                )
            )
            continue
        chosen.append(path)
    return chosen, left_out


def pack(folder: Path, *, ignore: tuple[str, ...] = (), max_file_bytes: int | None = None) -> bytes:
    """A tar.gz of `folder`'s files (names relative to it), skipping ignored names and big files."""
    return pack_files(folder, select(folder, ignore=ignore, max_file_bytes=max_file_bytes)[0])


def pack_files(folder: Path, paths: list[Path]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in paths:
            tar.add(path, arcname=path.relative_to(folder).as_posix(), recursive=False)
    return buffer.getvalue()


def unpack(blob: bytes, dest: Path, limits: Limits | None = None) -> list[Path]:
    """Check the whole archive, then unpack it into `dest` (created): plain files and folders only.

    Nothing is written when `check` refuses. The exchange's own files are left out.
    """
    check(blob, limits)
    dest.mkdir(parents=True, exist_ok=True)
    top = dest.resolve()
    written: list[Path] = []
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar:
        for member in tar:
            name = PurePosixPath(member.name)
            if name.is_absolute() or ".." in name.parts or not (member.isfile() or member.isdir()):
                raise ArchiveError(
                    f"refusing to unpack {show(member.name)} (a link or outside the folder)"
                )
            target = (top / name).resolve()
            if top not in (target, *target.parents):
                raise ArchiveError(f"refusing to unpack {show(member.name)}: it leaves {dest}")
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

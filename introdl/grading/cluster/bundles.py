"""Content-addressed bundles: a canonical tar of some files, named by its sha256, cached by hash.

The coordinator packs (`pack`): regular files only, sorted by name, every owner, date and mode
fixed, so the same files always give the same bytes and the same hash. A worker installs
(`install`): it checks the bytes against the hash they were sent under (a mismatch is a clear
error, nothing is unpacked), unpacks into a fresh folder of its own bundle cache refusing anything
but plain files and folders (no absolute paths, no `..`, no links, no devices), then renames that
folder to the hash, so a half-unpacked bundle is never seen and two workers sharing a cache
install it once. Installed bundles are kept: the next batch finds them by hash.

The bundle cache is `$INTRODL_BUNDLE_DIR`, else `~/.cache/introdl-bundles` (a disk local to the
worker; old hashes may be deleted whenever no batch runs).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import shutil
import tarfile
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from introdl.grading.errors import BadInput, disk_full_errno

BUNDLE_DIR_ENV = "INTRODL_BUNDLE_DIR"


class BundleError(BadInput):
    """A bundle that cannot be packed, sent or installed; the message says where and what to do."""


@dataclass(frozen=True)
class Bundle:
    """A canonical tar (`data`) and its sha256; `what` names it for people."""

    sha256: str
    data: bytes
    what: str


def pack(files: Iterable[tuple[str, Path]], what: str) -> Bundle:
    """A bundle of FILES, given as (name inside the bundle, file on this machine) pairs."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, source in sorted(files):
            check_name(name, what)
            if source.is_symlink() or not source.is_file():
                raise BundleError(
                    f"{source} is not a regular file, so it cannot go into the bundle of {what}; "
                    "replace the link or special file with the file itself"
                )
            info = tarfile.TarInfo(name)
            info.size = source.stat().st_size
            info.mode, info.mtime, info.uid, info.gid = 0o644, 0, 0, 0
            info.uname = info.gname = ""
            with source.open("rb") as fh:
                tar.addfile(info, fh)
    data = buffer.getvalue()
    return Bundle(hashlib.sha256(data).hexdigest(), data, what)


def check_name(name: str, what: str) -> None:
    """Refuse a member name that could land outside the folder it is unpacked into."""
    path = PurePosixPath(name)
    if (
        not name
        or "\0" in name
        or path.is_absolute()
        or any(part in ("..", ".", "") for part in name.split("/"))
    ):
        raise BundleError(
            f"the bundle of {what} has an entry named {name!r}, which could land outside its "
            "folder; refused (rebuild the bundle from plain relative file names)"
        )


def cache_dir() -> Path:
    """This worker's bundle cache (created if missing); a clear error where it is not writable."""
    raw = os.environ.get(BUNDLE_DIR_ENV)
    folder = Path(raw).expanduser() if raw else Path.home() / ".cache" / "introdl-bundles"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise BundleError(
            f"the bundle cache {folder} cannot be created ({err.strerror}); set {BUNDLE_DIR_ENV} "
            "to a writable folder on the worker's local disk"
        ) from err
    if not os.access(folder, os.W_OK | os.X_OK):
        raise BundleError(
            f"the bundle cache {folder} is not writable by this worker (uid {os.geteuid()}); "
            f"make it writable or set {BUNDLE_DIR_ENV} to a writable folder on the worker's "
            "local disk"
        )
    with contextlib.suppress(OSError):  # sandboxes read installed bundles (as bind mounts)
        os.chmod(folder, 0o755)
    return folder


def verify(data: bytes, sha256: str, what: str) -> None:
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha256:
        raise BundleError(
            f"the bundle of {what} arrived with sha256 {actual[:16]}..., not the "
            f"{sha256[:16]}... it was sent as: it was damaged on the way, so nothing was "
            "unpacked. Run the batch again; if it repeats, check that the coordinator and the "
            "workers run the same introdl version and the worker's memory and network"
        )


def installed(sha256: str, what: str) -> Path:
    """The folder of an installed bundle, or a clear error where this worker has none."""
    folder = cache_dir() / sha256
    if not folder.is_dir():
        raise BundleError(
            f"the bundle of {what} ({sha256[:16]}...) is not in this worker's bundle cache "
            f"{folder.parent}: the plugin that installs it failed or did not run here (see this "
            "worker's log); restart the worker and run the batch again"
        )
    return folder


def install(bundle: Bundle, finish: Callable[[Path], None] | None = None) -> Path:
    """Verify BUNDLE, unpack it into the cache under its hash (once), and return that folder.

    FINISH, if given, completes the unpacked folder (a view of it) before it is published.
    """
    verify(bundle.data, bundle.sha256, bundle.what)
    cache = cache_dir()
    target = cache / bundle.sha256
    if target.is_dir():
        return target
    try:
        fresh = Path(tempfile.mkdtemp(prefix=f".{bundle.sha256[:16]}-", dir=cache))
        try:
            unpack(bundle.data, fresh, bundle.what)
            if finish is not None:
                finish(fresh)
            os.chmod(fresh, 0o755)
            with contextlib.suppress(FileExistsError, OSError):
                os.rename(fresh, target)  # an existing target: another worker installed it first
        finally:
            shutil.rmtree(fresh, ignore_errors=True)
    except OSError as err:
        if disk_full_errno(err):
            raise BundleError(
                f"no space left in the bundle cache {cache} for the bundle of {bundle.what} "
                f"({len(bundle.data) / 2**20:.1f} MB packed): free space there (old bundles, "
                f"named by hash, may be deleted), or set {BUNDLE_DIR_ENV} to a larger local disk"
            ) from err
        raise BundleError(
            f"the bundle of {bundle.what} could not be unpacked into {cache} ({err}); make that "
            f"folder writable or set {BUNDLE_DIR_ENV} to another local folder"
        ) from err
    if not target.is_dir():
        raise BundleError(f"the bundle of {bundle.what} could not be published as {target}")
    return target


def unpack(data: bytes, dest: Path, what: str) -> None:
    """Unpack a bundle's plain files into DEST, refusing any other kind of entry."""
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        for member in tar:
            check_name(member.name, what)
            if member.isdir():
                continue
            if not member.isfile():
                raise BundleError(
                    f"the bundle of {what} has {member.name!r}, which is not a plain file (a "
                    "link or device); refused, nothing of it is used"
                )
            target = dest / member.name
            target.parent.mkdir(parents=True, exist_ok=True)
            source = tar.extractfile(member)
            assert source is not None  # a regular file always has contents
            with source, target.open("xb") as out:
                shutil.copyfileobj(source, out)
            os.chmod(target, 0o644)
    for folder in [dest, *(p for p in dest.rglob("*") if p.is_dir())]:
        os.chmod(folder, 0o755)

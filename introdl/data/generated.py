"""The offline face-detection data set of the debiasing lab: real LFW faces, skewed on purpose.

This is NOT CelebA. The lab's own training set (``train_face.h5``: CelebA faces vs ImageNet
non-faces) needs the network; this one is made here, offline, from images that the scikit-image
wheel ships:

- faces: the 100 faces of Labeled Faces in the Wild in ``skimage.data.lfw_subset()`` (25x25
  grayscale crops). 80 identities are for training, the other 20 for testing only.
- non-faces: the 100 non-face patches of the same subset, and crops of scikit-image's colour
  photographs (a cup of coffee, a cat, a rocket, the Hubble deep field, a retina, a tissue stain).

Every image is cropped at random, mirrored at random, upsampled to 64x64 (bilinear) and coloured.
Faces get a *skin-tone-like transform* (a multiplicative RGB tint and a brightness), in one of two
tone groups: ``light`` (the majority) or ``dark``. Exactly ``round(dark_fraction * n)`` of the
training faces, chosen with the seed, are dark: that fraction is the control knob of the
under-representation (default `DARK_FRACTION`, seed `SEED`). Non-faces are tinted with random
colours and brightnesses, dark ones included, so that "dark" alone does not mean "face".

The test file holds the 20 held-out identities twice, once per tone (the same crops, so the two
groups differ only in tone), and held-out non-faces. Both files use the face-set schema of the
lab (``images`` uint8 (N, 64, 64, 3) BGR, ``labels`` (N, 1) with 1.0 = face) plus ``groups``
(N,) int8 (`GROUPS`), so one loader reads the real and the generated set.

Only IEEE-exact arithmetic (+, -, *, /) and the seeded PCG64 generator's uniforms are used, so the
files hold the same bytes on every platform; `introdl.data` checks them by a digest of the arrays.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

Array = np.ndarray[Any, Any]

SEED = 2019  # the year of the DB-VAE paper
DARK_FRACTION = 0.05  # of the training faces; the under-represented group
SIZE = 64
TRAIN_IDENTITIES = 80  # of the 100 LFW faces; the other 20 are test-only
AUGMENT_PER_FACE = 25  # crops per training face: 80 x 25 = 2,000 training faces
TRAIN_NON_FACES = 2000
TEST_CROPS_PER_FACE = 5  # 20 x 5 = 100 test faces per tone group
TEST_NON_FACES = 100

GROUPS = {0: "non-face", 1: "light", 2: "dark"}  # the `groups` codes
# RGB multipliers and brightness ranges of the two tone groups (a tint of the grayscale face).
TONES = {
    "light": ((1.00, 0.84, 0.72), (1.00, 1.25)),
    "dark": ((0.58, 0.41, 0.30), (0.80, 1.05)),
}
COLOUR_PHOTOS_TRAIN = ("coffee", "chelsea", "rocket", "hubble_deep_field", "retina")
COLOUR_PHOTOS_TEST = ("immunohistochemistry",)

TRAIN_FILE = "train_faces.h5"
TEST_FILE = "test_faces.h5"


def resample(image: Array, top: float, left: float, size: float, out: int = SIZE) -> Array:
    """A (size x size) square of IMAGE (h, w[, c]) at (top, left), bilinearly sampled to out x out.

    Pixel centres are at half-integers (like PIL); samples outside the image take the edge value.
    """
    h, w = image.shape[:2]
    centres = (np.arange(out) + 0.5) * (size / out) - 0.5  # (out,)
    ys = np.clip(top + centres, 0, h - 1)
    xs = np.clip(left + centres, 0, w - 1)
    y0 = np.minimum(ys.astype(np.int64), h - 2)
    x0 = np.minimum(xs.astype(np.int64), w - 2)
    wy, wx = ys - y0, xs - x0
    if image.ndim == 3:
        wy, wx = wy[:, None, None], wx[None, :, None]
    else:
        wy, wx = wy[:, None], wx[None, :]
    rows0, rows1 = image[y0], image[y0 + 1]
    top_row = rows0[:, x0] * (1 - wx) + rows0[:, x0 + 1] * wx
    bottom_row = rows1[:, x0] * (1 - wx) + rows1[:, x0 + 1] * wx
    return np.asarray(top_row * (1 - wy) + bottom_row * wy)  # (out, out[, c])


def random_crop(image: Array, rng: np.random.Generator, min_fraction: float) -> Array:
    """A random square crop of at least MIN_FRACTION of the shorter side, mirrored half the time."""
    h, w = image.shape[:2]
    side = min(h, w) * rng.uniform(min_fraction, 1.0)
    top, left = rng.uniform(0, h - side), rng.uniform(0, w - side)
    crop = resample(image, top, left, side)
    return crop[:, ::-1] if rng.uniform() < 0.5 else crop


def tone(gray: Array, group: str, rng: np.random.Generator) -> Array:
    """The skin-tone-like transform: grayscale (64, 64) in [0, 1] -> RGB (64, 64, 3) in [0, 1]."""
    tint, (low, high) = TONES[group]
    brightness = rng.uniform(low, high)
    jitter = rng.uniform(-0.04, 0.04, size=3)  # person-to-person variation of the hue
    contrast = rng.uniform(0.85, 1.15)
    mean = math.fsum(gray.ravel()) / gray.size  # exact, so the same on every platform
    g = (gray - mean) * contrast + mean
    return np.clip(g[..., None] * ((np.asarray(tint) + jitter) * brightness), 0.0, 1.0)


def tint(gray: Array, rng: np.random.Generator) -> Array:
    """A random colour and brightness for a grayscale non-face (64, 64) -> (64, 64, 3)."""
    colour = rng.uniform(0.0, 1.0, size=3)
    saturation = rng.uniform(0.0, 0.6)
    brightness = rng.uniform(0.25, 1.2)
    multiplier = ((1 - saturation) + saturation * colour / colour.max()) * brightness
    return np.asarray(np.clip(gray[..., None] * multiplier, 0.0, 1.0))


def _photos(names: tuple[str, ...]) -> list[Array]:
    from skimage import data as skdata

    return [getattr(skdata, name)().astype(np.float64) / 255.0 for name in names]


def _non_faces(patches: Array, photos: list[Array], n: int, rng: np.random.Generator) -> Array:
    """N non-faces (N, 64, 64, 3): half tinted LFW background patches, half colour-photo crops."""
    out = np.empty((n, SIZE, SIZE, 3))
    for i in range(n):
        if i % 2 == 0:
            patch = patches[rng.integers(len(patches))]
            out[i] = tint(random_crop(patch, rng, 0.7), rng)
        else:
            photo = photos[rng.integers(len(photos))]
            side = rng.uniform(48, min(photo.shape[:2]) / 2)
            top = rng.uniform(0, photo.shape[0] - side)
            left = rng.uniform(0, photo.shape[1] - side)
            crop = resample(photo, top, left, side) * rng.uniform(0.3, 1.1)
            out[i] = np.clip(crop, 0.0, 1.0)
    return out


def _to_uint8_bgr(rgb: Array) -> Array:
    """RGB floats in [0, 1] -> uint8 BGR, the storage format of the lab's face set."""
    return np.floor(rgb[..., ::-1] * 255.0 + 0.5).astype(np.uint8)


def make_skewed_faces(
    out_dir: Path, *, dark_fraction: float = DARK_FRACTION, seed: int = SEED
) -> tuple[Path, Path]:
    """Write TRAIN_FILE and TEST_FILE into OUT_DIR; returns their paths.

    DARK_FRACTION of the 2,000 training faces get the dark tone (0.5 gives a balanced set);
    the test file always has both tones of the same held-out faces.
    """
    if not 0.0 <= dark_fraction <= 1.0:
        raise ValueError(f"dark_fraction must be between 0 and 1, got {dark_fraction}")
    from skimage import data as skdata

    lfw = np.asarray(skdata.lfw_subset(), dtype=np.float64)  # type: ignore[no-untyped-call]  # (200, 25, 25): 100 faces, 100 not
    faces, patches = lfw[:100], lfw[100:]
    rng = np.random.default_rng(seed)
    identities = rng.permutation(100)
    train_ids, test_ids = identities[:TRAIN_IDENTITIES], identities[TRAIN_IDENTITIES:]
    patch_order = rng.permutation(100)
    train_patches, test_patches = patches[patch_order[:80]], patches[patch_order[80:]]

    n_faces = TRAIN_IDENTITIES * AUGMENT_PER_FACE
    n_dark = round(dark_fraction * n_faces)
    dark = np.zeros(n_faces, dtype=bool)
    dark[rng.permutation(n_faces)[:n_dark]] = True
    train_faces = np.empty((n_faces, SIZE, SIZE, 3))
    for i in range(n_faces):
        gray = random_crop(faces[train_ids[i % TRAIN_IDENTITIES]], rng, 0.8)
        train_faces[i] = tone(gray, "dark" if dark[i] else "light", rng)
    train_non = _non_faces(train_patches, _photos(COLOUR_PHOTOS_TRAIN), TRAIN_NON_FACES, rng)

    test_gray = [
        random_crop(faces[identity], rng, 0.8)
        for identity in test_ids
        for _ in range(TEST_CROPS_PER_FACE)
    ]
    test_light = np.stack([tone(g, "light", rng) for g in test_gray])
    test_dark = np.stack([tone(g, "dark", rng) for g in test_gray])
    test_non = _non_faces(test_patches, _photos(COLOUR_PHOTOS_TEST), TEST_NON_FACES, rng)

    attrs = {
        "description": "generated offline from scikit-image's LFW subset and photographs; NOT CelebA",
        "dark_fraction": float(dark_fraction),
        "seed": int(seed),
        "groups": "0 = non-face, 1 = light-toned face, 2 = dark-toned face",
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    train_path, test_path = out_dir / TRAIN_FILE, out_dir / TEST_FILE
    _write(
        train_path,
        np.concatenate([train_faces, train_non]),
        np.concatenate([np.where(dark, 2, 1), np.zeros(TRAIN_NON_FACES, dtype=np.int64)]),
        attrs,
    )
    n_test = len(test_gray)
    _write(
        test_path,
        np.concatenate([test_light, test_dark, test_non]),
        np.repeat([1, 2, 0], [n_test, n_test, TEST_NON_FACES]),
        attrs,
    )
    return train_path, test_path


def _write(path: Path, rgb: Array, groups: Array, attrs: dict[str, Any]) -> None:
    import h5py

    with h5py.File(path, "w") as f:
        # 8 images a chunk: a random subset (the smoke budget's 64 of 4,000) inflates only its
        # chunks, and a whole read is faster than with h5py's default chunks (500 x 8 x 16 x 1).
        images = _to_uint8_bgr(rgb)
        f.create_dataset("images", data=images, compression="gzip", chunks=(8, *images.shape[1:]))
        f["labels"] = (groups != 0).astype(np.float32).reshape(-1, 1)  # (N, 1), 1.0 = face
        f["groups"] = groups.astype(np.int8)
        f.attrs.update(attrs)


def read_groups(path: Path) -> dict[str, Array]:
    """The images of a generated file by group: {"light", "dark", "non-face"} -> RGB float32."""
    import h5py

    with h5py.File(path, "r") as f:
        if "groups" not in f:
            raise ValueError(f"{path} has no `groups` (only the generated face sets have them)")
        images, groups = f["images"][:], f["groups"][:]
    rgb = images[..., ::-1].astype(np.float32) / np.float32(255.0)  # BGR -> RGB
    return {GROUPS[code]: rgb[groups == code] for code in (1, 2, 0)}

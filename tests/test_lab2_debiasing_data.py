"""The debiasing lab's data: the generated skewed face set, its registry entry, and the lab helpers.

The set is generated once per session into a temporary cache (offline: scikit-image ships the
images), which also proves that generation reproduces the registry's recorded array digests.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import matplotlib.pyplot as plt
import numpy as np
import pytest

from introdl import data
from introdl.data.downloads import Generated, SourceFailed
from introdl.data.generated import (
    AUGMENT_PER_FACE,
    TEST_CROPS_PER_FACE,
    TRAIN_IDENTITIES,
    TRAIN_NON_FACES,
    make_skewed_faces,
    read_groups,
)
from introdl.labs import lab2_debiasing as lab
from introdl.labs.lab2_debiasing import FaceBatches, detection_rates

N_FACES = TRAIN_IDENTITIES * AUGMENT_PER_FACE


@pytest.fixture(scope="session")
def face_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("introdl-faces")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("INTRODL_DATA_DIR", str(root))
        mp.setenv("INTRODL_OFFLINE", "1")
        data.fetch("skewed_faces", progress=False)
    return root


@pytest.fixture
def offline(face_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("INTRODL_DATA_DIR", str(face_cache))
    monkeypatch.setenv("INTRODL_OFFLINE", "1")
    return face_cache


def test_generated_set_is_skewed_as_documented(offline: Path) -> None:
    """Does the training set hold 2,000 faces of which exactly 5% are dark, and 2,000 non-faces?"""
    faces = data.load_train_faces(source="generated")
    assert len(faces) == N_FACES + TRAIN_NON_FACES
    with h5py.File(faces.path, "r") as f:
        groups = f["groups"][:]
        assert f.attrs["dark_fraction"] == pytest.approx(0.05)
        assert "NOT CelebA" in f.attrs["description"]
    assert np.bincount(groups).tolist() == [TRAIN_NON_FACES, N_FACES - 100, 100]
    assert np.array_equal(faces.labels[:, 0] == 1.0, groups != 0)
    images = faces.images(np.arange(8))
    assert images.dtype == np.float32
    assert images.shape == (8, 64, 64, 3)
    assert 0.0 <= images.min() <= images.max() <= 1.0


def test_test_groups_are_the_same_faces_in_two_tones(offline: Path) -> None:
    """Do the light and dark test groups hold the same crops, and differ in tone only?"""
    groups = data.load_skewed_test_faces()
    n = (100 - TRAIN_IDENTITIES) * TEST_CROPS_PER_FACE
    assert {k: len(v) for k, v in groups.items()} == {"light": n, "dark": n, "non-face": 100}
    light, dark = groups["light"].mean(axis=3), groups["dark"].mean(axis=3)  # (n, 64, 64)
    correlations = [
        np.corrcoef(a.ravel(), b.ravel())[0, 1] for a, b in zip(light, dark, strict=True)
    ]
    assert min(correlations) > 0.9
    assert dark.mean() < 0.7 * light.mean()


def test_dark_fraction_is_the_control_knob(tmp_path: Path) -> None:
    """Does make_skewed_faces(dark_fraction=...) set exactly that share of dark training faces?"""
    train, _ = make_skewed_faces(tmp_path, dark_fraction=0.5, seed=3)
    with h5py.File(train, "r") as f:
        assert int(np.sum(f["groups"][:] == 2)) == N_FACES // 2
    assert data.load_train_faces(train).labels.shape == (N_FACES + TRAIN_NON_FACES, 1)
    with pytest.raises(ValueError, match="between 0 and 1"):
        make_skewed_faces(tmp_path, dark_fraction=1.5)


def test_auto_falls_back_to_the_generated_set_and_says_so(
    offline: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Offline, does source="auto" take the generated set with a note, and "real" refuse?"""
    faces = data.load_train_faces(source="auto")
    assert faces.path.name == "train_faces.h5"
    assert "not CelebA" in capsys.readouterr().out
    with pytest.raises(data.DataUnavailable):
        data.load_train_faces(source="real")
    with pytest.raises(ValueError, match="'auto', 'real' or 'generated'"):
        data.load_train_faces(source="celeba")


def test_generation_without_scikit_image_names_the_remedy(tmp_path: Path) -> None:
    """Does a generated source whose package is missing fail with `pip install <package>`?"""

    def needs_missing_package(staging: Path) -> None:
        import introdl_no_such_package  # type: ignore[import-not-found]  # noqa: F401

    source = Generated("a test set", needs_missing_package, "scikit-image")
    with pytest.raises(SourceFailed, match="pip install scikit-image"):
        source.fetch_into(tmp_path, tmp_path / "downloads", progress=False)
    assert source.kind in data.OFFLINE_KINDS


def test_batches_are_half_faces_and_follow_the_face_probabilities(offline: Path) -> None:
    """Does FaceBatches draw n/2 faces with the given probabilities and n/2 non-faces?"""
    loader = FaceBatches(data.load_train_faces(source="generated"), limit=1000, seed=0)
    names = loader.face_groups()
    assert names is not None
    assert len(names) == len(loader.pos)
    x, y = loader.get_batch(32)
    assert x.shape == (32, 64, 64, 3)
    assert x.dtype == np.float32
    assert int(y.sum()) == 16
    dark = names == "dark"
    p = np.where(dark, 1.0, 0.0) / dark.sum()  # only dark faces
    _, y = loader.get_batch(2 * int(dark.sum()), p_pos=p)
    assert int(y.sum()) == int(dark.sum())
    faces = loader.all_faces()
    assert np.array_equal(faces[:3], loader.images(loader.pos[:3]))


def test_detection_rates_count_faces_and_non_faces_the_right_way() -> None:
    """Is a positive logit a face, and the non-face group scored by its non-face answers?"""
    groups = {
        "light": np.ones((4, 2, 2, 3)),
        "dark": np.zeros((4, 2, 2, 3)),
        "non-face": np.zeros((2, 2, 2, 3)),
    }

    def logits(images: np.ndarray) -> np.ndarray:
        return images.mean(axis=(1, 2, 3))[:, None] - 0.5  # bright -> face

    assert detection_rates(logits, groups) == {"light": 1.0, "dark": 0.0, "non-face": 1.0}


def test_generated_files_read_back_by_group(offline: Path) -> None:
    """Does read_groups refuse a face file without tone groups (the real set's schema)?"""
    path = offline / "plain.h5"
    with h5py.File(path, "w") as f:
        f["images"] = np.zeros((2, 64, 64, 3), dtype=np.uint8)
        f["labels"] = np.ones((2, 1))
    with pytest.raises(ValueError, match="no `groups`"):
        read_groups(path)


def test_image_grids_are_one_picture_with_every_image_and_label(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Does show_images draw its 40 images as one picture in one axes (a grid of 40 axes took
    a tenth of a second each in a check), each image whole, every label above it?"""
    figures: list[Any] = []
    monkeypatch.setattr(lab, "_show_photo", figures.append)
    rng = np.random.default_rng(0)
    images = rng.uniform(size=(45, 64, 64, 3)).astype(np.float32)  # the 5 beyond 4 rows dropped
    labels = [f"g{i}" for i in range(45)]
    lab.show_images(images, "title", ncols=10, labels=labels)
    (fig,) = figures
    (ax,) = fig.axes
    (shown,) = ax.get_images()
    grid = np.asarray(shown.get_array())
    _, cells = lab._mosaic(images[:40], 10, gap_above=14)
    for image, (top, middle) in zip(images[:40], cells, strict=True):
        top, left = int(top), int(middle - 32)
        assert np.array_equal(grid[top : top + 64, left : left + 64], image)
    assert [t.get_text() for t in ax.texts] == labels[:40]
    lab.show_reconstructions(images[:8], images[8:16])
    (ax,) = figures[-1].axes
    assert [t.get_text() for t in ax.texts] == ["input", "reconstruction"]
    plt.close("all")


def test_the_smoke_subset_reads_8_image_blocks_and_the_same_images(offline: Path) -> None:
    """Is the generated set stored 8 images a block (so the smoke budget's 64 random images read a
    fraction of the file), and are those images exactly the rows of a whole read?"""
    faces = data.load_train_faces(source="generated")
    with h5py.File(faces.path, "r") as f:
        assert f["images"].chunks == (8, 64, 64, 3)
        everything = f["images"][:]
    loader = FaceBatches(faces, limit=64, seed=6191)
    order = np.sort(np.random.default_rng(6191).permutation(len(faces))[:64])
    np.testing.assert_array_equal(loader.raw, everything[order])
    assert "raw" not in faces.__dict__

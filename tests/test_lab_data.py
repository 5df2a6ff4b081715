"""A lab's data sets reach the sandbox before the student's notebook runs (grader_tests/<lab>/datasets.txt).

Found on a fresh host (2026-12-07): with an empty data cache, the first check of lab1_music ran
the reference notebook against an empty /data, its data cell failed, and the student lost 6 of
22 points ("name 'char2idx' is not defined") for the host's fault. Now the grader fetches the
lab's required sets before the sandbox is started, or refuses to grade (DataMissing), naming the
set and what to do.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import nbformat
import pytest

import introdl.data as registry
from introdl.data import cache as cache_module
from introdl.data.downloads import Generated, sha256_file
from introdl.grading.errors import BadInput
from introdl.grading.grade import GradeOptions, grade_submission
from introdl.grading.pool import WARM_CODE
from introdl.grading.sandbox.public_data import (
    DataMissing,
    ensure_lab_data,
    public_data_dir,
    sandbox_datasets,
)
from introdl.grading.submission import submission_at
from tests.sandboxed import ROOT, needs_bwrap, test_slot


def course_declaring(tmp_path: Path, declared: str, lab: str = "labx") -> Path:
    course = tmp_path / "course"
    (course / "grader_tests" / lab).mkdir(parents=True)
    (course / "grader_tests" / lab / "datasets.txt").write_text(declared)
    return course


@pytest.fixture
def empty_cache(tmp_path, monkeypatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("INTRODL_DATA_DIR", str(cache))
    monkeypatch.setenv("INTRODL_OFFLINE", "1")  # never the network in tests
    return cache


def test_a_required_set_is_fetched_into_the_cache_and_the_view(tmp_path, empty_cache):
    course = course_declaring(tmp_path, "irish_songs  # from the pip package, offline\n")
    assert not registry.is_cached("irish_songs")
    view = public_data_dir(course, "labx")
    assert registry.is_cached("irish_songs")
    assert (view / "irish_songs").is_dir()
    assert any(p.is_file() for p in (view / "irish_songs").rglob("*"))


def test_a_required_set_that_cannot_be_had_refuses_to_grade_and_names_it(tmp_path, empty_cache):
    course = course_declaring(tmp_path, "mnist\n")  # Keras's full MNIST: the network only
    with pytest.raises(DataMissing) as err:
        ensure_lab_data(course, "labx")
    message = str(err.value)
    assert "mnist" in message
    assert "grader_tests/labx/datasets.txt" in message
    assert "introdl data fetch mnist" in message or "INTRODL_OFFLINE" in message, message
    assert isinstance(err.value, BadInput)  # a batch stops on it before anything lands


def test_an_optional_set_is_not_fetched(tmp_path, empty_cache):
    course = course_declaring(tmp_path, "mnist optional\n")
    ensure_lab_data(course, "labx")
    assert not registry.is_cached("mnist")


def test_a_lab_that_declares_nothing_needs_nothing(tmp_path, empty_cache):
    (tmp_path / "course" / "grader_tests" / "labx").mkdir(parents=True)
    ensure_lab_data(tmp_path / "course", "labx")
    assert not empty_cache.exists() or not any(empty_cache.iterdir())


def test_a_warm_kernel_checks_the_public_sets_so_the_notebook_does_not(
    tmp_path, empty_cache, monkeypatch
):
    """Issue 23: does a warm kernel's pre-work verify the public sets its lab declares (never a
    grader-only one, never fetching a missing one), so that the notebook's first fetch of a set
    costs a stat instead of its checksums (0.5 s for the debiasing lab's faces)?"""
    hashed: list[Path] = []

    def digest(path: Path) -> str:
        hashed.append(path)
        return sha256_file(path)

    made = Generated("a text file", lambda d: (d / "a.txt").write_text("abc"), "nothing")
    for name in ("counted", "absent"):
        monkeypatch.setitem(
            registry.REGISTRY,
            name,
            registry.Dataset(
                name=name,
                description="one text file",
                sources=(made,),
                files=(registry.Artifact("a.txt", hashlib.sha256(b"abc").hexdigest(), digest),),
                main="a.txt",
            ),
        )
    monkeypatch.setattr(cache_module, "_SETTLED_SECONDS", 0.0)
    course = course_declaring(tmp_path, "counted\nabsent optional\nmnist_npm_heldout\n")
    assert sandbox_datasets(course, "labx") == ("counted", "absent")
    path = registry.fetch("counted", progress=False)

    def fresh_kernel_fetches(warm: bool) -> list[Path]:
        monkeypatch.setattr(cache_module, "_VERIFIED", {})  # what a new kernel process knows
        hashed.clear()
        if warm:
            code = WARM_CODE.format(names=[], datasets=list(sandbox_datasets(course, "labx")))
            exec(code, {})
            assert hashed == [path], "the warm-up should verify the declared set"
            hashed.clear()
        assert registry.fetch("counted", progress=False) == path
        return list(hashed)

    assert fresh_kernel_fetches(warm=False) == [path]  # cold: the notebook pays the checksum
    assert fresh_kernel_fetches(warm=True) == []  # warm: already verified in this process
    assert not (empty_cache / "absent").exists(), "the warm-up must never fetch"
    (course / "grader_tests" / "labx" / "datasets.txt").write_text("no_such_set\n")
    assert sandbox_datasets(course, "labx") == ()  # reported where the sandbox's data is built


@needs_bwrap
def test_a_fresh_host_grades_the_reference_music_notebook_to_full_marks(tmp_path, empty_cache):
    lab = "lab1_music"
    course = tmp_path / "course"
    for part in ("release", "grader_tests"):
        shutil.copytree(ROOT / part / lab, course / part / lab)
    shutil.copy(ROOT / "grader_tests" / "__init__.py", course / "grader_tests")
    shutil.copy(ROOT / "nbgrader_config.py", course)
    folder = course / "submitted" / "fresh" / lab
    folder.mkdir(parents=True)
    nbformat.write(nbformat.read(ROOT / "source" / lab / f"{lab}.ipynb", as_version=4),
                   folder / f"{lab}.ipynb")  # fmt: skip
    (folder / "timestamp.txt").write_text("2026-12-07 09:00:00.000000 UTC")
    graded = grade_submission(
        course, submission_at(folder, lab, student="fresh"),
        GradeOptions(backend="bwrap", seed=7), slot=test_slot(),
    )  # fmt: skip
    results = graded.results
    lost = [(t.name, t.output) for t in results.tests if t.score < t.max_score]
    assert not lost, lost
    assert results.score == results.max_score
    assert registry.is_cached("irish_songs")

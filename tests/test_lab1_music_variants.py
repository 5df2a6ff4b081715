"""Do the music lab's hidden tests reject each known mistake, and accept correct work written differently?

The variants are snippets in tests/fixtures/lab1_music/, named after the mistake; each replaces one
or more answer cells of the source notebook (sections headed ``# --- <answer grade id> ---``) and
names, in its ``# caught-by:`` line, the hidden tests that must catch it.

To stay fast, one real sandboxed kernel (bwrap; the kit's `DefinitionsKernel`) runs the notebook's
set-up and definitions once; each variant then redefines its functions in that kernel and is graded
by the real hidden-test runner against only the tests meant to catch it. The untouched release goes
through the whole grading pipeline. The many-seed runs against the full suite are
`make calibrate LAB=lab1_music` (tests/test_lab1_music_calibration.py).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Sequence
from pathlib import Path

import nbformat
import pytest

from introdl.grading.authoring import DefinitionsKernel, Lab, Variant, grade_file, variants
from introdl.grading.record.results import TestResult
from tests.conftest import ROOT
from tests.sandboxed import needs_bwrap, test_slot

LAB = Lab.named("lab1_music", ROOT)
# Cells of the source notebook that the answers need (no training, no audio).
DEFINITION_CELLS = ("setup", "hyperparameters", "load-songs", "vocab", "lstm")
# Hidden tests that train the model (about a minute each on 2 cores); the others take seconds.
TRAINING_TESTS = ("test_rnn_learns_the_tunes", "test_generated_text_after_training_holds_a_tune")
WRONG = [v for v in variants(LAB) if v.wrong]
CORRECT = [v for v in variants(LAB) if v.correct]


# --- One kernel holding the lab's definitions -----------------------------------------------------


def start_lab_kernel(workdir: Path) -> DefinitionsKernel:
    """A sandboxed kernel (smoke budget) that has run the lab's set-up and reference definitions."""
    kernel = DefinitionsKernel(LAB, DEFINITION_CELLS, None, workdir, slot=test_slot())
    try:
        use(kernel, None)
    except BaseException:
        kernel.shutdown()
        raise
    return kernel


def use(kernel: DefinitionsKernel, variant: Variant | None) -> None:
    """Define the reference answers in KERNEL, then replace some with VARIANT's code."""
    kernel.define(variant)


def grade(kernel: DefinitionsKernel, seed: int, only: Sequence[str] = ()) -> dict[str, TestResult]:
    """The hidden suite's results (by test name) for what KERNEL defines now."""
    return {r.name: r for r in kernel.grade(seed, only)}


@pytest.fixture(scope="module")
def lab_kernel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DefinitionsKernel]:
    kernel = start_lab_kernel(tmp_path_factory.mktemp("music-kernel"))
    try:
        yield kernel
    finally:
        kernel.shutdown()


def hidden_test_names() -> set[str]:
    tree = ast.parse((LAB.suite / "test_lab1_music.py").read_text(encoding="utf-8"))
    return {
        n.name for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")
    }


# --- Tests ----------------------------------------------------------------------------------------


def test_variants_name_answer_cells_and_hidden_tests_that_exist() -> None:
    """Does every variant replace real answer cells, and name hidden tests that exist?"""
    answers, tests = set(LAB.answer_cells()), hidden_test_names()
    assert WRONG, f"no wrong variants in {LAB.fixtures}"
    assert CORRECT, f"no correct variant in {LAB.fixtures}"
    for variant in variants(LAB):
        assert variant.sections, f"{variant.name}: no '# --- <answer grade id> ---' section"
        assert set(variant.sections) <= answers, (variant.name, set(variant.sections) - answers)
        assert set(variant.caught_by) <= tests, (variant.name, set(variant.caught_by) - tests)
        assert variant.correct or variant.caught_by, f"{variant.name} names no catching test"
        assert not (variant.correct and variant.caught_by), f"{variant.name} is correct yet caught"


@needs_bwrap
def test_reference_definitions_pass_the_fast_tests(lab_kernel: DefinitionsKernel) -> None:
    """Do the source notebook's own answers pass every hidden test that does not train?

    (If they did not, the variants' failures below would prove nothing.)"""
    use(lab_kernel, None)
    fast = sorted(hidden_test_names() - set(TRAINING_TESTS))
    results = grade(lab_kernel, seed=11, only=fast)
    failed = {name: r.output for name, r in results.items() if r.status != "passed"}
    assert not failed, failed
    assert set(results) == set(fast)


def wrong_cases() -> list[object]:
    """The wrong variants; those caught only by a training test are slow (a minute each)."""
    return [
        pytest.param(
            v,
            id=v.name,
            marks=[pytest.mark.slow] if set(v.caught_by) <= set(TRAINING_TESTS) else [],
        )
        for v in WRONG
    ]


@needs_bwrap
@pytest.mark.parametrize("variant", wrong_cases())
def test_wrong_variant_fails_the_tests_meant_to_catch_it(
    lab_kernel: DefinitionsKernel, variant: Variant
) -> None:
    """Does each known mistake fail every hidden test that should catch it, with a message?"""
    use(lab_kernel, variant)
    results = grade(lab_kernel, seed=12, only=variant.caught_by)
    assert set(results) == set(variant.caught_by)
    passed = [name for name, r in results.items() if r.status == "passed"]
    assert not passed, f"{variant.name} passed {passed}, which should catch it"
    silent = [name for name, r in results.items() if not r.output.strip()]
    assert not silent, f"{variant.name}: {silent} failed without a message for the student"


@needs_bwrap
@pytest.mark.slow
@pytest.mark.parametrize("variant", WRONG, ids=[v.name for v in WRONG])
def test_wrong_variant_fails_on_every_seed(lab_kernel: DefinitionsKernel, variant: Variant) -> None:
    """Over 20 grading seeds, does each known mistake fail a test meant to catch it EVERY time?
    (Training tests cost about a minute per seed: variants caught only by them get 3 seeds.)"""
    use(lab_kernel, variant)
    seeds = range(3) if set(variant.caught_by) <= set(TRAINING_TESTS) else range(20)
    passed = [
        seed
        for seed in seeds
        if all(r.status == "passed" for r in grade(lab_kernel, seed, variant.caught_by).values())
    ]
    assert not passed, f"{variant.name} passed {variant.caught_by} on seeds {passed}"


@needs_bwrap
@pytest.mark.parametrize("variant", CORRECT, ids=[v.name for v in CORRECT])
def test_correct_variant_passes_the_fast_tests(
    lab_kernel: DefinitionsKernel, variant: Variant
) -> None:
    """Does correct work written differently from the reference pass every fast hidden test?"""
    use(lab_kernel, variant)
    fast = sorted(hidden_test_names() - set(TRAINING_TESTS))
    results = grade(lab_kernel, seed=13, only=fast)
    failed = {name: r.output for name, r in results.items() if r.status != "passed"}
    assert not failed, failed


@needs_bwrap
def test_untouched_release_scores_zero() -> None:
    """Graded through the whole pipeline, does the untouched student release score nothing, with
    every hidden test failing rather than erroring out of the suite?"""
    release = nbformat.read(LAB.release, as_version=4)
    results = grade_file(LAB, release, seed=14, slot=test_slot())
    assert results.errors == ()
    assert results.tests, "no hidden test ran"
    assert results.score == 0, [(t.name, t.status) for t in results.tests if t.score]
    assert {t.name for t in results.tests} == hidden_test_names()


@needs_bwrap
def test_training_stops_once_judged(lab_kernel: DefinitionsKernel) -> None:
    """Does the grader stop training at the first look that decides: the reference passes before
    the whole budget, a model that never updates its weights fails at the first look?"""
    training = LAB.module("training")
    student = lab_kernel.student()
    use(lab_kernel, None)
    learned = training.train_on_songs(student, 15)
    assert learned.passed, learned.looks
    assert learned.steps < training.TRAINING_STEPS, learned.looks
    (frozen,) = [v for v in WRONG if v.name == "wrong-no-gradient-update"]
    use(lab_kernel, frozen)
    stuck = training.train_on_songs(student, 15)
    assert not stuck.passed, stuck.looks
    assert stuck.steps == training.LOOKS[0].call * training.STEPS_PER_CALL, stuck.looks
    assert "after 25 steps" in training.training_verdict(stuck)

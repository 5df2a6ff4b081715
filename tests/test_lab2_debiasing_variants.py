"""Do the hidden tests of lab2_debiasing give the reference full marks and catch each known mistake?

Each variant in tests/fixtures/lab2_debiasing/ replaces one exercise of the source notebook's
solutions and names, in its `# caught-by:` line, the grade cells whose hidden tests must catch it.
One real bwrap kernel runs the notebook's set-up once; each variant then redefines the answers in
it and the real hidden-test runner grades it through the `student` door (the kit's
`DefinitionsKernel`, introdl/grading/authoring/). Here a variant is graded only against the hidden
tests of the grade cells that should catch it (`only=`), which keeps `make test` short; the
many-seed calibration over the whole suite is `make calibrate LAB=lab2_debiasing` (marked slow
below; results in grader_tests/lab2_debiasing/CALIBRATION.md).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest

from introdl.grading.authoring import (
    DefinitionsKernel,
    Lab,
    run_calibration,
    variant_named,
    variants,
)
from introdl.grading.record.results import TestResult
from tests.conftest import ROOT
from tests.sandboxed import needs_bwrap, test_slot

LAB = Lab.named("lab2_debiasing", ROOT)
WRONG = [v.name for v in variants(LAB) if v.wrong]
# The source's cells that set up (imports, settings) and its answers (what `define` re-runs),
# as the lab's calibrate.py names them.
SETUP_CELLS = LAB.module("calibrate").SETUP_CELLS
ANSWER_CELLS = LAB.module("calibrate").ANSWER_CELLS


@pytest.fixture(scope="module")
def kernel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DefinitionsKernel]:
    workdir = tmp_path_factory.mktemp("debiasing-kernel")
    with DefinitionsKernel(LAB, SETUP_CELLS, ANSWER_CELLS, workdir, slot=test_slot()) as lab:
        yield lab


def grade(
    kernel: DefinitionsKernel, variant: str, *, seed: int, only: tuple[str, ...] = ()
) -> list[TestResult]:
    kernel.define(variant_named(LAB, variant.removesuffix(".py") or "reference"))
    return kernel.grade(seed, only)


def caught_by(variant: str) -> tuple[str, ...]:
    found = variant_named(LAB, variant)
    assert found is not None
    return found.caught_by


def report(results: list[TestResult]) -> str:
    return "; ".join(
        f"{r.name}: {r.status} {r.output[:200]}" for r in results if r.status != "passed"
    )


def test_every_variant_names_grade_cells_that_exist() -> None:
    """Does every wrong variant name grade cells of the lab that must catch it?"""
    assert len(WRONG) == 19
    for variant in variants(LAB):
        assert set(variant.caught_by) <= set(LAB.points()), variant.name


@needs_bwrap
@pytest.mark.parametrize(
    "variant", ["", "correct-alternative.py"], ids=["reference", "alternative"]
)
def test_correct_work_gets_full_marks(kernel: DefinitionsKernel, variant: str) -> None:
    """Does the source notebook's solution, and a correct one written differently, score 16/16?"""
    results = grade(kernel, variant, seed=20260)
    assert results, "no hidden test ran"
    assert all(r.status == "passed" for r in results), report(results)
    assert sum(r.score for r in results) == sum(r.max_score for r in results) == 16


@needs_bwrap
@pytest.mark.parametrize("variant", WRONG)
def test_known_mistake_loses_points(kernel: DefinitionsKernel, variant: str) -> None:
    """Does each known-wrong variant fail a hidden test of the grade cell meant to catch it?"""
    only = caught_by(variant)
    results = grade(kernel, variant, seed=7, only=only)
    assert {r.grade_id for r in results} == set(only)
    failed = [r for r in results if r.status != "passed"]
    assert failed, f"{variant} passed every hidden test of {only}"
    # Its feedback is an authored sentence, never a traceback.
    assert all(r.output and "Traceback" not in r.output for r in failed), report(failed)


# The hidden test that perturbs the non-faces' inputs, and what it must do on EVERY seed: the
# broadcasting mistake once passed it on one seed of seven (two non-faces' changes cancelled).
NON_FACES = "test_debiasing_loss_ignores_the_vae_term_for_non_faces"
NON_FACE_VERDICTS = {
    "": "passed",
    "correct-alternative.py": "passed",
    "correct-debiasing-loss-loop.py": "passed",
    "wrong-face-indicator-broadcast.py": "failed",
    "wrong-vae-term-for-non-faces.py": "failed",
}
# ~0.35 s per seed (one hidden test graded through the door). Seed 251 is where the check that
# moved reconstructions either way passed the broadcasting mistake (1 of 300 seeds).
SEEDS = (*range(20), 251)
MANY_SEEDS = range(300)


def non_face_verdicts(kernel: DefinitionsKernel, variant: str, seeds: Sequence[int]) -> None:
    kernel.define(variant_named(LAB, variant.removesuffix(".py") or "reference"))
    verdicts = {seed: kernel.grade(seed, (NON_FACES,))[0].status for seed in seeds}
    wrong = {seed: v for seed, v in verdicts.items() if v != NON_FACE_VERDICTS[variant]}
    assert not wrong, f"{variant or 'the reference'}: {len(wrong)} of {len(seeds)} seeds: {wrong}"


@needs_bwrap
@pytest.mark.parametrize("variant", sorted(NON_FACE_VERDICTS), ids=lambda v: v or "reference")
def test_non_face_check_does_not_depend_on_the_draw(
    kernel: DefinitionsKernel, variant: str
) -> None:
    """Over 21 grading seeds, does the non-face check fail each known mistake EVERY time, and
    pass every correct way of writing the loss every time?"""
    non_face_verdicts(kernel, variant, SEEDS)


@needs_bwrap
@pytest.mark.slow
@pytest.mark.parametrize("variant", sorted(NON_FACE_VERDICTS), ids=lambda v: v or "reference")
def test_non_face_check_over_many_seeds(kernel: DefinitionsKernel, variant: str) -> None:
    """The same over 300 seeds (about 2 minutes per variant)."""
    non_face_verdicts(kernel, variant, MANY_SEEDS)


@needs_bwrap
@pytest.mark.slow
@pytest.mark.parametrize("variant", WRONG)
def test_known_mistake_loses_points_on_every_seed(kernel: DefinitionsKernel, variant: str) -> None:
    """Over 20 grading seeds, does each known-wrong variant lose points on EVERY seed in the
    grade cells meant to catch it (not just on the one seed of the quick test)?"""
    only = caught_by(variant)
    passed = [
        seed
        for seed in range(20)
        if all(r.status == "passed" for r in grade(kernel, variant, seed=seed, only=only))
    ]
    assert not passed, f"{variant} kept full marks in {only} on seeds {passed}"


@needs_bwrap
@pytest.mark.slow
def test_many_seed_calibration() -> None:
    """Over several grading seeds, does the reference (and correct work) always keep all 16
    points and every variant lose the points of the cells meant to catch it?"""
    assert run_calibration(LAB.name, ["suite", "--seeds", "5"], root=ROOT) == 0

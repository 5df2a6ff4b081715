"""Do lab3_rl's hidden tests catch each known mistake, and pass correct work written differently?

Each variant (tests/fixtures/lab3_rl/) is a lean notebook (the kit's `lean_notebook`) graded for real (bwrap sandbox, kernel,
hidden tests), against only the quick hidden tests that should catch it, so this stays fast. The
reward-curve cell, the whole-suite runs (the source notebook at full marks, the untouched release
at zero) and the many-seed calibration of the reward-curve test are slow (`make test-slow`);
their numbers are in grader_tests/lab3_rl/CALIBRATION.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat
import pytest

from introdl.grading.authoring import Lab, Variant, lean_notebook, variants
from introdl.grading.commands.grade_notebook import grade_notebook
from tests.conftest import ROOT
from tests.sandboxed import needs_bwrap

LAB = "lab3_rl"
KIT = Lab.named(LAB, ROOT)
WRONG = [v for v in variants(KIT) if v.wrong]
CORRECT = [v for v in variants(KIT) if not v.wrong]
# Graded in the slow calibration only: the grader trains CartPole agents there.
SLOW_GRADE_IDS = frozenset({"cartpole_training"})

pytestmark = needs_bwrap


def grade(
    nb: nbformat.NotebookNode,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    only: tuple[str, ...] = (),
    seed: int = 3,
) -> dict[str, Any]:
    """Grade notebook NB as a submission of lab3_rl; the results as JSON-able data."""
    monkeypatch.setenv("INTRODL_COURSE_ROOT", str(ROOT))
    path = tmp_path / f"{LAB}.ipynb"
    nbformat.write(nb, path)
    result = grade_notebook(path=str(path), lab=LAB, backend="bwrap", seed=seed, only=only)
    data: dict[str, Any] = result.results
    assert not data["errors"], f"grading failed: {data['errors']}"
    return data


def score_by_grade(results: dict[str, Any]) -> dict[str, tuple[float, float]]:
    by_grade: dict[str, tuple[float, float]] = {}
    for test in results["tests"]:
        got, top = by_grade.get(test["grade_id"], (0.0, 0.0))
        by_grade[test["grade_id"]] = (got + test["score"], top + test["max_score"])
    return by_grade


@pytest.mark.parametrize("variant", WRONG, ids=[v.name for v in WRONG])
def test_wrong_variant_loses_points_where_expected(
    variant: Variant, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Does each known mistake lose points in every grade cell whose hidden tests should catch it?

    The reward-curve cell is left to the slow calibration (tests/test_lab3_rl_calibration.py):
    its grader-side training costs ~15 s per variant, and each variant it catches also fails a
    quick cell here."""
    quick = tuple(g for g in variant.caught_by if g not in SLOW_GRADE_IDS)
    assert quick, f"{variant.name} should also be caught by a quick hidden test"
    results = grade(lean_notebook(KIT, variant), tmp_path, monkeypatch, only=quick)
    scores = score_by_grade(results)
    assert set(scores) == set(quick), f"graded cells {sorted(scores)}"
    missed = [gid for gid, (got, top) in scores.items() if got >= top]
    assert not missed, f"{variant.name} ({variant.doc}) kept full marks in {missed}: " + "; ".join(
        f"{t['name']}: {t['status']}" for t in results["tests"]
    )
    # Feedback says what went wrong, in words.
    failed = [t for t in results["tests"] if t["status"] != "passed"]
    assert all(t["output"].strip() for t in failed)


@pytest.mark.slow
@pytest.mark.parametrize("variant", WRONG, ids=[v.name for v in WRONG])
def test_wrong_variant_loses_points_on_every_seed(
    variant: Variant, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over 10 grading seeds (a whole sandboxed grading each, ~15 s), does each known mistake
    lose points in the quick cells meant to catch it EVERY time?"""
    quick = tuple(g for g in variant.caught_by if g not in SLOW_GRADE_IDS)
    kept = []
    for seed in range(10):
        results = grade(lean_notebook(KIT, variant), tmp_path, monkeypatch, only=quick, seed=seed)
        if all(got >= top for got, top in score_by_grade(results).values()):
            kept.append(seed)
    assert not kept, f"{variant.name} kept full marks in {quick} on seeds {kept}"


@pytest.mark.parametrize("variant", CORRECT, ids=[v.name for v in CORRECT])
def test_correct_variant_passes_every_quick_hidden_test(
    variant: Variant, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Does correct work written differently (NumPy sampling, vectorised returns, ...) get full
    marks on every hidden test but the slow reward-curve ones (those are in the slow suite)?"""
    quick = tuple(sorted(all_grade_ids() - SLOW_GRADE_IDS))
    results = grade(lean_notebook(KIT, variant), tmp_path, monkeypatch, only=quick)
    failed = [f"{t['name']}: {t['output']}" for t in results["tests"] if t["status"] != "passed"]
    assert not failed, f"{variant.name} lost points: {failed}"
    assert {t["grade_id"] for t in results["tests"]} == set(quick)


def all_grade_ids() -> set[str]:
    nb = nbformat.read(ROOT / "source" / LAB / f"{LAB}.ipynb", as_version=4)
    return {
        c.metadata["nbgrader"]["grade_id"]
        for c in nb.cells
        if c.get("metadata", {}).get("nbgrader", {}).get("grade")
    }

"""Calibration of the music lab's hidden tests: many seeds of the reference, every variant, full suite.

Slow (about 45 minutes on 2 busy cores), so marked `slow`. Run it with its report on stdout:

    INTRODL_CALIBRATION_RUNS=10 .venv/bin/pytest -m slow tests/test_lab1_music_calibration.py -s

and write the numbers into grader_tests/lab1_music/CALIBRATION.md. Does the reference pass with a
margin on every seed, and does every known mistake fail the full hidden suite on every seed?
"""

from __future__ import annotations

import importlib
import os
import statistics
import time
from pathlib import Path
from types import ModuleType

import pytest

from introdl.grading.door.bridge import Student
from introdl.labs.lab1_music import extract_songs
from tests.test_lab1_music_variants import (
    all_variants,
    grade,
    grade_notebook,
    needs_bwrap,
    start_lab_kernel,
    submission_notebook,
    use,
)

RUNS = int(os.environ.get("INTRODL_CALIBRATION_RUNS", "10"))  # reference seeds
VARIANT_SEEDS = (101, 102)  # every variant is graded on the full suite with each
PIPELINE_SEEDS = (
    201,
    202,
    203,
)  # full gradings of the source notebook (sandbox + notebook + tests)
MARGIN = 0.2  # the reference's worst held-out loss must sit this far below the threshold

pytestmark = [pytest.mark.slow, needs_bwrap]


def hidden_module() -> ModuleType:
    """The hidden test module (the runner imports it the same way, as part of grader_tests)."""
    return importlib.import_module("grader_tests.lab1_music.test_lab1_music")


def test_reference_heldout_loss_and_tunes_over_many_seeds(tmp_path: Path) -> None:
    """Over RUNS seeds, does the reference's held-out loss after the grader's training stay below
    the threshold with a margin, and does its generated text always hold a tune?"""
    hidden = hidden_module()
    size = hidden.GRADER_MODEL
    kernel = start_lab_kernel(tmp_path)
    rows = []
    try:
        student = Student(kernel)
        for seed in range(1, RUNS + 1):
            started = time.monotonic()
            training = hidden.train_on_songs(student, seed)
            trained_at = time.monotonic()
            hidden.build(
                student, "_grader_gen_model", 83, size["embedding_dim"], size["rnn_units"], 1
            )
            student.call("_grader_copy_weights", "_grader_model", "_grader_gen_model")
            text = hidden.generate(student, "_grader_gen_model", "X", 2000, timeout=120)
            done = time.monotonic()
            row = {
                "seed": seed,
                "before": training.before,
                "after": training.after,
                "train_s": trained_at - started,
                "generate_s": done - trained_at,
                "tunes_1000": len(extract_songs(text[:1001])),
                "tunes_2000": len(extract_songs(text)),
            }
            rows.append(row)
            print(
                "reference seed {seed:3d}: held-out loss {before:.3f} -> {after:.3f}; tunes in "
                "1000/2000 characters {tunes_1000}/{tunes_2000}; training {train_s:.0f} s, "
                "generating 2000 characters {generate_s:.0f} s".format(**row),
                flush=True,
            )
    finally:
        kernel.shutdown()
    after = [r["after"] for r in rows]
    print(
        f"reference over {len(rows)} seeds: held-out loss min {min(after):.3f}, "
        f"mean {statistics.mean(after):.3f}, max {max(after):.3f} (threshold "
        f"{hidden.HELDOUT_LOSS_THRESHOLD}); tunes in {hidden.GENERATED_CHARACTERS} characters: "
        f"min {min(r[f'tunes_{hidden.GENERATED_CHARACTERS}'] for r in rows)}"
    )
    assert max(after) < hidden.HELDOUT_LOSS_THRESHOLD - MARGIN
    assert all(r[f"tunes_{hidden.GENERATED_CHARACTERS}"] >= 1 for r in rows)


@pytest.mark.parametrize("seed", PIPELINE_SEEDS)
def test_source_notebook_scores_full_marks_through_the_pipeline(seed: int) -> None:
    """Graded like a submission (sandbox, notebook at the smoke budget, hidden tests), does the
    source notebook get full marks, and how long does grading take?"""
    results = grade_notebook(submission_notebook(None), seed=seed)
    phases = results.phases
    print(
        f"pipeline seed {seed}: {results.score:g}/{sum(results.max_points.values()):g} in "
        f"{phases.total:.0f} s (sandbox {phases.sandbox_start:.0f} s, notebook "
        f"{phases.notebook:.0f} s, hidden tests {phases.hidden_tests:.0f} s)",
        flush=True,
    )
    failed = {t.name: t.output for t in results.tests if t.status != "passed"}
    assert not failed, failed
    assert results.score == sum(results.max_points.values())


def test_every_variant_over_the_full_suite(tmp_path: Path) -> None:
    """Graded on the full hidden suite with several seeds, does every wrong variant fail (at least
    the tests meant to catch it), and does the correct variant pass everything?"""
    kernel = start_lab_kernel(tmp_path)
    problems = []
    try:
        for variant in all_variants():
            for seed in VARIANT_SEEDS:
                use(kernel, variant)
                started = time.monotonic()
                results = grade(kernel, seed=seed)
                failed = {n: r.output for n, r in results.items() if r.status != "passed"}
                lost = sum(r.max_score - r.score for r in results.values())
                print(
                    f"{variant.name} seed {seed}: loses {lost:g} points, fails "
                    f"{sorted(failed) or 'nothing'} ({time.monotonic() - started:.0f} s)",
                    flush=True,
                )
                loss_message = failed.get("test_rnn_learns_the_tunes")
                if loss_message:
                    print(f"    rnn_loss: {loss_message}")
                if variant.correct and failed:
                    problems.append(f"{variant.name} (seed {seed}) failed {failed}")
                missed = set(variant.caught_by) - set(failed)
                if not variant.correct and (not failed or missed):
                    problems.append(f"{variant.name} (seed {seed}) was not caught by {missed}")
    finally:
        kernel.shutdown()
    assert not problems, problems

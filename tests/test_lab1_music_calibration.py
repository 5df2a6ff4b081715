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

from introdl.grading.door.student import StudentError
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


def per_call(training) -> str:  # type: ignore[no-untyped-def]
    return " ".join(f"{training.looks[c]:.3f}" for c in sorted(training.looks))


def test_reference_heldout_loss_and_tunes_over_many_seeds(tmp_path: Path) -> None:
    """Over RUNS seeds, does the reference pass the training test's stopping rule, sitting MARGIN
    below every look's floor, and the final threshold with MARGIN; and does the text it generates
    from the model as the grader leaves it (stopped at the deciding look) always hold a tune?"""
    hidden = hidden_module()
    size = hidden.GRADER_MODEL
    kernel = start_lab_kernel(tmp_path)
    rows = []
    try:
        student = kernel.student()
        lab = hidden.prepare(student)
        for seed in range(1, RUNS + 1):
            started = time.monotonic()
            full = hidden.train_on_songs(student, seed, stop=False)  # every call measured
            full_s = time.monotonic() - started
            started = time.monotonic()
            graded = hidden.train_on_songs(student, seed)  # as grading does: stops when judged
            trained_at = time.monotonic()
            hidden.build(
                student, "_grader_gen_model", 83, size["embedding_dim"], size["rnn_units"], 1
            )
            student.call(f"{lab}.copy_weights", "_grader_model", "_grader_gen_model")
            text = hidden.generate(student, "_grader_gen_model", "X", 2000, timeout=120)
            done = time.monotonic()
            row = {
                "seed": seed,
                "full": full,
                "graded": graded,
                "full_s": full_s,
                "train_s": trained_at - started,
                "generate_s": done - trained_at,
                "tunes_1000": len(extract_songs(text[:1001])),
                "tunes_2000": len(extract_songs(text)),
            }
            rows.append(row)
            print(
                f"reference seed {seed:3d}: held-out loss {full.before:.3f} -> after each call "
                f"{per_call(full)} ({full_s:.0f} s); graded: "
                f"{'passed' if graded.passed else 'FAILED'} after {graded.steps} steps at "
                f"{graded.after:.3f} ({row['train_s']:.0f} s); tunes in 1000/2000 characters "
                f"{row['tunes_1000']}/{row['tunes_2000']} ({row['generate_s']:.0f} s)",
                flush=True,
            )
    finally:
        kernel.shutdown()
    after = [r["full"].after for r in rows]
    print(
        f"reference over {len(rows)} seeds: held-out loss after {hidden.TRAINING_STEPS} steps "
        f"min {min(after):.3f}, mean {statistics.mean(after):.3f}, max {max(after):.3f} (threshold "
        f"{hidden.HELDOUT_LOSS_THRESHOLD}); graded steps median "
        f"{statistics.median(r['graded'].steps for r in rows)}; tunes in "
        f"{hidden.GENERATED_CHARACTERS} characters: min {min(r['tunes_2000'] for r in rows)}"
    )
    assert max(after) < hidden.HELDOUT_LOSS_THRESHOLD - MARGIN
    assert all(r["graded"].passed and r["full"].passed for r in rows)
    for look in hidden.LOOKS:
        worst = max(r["full"].looks[look.call] for r in rows)
        assert worst < look.floor - MARGIN, (look, worst)
    assert all(r["tunes_2000"] >= 1 for r in rows)


def test_every_variant_at_every_look(tmp_path: Path) -> None:
    """Trained for the whole budget, measured after every call: does the stopping rule give every
    variant the verdict the final threshold gives it (no early pass of a model that ends above
    it, no early fail of one that ends below it)?"""
    hidden = hidden_module()
    kernel = start_lab_kernel(tmp_path)
    problems = []
    try:
        student = kernel.student()
        for variant in all_variants():
            for seed in VARIANT_SEEDS:
                use(kernel, variant)
                try:
                    full = hidden.train_on_songs(student, seed, stop=False)
                except StudentError as err:  # the variant's code raises: fails either way
                    print(f"{variant.name} seed {seed}: training raises {str(err)[:120]!r}")
                    continue
                final = full.after < hidden.HELDOUT_LOSS_THRESHOLD
                print(
                    f"{variant.name} seed {seed}: after each call {per_call(full)}; rule "
                    f"{'passes' if full.passed else 'fails'}, final threshold "
                    f"{'passes' if final else 'fails'}",
                    flush=True,
                )
                if full.passed != final:
                    problems.append(f"{variant.name} seed {seed}: {full.looks}")
    finally:
        kernel.shutdown()
    assert not problems, problems


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

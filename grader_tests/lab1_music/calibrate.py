"""Many-seed calibration of lab1_music's hidden tests; results go in grader_tests/lab1_music/CALIBRATION.md.

    make calibrate LAB=lab1_music ARGS="reference --first-seed 1 --seeds 10"  # the training test
    make calibrate LAB=lab1_music ARGS="looks --first-seed 101 --seeds 2"     # every variant, every look
    make calibrate LAB=lab1_music ARGS="suite --first-seed 101 --seeds 2"     # every variant, whole suite
    make calibrate LAB=lab1_music ARGS="tunes --first-seed 1 --seeds 40"      # where the first tune ends
    make calibrate LAB=lab1_music ARGS="pipeline --first-seed 201 --seeds 3"  # whole gradings

Run by the kit's one runner (introdl/grading/authoring/calibrate.py), which reads MODES below; the
slow tests (tests/test_lab1_music_calibration.py) run the same modes with the seeds above. About
45 minutes in all on 2 busy cores.

- `reference`: the reference's held-out loss after every kernel call of the training test, its
  verdict as grading gives it (stopping when judged), and the trained-generation test's verdict as
  grading gives it (its tries, and whether it fell back on the whole budget). Problems: a seed
  within MARGIN of a look's floor or of the final threshold, or a verdict that fails.
- `tunes`: trained as grading trains (stopping when judged), then TEXTS generations of TUNE_SCAN
  characters from "X" (`--set texts=N --set characters=N`): where in each text the first complete
  tune ends, to choose EARLY_GENERATIONS; for a wrong variant (`--variant NAME`) a problem when
  any text holds a tune.
- `looks`: every variant trained for the whole budget and measured after every call: the stopping
  rule must give each the verdict the final threshold gives it.
- `suite`: every variant against the whole hidden suite (the kit's `suite_mode`).
- `pipeline`: the source notebook graded like a submission (sandbox, notebook, hidden tests).
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from introdl.grading.authoring import (
    Calibration,
    StudentError,
    grade_file,
    run_calibration,
    submission_notebook,
    suite_mode,
    variants,
)
from introdl.labs.lab1_music import extract_songs

LAB = "lab1_music"
# Cells of the source notebook that the answers need (no training, no audio); answers: solutions.
SETUP_CELLS = ("setup", "hyperparameters", "load-songs", "vocab", "lstm")
FIRST_SEED = 1
MARGIN = 0.2  # the reference's worst held-out loss must sit this far below the threshold
TUNE_SCAN = 3000  # characters per text in the `tunes` mode
TEXTS = 2  # texts per seed in the `tunes` mode


def per_call(training: Any) -> str:
    return " ".join(f"{training.looks[c]:.3f}" for c in sorted(training.looks))


def reference(cal: Calibration) -> list[str]:
    """The reference over the seeds: held-out loss at every look, verdict, tunes generated."""
    training = cal.lab.module("training")
    rows = []
    with cal.kernel() as kernel:
        kernel.define()
        student = kernel.student()
        training.prepare(student)
        for seed in cal.seeds:
            started = time.monotonic()
            full = training.train_on_songs(student, seed, stop=False)  # every call measured
            full_s = time.monotonic() - started
            started = time.monotonic()
            graded = training.train_on_songs(student, seed)  # as grading does: stops when judged
            trained_at = time.monotonic()
            tunes = training.tune_after_training(student, graded)  # as the generation test does
            done = time.monotonic()
            row = {"seed": seed, "full": full, "graded": graded, "tunes": tunes}
            rows.append(row)
            cal.emit({"seed": seed, "looks": full.looks, "tries": tunes.tries})
            print(
                f"reference seed {seed:3d}: held-out loss {full.before:.3f} -> after each call "
                f"{per_call(full)} ({full_s:.0f} s); graded: "
                f"{'passed' if graded.passed else 'FAILED'} after {graded.steps} steps at "
                f"{graded.after:.3f} ({trained_at - started:.0f} s); tune "
                f"{'found' if tunes.passed else 'NOT FOUND'} in tries of {tunes.tries} characters"
                f"{' after the fallback' if tunes.fell_back else ''} ({done - trained_at:.0f} s)",
                flush=True,
            )
    after = [r["full"].after for r in rows]
    print(
        f"reference over {len(rows)} seeds: held-out loss after {training.TRAINING_STEPS} steps "
        f"min {min(after):.3f}, mean {statistics.mean(after):.3f}, max {max(after):.3f} (threshold "
        f"{training.HELDOUT_LOSS_THRESHOLD}); graded steps median "
        f"{statistics.median(r['graded'].steps for r in rows)}; the generation test fell back on "
        f"the whole budget on {sum(r['tunes'].fell_back for r in rows)} seeds, generated "
        f"{statistics.median(sum(r['tunes'].tries) for r in rows)} characters (median)"
    )
    problems = []
    if max(after) >= training.HELDOUT_LOSS_THRESHOLD - MARGIN:
        problems.append(f"held-out loss {max(after):.3f} within {MARGIN} of the threshold")
    problems += [
        f"seed {r['seed']} failed" for r in rows if not (r["graded"].passed and r["full"].passed)
    ]
    for look in training.LOOKS:
        worst = max(r["full"].looks[look.call] for r in rows)
        if worst >= look.floor - MARGIN:
            problems.append(f"{look}: the worst seed's loss {worst:.3f} is within {MARGIN}")
    problems += [f"seed {r['seed']} generated no tune" for r in rows if not r["tunes"].passed]
    return problems


def first_tune_end(text: str, step: int = 100) -> int | None:
    """The shortest prefix of TEXT (in STEP characters) holding a complete tune; None: none."""
    return next((n for n in range(step, len(text) + step, step) if extract_songs(text[:n])), None)


def tunes(cal: Calibration) -> list[str]:
    """Trained as grading trains, where does the first complete tune end in texts from "X"?"""
    training = cal.lab.module("training")
    size = training.GRADER_MODEL
    count = int(cal.settings.get("texts", TEXTS))
    length = int(cal.settings.get("characters", TUNE_SCAN))
    problems, ends = [], []
    with cal.kernel() as kernel:
        student = kernel.student()
        for variant in cal.chosen(("reference",)):
            name = "reference" if variant is None else variant.name
            kernel.define(variant)
            for seed in cal.seeds:
                graded = training.train_on_songs(student, seed)
                lab = training.prepare(student)
                training.build(
                    student, "_grader_gen_model", 83, size["embedding_dim"], size["rnn_units"], 1
                )
                student.call(f"{lab}.copy_weights", "_grader_model", "_grader_gen_model")
                found = [
                    first_tune_end(
                        training.generate(student, "_grader_gen_model", "X", length, timeout=200)
                    )
                    for _ in range(count)
                ]
                ends += found
                cal.emit({"variant": name, "seed": seed, "steps": graded.steps, "ends": found})
                print(
                    f"{name} seed {seed}: trained {graded.steps} steps (held-out loss "
                    f"{graded.after:.3f}); first tune ends at {found} characters",
                    flush=True,
                )
                if variant is not None and variant.wrong and any(found):
                    problems.append(f"{name} seed {seed}: a tune at {found}")
    for limit in (500, 1000, 1500, 2000, length):
        within = sum(e is not None and e <= limit for e in ends)
        print(f"texts whose first tune ends within {limit} characters: {within} of {len(ends)}")
    return problems


def looks(cal: Calibration) -> list[str]:
    """Trained for the whole budget, measured after every call: does the stopping rule give every
    variant the verdict the final threshold gives it?"""
    training = cal.lab.module("training")
    problems = []
    with cal.kernel() as kernel:
        student = kernel.student()
        for variant in cal.chosen([v.name for v in variants(cal.lab)]):
            name = "reference" if variant is None else variant.name
            for seed in cal.seeds:
                kernel.define(variant)
                try:
                    full = training.train_on_songs(student, seed, stop=False)
                except StudentError as err:  # the variant's code raises: fails either way
                    print(f"{name} seed {seed}: training raises {str(err)[:120]!r}")
                    continue
                final = full.after < training.HELDOUT_LOSS_THRESHOLD
                print(
                    f"{name} seed {seed}: after each call {per_call(full)}; rule "
                    f"{'passes' if full.passed else 'fails'}, final threshold "
                    f"{'passes' if final else 'fails'}",
                    flush=True,
                )
                if full.passed != final:
                    problems.append(f"{name} seed {seed}: {full.looks}")
    return problems


def pipeline(cal: Calibration) -> list[str]:
    """The source notebook graded like a submission (sandbox, smoke-budget notebook, hidden
    tests): full marks on every seed, and how long grading takes."""
    problems = []
    for seed in cal.seeds:
        results = grade_file(cal.lab, submission_notebook(cal.lab, None), seed=seed)
        phases = results.phases
        print(
            f"pipeline seed {seed}: {results.score:g}/{sum(results.max_points.values()):g} in "
            f"{phases.total:.0f} s (sandbox {phases.sandbox_start:.0f} s, notebook "
            f"{phases.notebook:.0f} s, hidden tests {phases.hidden_tests:.0f} s)",
            flush=True,
        )
        failed = {t.name: t.output for t in results.tests if t.status != "passed"}
        if failed or results.score != sum(results.max_points.values()):
            problems.append(f"seed {seed}: failed {failed}")
    return problems


MODES = {
    "reference": reference,
    "looks": looks,
    "suite": suite_mode,
    "pipeline": pipeline,
    "tunes": tunes,
}

if __name__ == "__main__":
    raise SystemExit(run_calibration(LAB))

"""Many-seed calibration of lab2_mnist's quality bars, in real sandboxed kernels.

    make calibrate LAB=lab2_mnist ARGS="--seeds 10 [--variant NAME ...] [--set builders=build_cnn_model]"
    make calibrate LAB=lab2_mnist ARGS="linearity --seeds 300 --variant all"

Run by the kit's one runner (introdl/grading/authoring/calibrate.py), which reads MODES below.
For the reference (the source notebook's solutions) and each variant asked for (tests/fixtures/
lab2_mnist/; `--variant all` for every one), a sandboxed kernel runs the notebook's set-up and
answer cells (plus the variant's code, which redefines what it gets wrong), then the grader's own
training (quality.train_and_score) runs once per seed through the `student` door, exactly as in
grading but training every epoch (stop=False) so that every look is recorded. It prints one line
per run and a summary per variant, network and look (epoch): accuracy and cross-entropy on the
held-out digits, what the stopping rule (quality.LOOKS) judged at that look, whether a verdict
differs from the final bar's after every epoch (the rule before stopping), and seconds until judged
against seconds for every epoch. Problems: the reference or a correct variant missing a bar, a
variant caught by a quality test clearing that network's bars, a verdict the stopping rule changed,
or the reference judged at the last epoch in more than a fifth of its runs. It writes nothing; copy
the numbers into CALIBRATION.md.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from grader_tests.lab2_mnist import linearity, quality
from introdl.grading.authoring import Calibration, Variant, run_calibration

LAB = "lab2_mnist"
SETUP_CELLS = ("setup", "hyperparameters")  # cell ids the answers need; the answers: solution cells
FIRST_SEED = 1000
BUILDERS = ("build_cnn_model", "build_fc_model")


@dataclass(frozen=True)
class Run:
    variant: str  # a variant's name, or "reference"
    builder: str
    seed: int
    scores: quality.Scores  # every look recorded (trained with stop=False)

    @property
    def passes(self) -> bool:
        """Both measures pass under the stopping rule (quality.LOOKS)."""
        return self.scores.accuracy_verdict.passed and self.scores.cross_entropy_verdict.passed

    @property
    def passes_at_the_end(self) -> tuple[bool, bool]:
        """Accuracy and cross-entropy against the final bar after every epoch (the rule before
        issue 23's stopping): what the verdicts must stay."""
        bar = quality.BARS[quality.SOURCE][self.builder]
        s = self.scores
        return s.accuracies[-1] >= bar.accuracy, s.cross_entropies[-1] <= bar.cross_entropy

    @property
    def same_verdicts(self) -> bool:
        s = self.scores
        return (s.accuracy_verdict.passed, s.cross_entropy_verdict.passed) == self.passes_at_the_end

    @property
    def seconds_with_stop(self) -> float:
        return self.scores.seconds_at[self.scores.judged_at - 1]

    def line(self) -> str:
        s = self.scores
        looks = "  ".join(
            f"e{i + 1} {a:.4f}/{c:.3f}"
            for i, (a, c) in enumerate(zip(s.accuracies, s.cross_entropies, strict=True))
        )
        a, c = s.accuracy_verdict, s.cross_entropy_verdict
        return (
            f"{self.variant:<42} {self.builder:<16} seed {self.seed:>4}  acc/ce {looks}  "
            f"accuracy {'pass' if a.passed else 'FAIL'}@{a.epoch} "
            f"cross-entropy {'pass' if c.passed else 'FAIL'}@{c.epoch}  "
            f"{self.seconds_with_stop:5.1f} s of {s.seconds:5.1f} s "
            f"(looks at {', '.join(f'{t:.1f}' for t in s.seconds_at)} s)"
            f"{'' if self.same_verdicts else '  VERDICT CHANGED'}"
        )


def calibrate(cal: Calibration) -> list[Run]:
    """Every run asked for, printed as it lands."""
    builders = cal.settings.get("builders", ",".join(BUILDERS)).split(",")
    runs: list[Run] = []
    for variant in cal.chosen(("reference",)):
        name = "reference" if variant is None else variant.name
        with cal.kernel() as kernel:
            kernel.define(variant)
            student = kernel.student()
            for builder in builders:
                for seed in cal.seeds:
                    scores = quality.train_and_score(student, builder, seed, stop=False)
                    runs.append(Run(name, builder, seed, scores))
                    print(runs[-1].line(), flush=True)
    return runs


def caught_by_quality(variant: Variant | None, builder: str) -> bool:
    """Is VARIANT one that a quality test of BUILDER's network must fail?"""
    network = builder.removeprefix("build_").removesuffix("_model")  # cnn, fc
    tests = () if variant is None else variant.caught_by
    return any(t.startswith(f"test_{network}_model_heldout") for t in tests)


def problems_of(cal: Calibration, runs: Sequence[Run]) -> list[str]:
    by_name = {("reference" if v is None else v.name): v for v in cal.chosen(("reference",))}
    problems = [
        f"verdict changed by the stopping rule: {r.line()}" for r in runs if not r.same_verdicts
    ]
    for run in runs:
        variant = by_name[run.variant]
        if variant is None or variant.correct:
            if not run.passes:
                problems.append(f"misses a bar: {run.line()}")
        elif caught_by_quality(variant, run.builder) and run.passes:
            problems.append(f"clears the bars: {run.line()}")
    reference = [r for r in runs if r.variant == "reference"]
    early = [r for r in reference if r.scores.judged_at < quality.RECIPE.epochs]
    if len(early) < 0.8 * len(reference):
        problems.append(f"the reference is judged early in {len(early)} of {len(reference)} runs")
    return problems


def _spread(values: Sequence[float], digits: int) -> str:
    return f"{min(values):.{digits}f} / {statistics.mean(values):.{digits}f} / {max(values):.{digits}f}"


def summary(runs: Sequence[Run]) -> str:
    """One row per variant, network and look: the scores' spread, and what the rule decided there."""
    lines = []
    for variant, builder in sorted({(r.variant, r.builder) for r in runs}):
        group = [r for r in runs if (r.variant, r.builder) == (variant, builder)]
        for epoch in range(1, min(r.scores.epochs for r in group) + 1):
            acc = [r.scores.accuracies[epoch - 1] for r in group]
            ce = [r.scores.cross_entropies[epoch - 1] for r in group]
            decided = [
                ("A" if v.passed else "a") if v.epoch == epoch else ""
                for r in group
                for v in [r.scores.accuracy_verdict]
            ]
            judged = [
                ("C" if v.passed else "c") if v.epoch == epoch else ""
                for r in group
                for v in [r.scores.cross_entropy_verdict]
            ]
            stopped = sum(r.scores.judged_at == epoch for r in group)
            lines.append(
                f"| {variant} | {builder} | {epoch} | {len(group)} | {_spread(acc, 4)} | "
                f"{_spread(ce, 3)} | accuracy: {decided.count('A')} pass, {decided.count('a')} "
                f"fail; cross-entropy: {judged.count('C')} pass, {judged.count('c')} fail | "
                f"{stopped} |"
            )
    changed = [r for r in runs if not r.same_verdicts]
    before = [r.scores.seconds for r in runs]
    after = [r.seconds_with_stop for r in runs]
    header = (
        "| variant | network | after epoch | runs | accuracy min / mean / max | cross-entropy min / "
        "mean / max | judged at this look | stopped here |\n|---|---|---|---|---|---|---|---|"
    )
    return (
        header
        + "\n"
        + "\n".join(lines)
        + f"\n\nverdicts changed by the stopping rule: {len(changed)} of {len(runs)} runs"
        + f"\nquality-test seconds, median: {statistics.median(before):.1f} training every epoch, "
        + f"{statistics.median(after):.1f} stopping when judged"
    )


def quality_mode(cal: Calibration) -> list[str]:
    started = time.monotonic()
    runs = calibrate(cal)
    print(f"\n{summary(runs)}\n\n{len(runs)} runs in {time.monotonic() - started:.0f} s")
    return problems_of(cal, runs)


def linearity_mode(cal: Calibration) -> list[str]:
    """test_fc_model_hidden_layer_is_not_linear's measure (linearity.departure) for each variant
    and seed, inputs drawn from numpy's generator of the seed (grading draws them from the test's
    own `rng`, so these are other draws of the same kind). Problems: the reference or a correct
    variant at or under linearity.NONLINEAR, a variant that names the test above it."""
    test = "test_fc_model_hidden_layer_is_not_linear"
    problems = []
    for variant in cal.chosen(("reference",)):
        name = "reference" if variant is None else variant.name
        must_fail = variant is not None and test in variant.caught_by
        with cal.kernel() as kernel:
            kernel.define(variant)
            student = kernel.student()
            found = [
                linearity.departure(student, np.random.default_rng(seed), seed)
                for seed in cal.seeds
            ]
        low, high = min(found), max(found)
        print(f"{name:<42} {len(found)} seeds  departure min {low:.3g}  max {high:.3g}", flush=True)
        if must_fail and high > linearity.NONLINEAR:
            problems.append(f"{name} departs from linearity by {high:.3g} > {linearity.NONLINEAR}")
        if not must_fail and (variant is None or variant.correct) and low <= linearity.NONLINEAR:
            problems.append(f"{name} departs from linearity by only {low:.3g}")
    return problems


MODES = {"quality": quality_mode, "linearity": linearity_mode}

if __name__ == "__main__":
    raise SystemExit(run_calibration(LAB))

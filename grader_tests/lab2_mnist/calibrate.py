"""Many-seed calibration of lab2_mnist's quality bars, in real sandboxed kernels.

    python -m grader_tests.lab2_mnist.calibrate --seeds 10 [--variants NAME ...] [--builders ...]

For the reference (the source notebook's solutions) and each variant in tests/fixtures/lab2_mnist/,
a sandboxed kernel runs the notebook's set-up and answer cells (plus the variant's code, which
redefines what it gets wrong), then the grader's own training (quality.train_and_score) runs once
per seed through the `student` door, exactly as in grading but training every epoch (stop=False)
so that every look is recorded. It prints one line per run and a summary per variant, network and
look (epoch): accuracy and cross-entropy on the held-out digits, what the stopping rule
(quality.LOOKS) judged at that look, whether a verdict differs from the final bar's after every
epoch (the rule before stopping), and seconds until judged against seconds for every epoch. It writes nothing; copy the numbers into
CALIBRATION.md. Not a hidden test (the runner only collects test_*.py).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from grader_tests.lab2_mnist import quality
from introdl.grading.door.student import Student
from introdl.grading.kernel.kernel import SandboxedKernel
from introdl.grading.kernel.launch import start_kernel
from introdl.grading.kernel.notebook import run_notebook
from introdl.grading.sandbox import default_backend
from introdl.grading.sandbox.limits import DEFAULT_LIMITS
from introdl.grading.sandbox.public_data import public_data_dir

LAB = "lab2_mnist"
ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "source" / LAB / f"{LAB}.ipynb"
VARIANTS = ROOT / "tests" / "fixtures" / LAB
REFERENCE = "reference"
SET_UP_CELLS = ("setup", "hyperparameters")  # cell ids the answers need
BUILDERS = ("build_cnn_model", "build_fc_model")
# Fixtures the CNN's quality bars must reject (the other wrong-* fixtures are caught by other
# tests) and the correct-but-different ones they must accept.
QUALITY_VARIANTS = (
    "wrong-cnn-softmax-twice",
    "wrong-cnn-no-pooling-tiny-dense",
    "wrong-cnn-without-convolutions",
)
CORRECT_VARIANTS = ("correct-functional-api-and-compiled-step",)


def variant_names() -> list[str]:
    return sorted(p.stem for p in VARIANTS.glob("*.py"))


def definitions_notebook(variant: str = REFERENCE) -> NotebookNode:
    """The source notebook's set-up and answer cells, then the variant's code (if any).

    Training and check cells are left out: the hidden tests call the functions themselves.
    """
    source = nbformat.read(SOURCE, as_version=4)
    cells = [
        nbformat.v4.new_code_cell(c.source, id=c.get("id"))
        for c in source.cells
        if c.cell_type == "code"
        and (
            c.get("id") in SET_UP_CELLS
            or c.get("metadata", {}).get("nbgrader", {}).get("solution", False)
        )
    ]
    if variant != REFERENCE:
        cells.append(nbformat.v4.new_code_cell(variant_code(variant), id="variant"))
    nb = nbformat.v4.new_notebook(cells=cells, metadata=source.metadata)
    nb.nbformat, nb.nbformat_minor = 4, 5
    return nb


def answer_code() -> str:
    """The source notebook's answer cells (the solutions), as one block of code."""
    source = nbformat.read(SOURCE, as_version=4)
    return "\n\n".join(
        c.source
        for c in source.cells
        if c.cell_type == "code" and c.get("metadata", {}).get("nbgrader", {}).get("solution")
    )


def variant_code(variant: str) -> str:
    return (VARIANTS / f"{variant}.py").read_text(encoding="utf-8")


def calibration_slot() -> int:
    """A sandbox slot (uid) away from batch grading's and the engine tests' slots."""
    return 3900 + os.getpid() % 90


@contextlib.contextmanager
def variant_kernel(
    variant: str = REFERENCE, *, slot: int | None = None
) -> Iterator[SandboxedKernel]:
    """A sandboxed kernel in which the variant's definitions have run (smoke budget, public data)."""
    workdir = Path(tempfile.mkdtemp(prefix="introdl-cal-"))
    try:
        path = workdir / f"{LAB}.ipynb"
        nbformat.write(definitions_notebook(variant), path)
        kernel = start_kernel(
            workdir=workdir,
            datadir=public_data_dir(),
            backend=default_backend(),
            slot=calibration_slot() if slot is None else slot,
            limits=DEFAULT_LIMITS,
            env={"INTRODL_BUDGET": "smoke"},
        )
        with kernel:
            run = run_notebook(kernel, path)
            failed = [c for c in run.cells if c.status != "ok"]
            if failed:
                first = failed[0]
                raise RuntimeError(
                    f"{variant}: cell {first.cell_id} ended {first.status}: {first.ename}: {first.evalue}"
                )
            yield kernel
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@dataclass(frozen=True)
class Run:
    variant: str
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


def calibrate(
    variants: Sequence[str], seeds: Sequence[int], builders: Sequence[str] = BUILDERS
) -> list[Run]:
    runs: list[Run] = []
    for variant in variants:
        with variant_kernel(variant) as kernel:
            student = Student(kernel)
            for builder in builders:
                for seed in seeds:
                    scores = quality.train_and_score(student, builder, seed, stop=False)
                    runs.append(Run(variant, builder, seed, scores))
                    print(runs[-1].line(), flush=True)
    return runs


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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10, help="runs per variant and network")
    parser.add_argument("--first-seed", type=int, default=1000)
    parser.add_argument(
        "--variants",
        nargs="*",
        default=[REFERENCE],
        help=f"names, or 'all' ({REFERENCE} + fixtures)",
    )
    parser.add_argument("--builders", nargs="*", default=list(BUILDERS))
    args = parser.parse_args(argv)
    variants = [REFERENCE, *variant_names()] if args.variants == ["all"] else args.variants
    if shutil.which("bwrap") is None and default_backend() == "bwrap":
        print("calibration needs a sandbox backend (bubblewrap or docker)", file=sys.stderr)
        return 2
    started = time.monotonic()
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    runs = calibrate(variants, list(seeds), args.builders)
    print(f"\n{summary(runs)}\n\n{len(runs)} runs in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

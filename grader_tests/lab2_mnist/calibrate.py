"""Many-seed calibration of lab2_mnist's quality bars, in real sandboxed kernels.

    python -m grader_tests.lab2_mnist.calibrate --seeds 10 [--variants NAME ...] [--builders ...]

For the reference (the source notebook's solutions) and each variant in tests/fixtures/lab2_mnist/,
a sandboxed kernel runs the notebook's set-up and answer cells (plus the variant's code, which
redefines what it gets wrong), then the grader's own training (quality.train_and_score) runs once
per seed through the `student` door, exactly as in grading. It prints one line per run and a
summary per variant and network: accuracy and cross-entropy on the held-out digits, seconds, and
whether the run clears the bars in quality.BARS. It writes nothing; copy the numbers into
CALIBRATION.md. Not a hidden test (the runner only collects test_*.py).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from grader_tests.lab2_mnist import quality
from introdl.grading.door.bridge import Student
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
    scores: quality.Scores

    @property
    def passes(self) -> bool:
        bar = quality.BARS[quality.SOURCE][self.builder]
        return (
            self.scores.accuracy >= bar.accuracy and self.scores.cross_entropy <= bar.cross_entropy
        )

    def line(self) -> str:
        s = self.scores
        return (
            f"{self.variant:<45} {self.builder:<16} seed {self.seed:>4}  accuracy {s.accuracy:.4f}  "
            f"cross-entropy {s.cross_entropy:.4f}  {s.seconds:5.1f} s  "
            f"{'passes' if self.passes else 'FAILS'}"
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
                    scores = quality.train_and_score(student, builder, seed)
                    runs.append(Run(variant, builder, seed, scores))
                    print(runs[-1].line(), flush=True)
    return runs


def summary(runs: Sequence[Run]) -> str:
    lines = []
    keys = sorted({(r.variant, r.builder) for r in runs})
    for variant, builder in keys:
        group = [r for r in runs if (r.variant, r.builder) == (variant, builder)]
        acc = [r.scores.accuracy for r in group]
        ce = [r.scores.cross_entropy for r in group]
        secs = [r.scores.seconds for r in group]
        lines.append(
            f"| {variant} | {builder} | {len(group)} | {min(acc):.4f} / {sum(acc) / len(acc):.4f} / "
            f"{max(acc):.4f} | {min(ce):.3f} / {sum(ce) / len(ce):.3f} / {max(ce):.3f} | "
            f"{max(secs):.0f} | {sum(r.passes for r in group)}/{len(group)} |"
        )
    header = (
        "| variant | network | runs | accuracy min / mean / max | cross-entropy min / mean / max "
        "| slowest s | pass the bars |\n|---|---|---|---|---|---|---|"
    )
    return header + "\n" + "\n".join(lines)


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

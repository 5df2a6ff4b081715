"""Many-seed calibration of lab2_debiasing's hidden tests (results go in its CALIBRATION.md).

    make calibrate LAB=lab2_debiasing ARGS="--seeds 10"    # whole suite, reference + variants
    make calibrate LAB=lab2_debiasing ARGS="--real 3"      # also through the sandboxed engine
    make calibrate LAB=lab2_debiasing ARGS="--training 3"  # informational: the bias, measured

Default mode: the source notebook's solutions, the correct-but-different variant and every
known-wrong variant of tests/fixtures/lab2_debiasing/ are graded against the WHOLE hidden suite
with each grading seed (in one real sandboxed kernel, see tests/definitions_kernel.py); the script
prints the scores and, for the reference, the one ML threshold's metric: the ratio of the last to
the first training losses in the train-step test (the test requires < LOSS_RATIO, 0.8).

`--real N` grades the source notebook N times, the untouched release once and each variant once
(its code appended as a last cell) with `introdl grade-notebook` in the bwrap sandbox.

`--training N` runs the source notebook at the cpu budget with N seeds, twice each: as written,
and with smoothing_fac = 1e9, which makes the re-sampling uniform (the DB-VAE without debiasing).
It prints the detection rates of the light and dark test groups: informational, not graded.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

import nbformat
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from introdl.grading.door.student import Student  # noqa: E402
from tests.definitions_kernel import DefinitionsKernel  # noqa: E402
from tests.test_lab2_debiasing_variants import lab_kernel  # noqa: E402

LAB = "lab2_debiasing"
SOURCE = ROOT / "source" / LAB / f"{LAB}.ipynb"
RELEASE = ROOT / "release" / LAB / f"{LAB}.ipynb"
SUITE = ROOT / "grader_tests" / LAB
FIXTURES = ROOT / "tests" / "fixtures" / LAB
REFERENCE = ""
ALTERNATIVE = "correct-alternative.py"


def all_variants() -> list[str]:
    return [REFERENCE, ALTERNATIVE, *sorted(p.name for p in FIXTURES.glob("wrong-*.py"))]


def calibrate(seeds: Iterable[int], variants: Iterable[str]) -> dict[str, list[float]]:
    """{variant: [score per seed]} over the whole hidden suite, graded in a sandboxed kernel."""
    summary: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="introdl-calibrate-") as tmp:
        kernel = lab_kernel(Path(tmp))
        try:
            for variant in variants:
                code = (FIXTURES / variant).read_text() if variant else ""
                for seed in seeds:
                    kernel.define(code, variant)
                    results = kernel.grade(seed)
                    score = sum(r.score for r in results)
                    summary.setdefault(variant, []).append(score)
                    failed = [r.name for r in results if r.status != "passed"]
                    print(
                        f"{variant or 'reference'} seed {seed}: {score:g}/16 failed={failed}",
                        flush=True,
                    )
        finally:
            kernel.shutdown()
    return summary


def train_step_ratios(seeds: Iterable[int]) -> list[float]:
    """The reference's last-3 / first-3 mean loss in the train-step test, per grading seed."""
    from grader_tests.lab2_debiasing.test_lab2_debiasing import IN_KERNEL, TRAIN_STEPS

    ratios = []
    with tempfile.TemporaryDirectory(prefix="introdl-calibrate-") as tmp:
        kernel: DefinitionsKernel = lab_kernel(Path(tmp))
        try:
            for seed in seeds:
                kernel.define()
                student = Student(kernel.kernel)
                lab = student.install(IN_KERNEL)
                rng = np.random.default_rng(seed)
                x = rng.uniform(size=(8, 64, 64, 3)).astype("float32")
                y = np.array([1, 0] * 4, dtype="float32").reshape(8, 1)
                args = (x, y, int(rng.integers(4, 9)), TRAIN_STEPS, seed)
                losses, _ = student.call(f"{lab}.train", *args, timeout=300)
                values = np.array([float(v) for v in losses])
                ratios.append(float(values[-3:].mean() / values[:3].mean()))
                print(f"train-step seed {seed}: losses {np.round(values, 3).tolist()}", flush=True)
        finally:
            kernel.shutdown()
    return ratios


def grade_real(path: Path, seed: int) -> float:
    out = subprocess.run(
        [sys.executable, "-m", "introdl.cli", "grade-notebook", str(path), "--lab", LAB,
         "--seed", str(seed), "--json"],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    try:
        results = json.loads(out.stdout)["results"]
    except (ValueError, KeyError) as err:
        raise RuntimeError(
            f"grade-notebook failed: {out.stdout[-500:]}{out.stderr[-2000:]}"
        ) from err
    problems = [*results.get("errors", []), *(e["message"] for e in results.get("events", []))]
    if results["score"] == 0:  # say why, so a sandbox failure is not mistaken for a verdict
        print(f"  score 0: {'; '.join(str(p)[:200] for p in problems) or 'every test failed'}")
    return float(results["score"])


def real(n: int) -> None:
    """Grade through the sandboxed engine: source N times, the release and each variant once."""
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(n):
            started = time.monotonic()
            score = grade_real(SOURCE, seed)
            print(f"real source seed {seed}: {score:g}/16 ({time.monotonic() - started:.0f} s)")
        print(f"real untouched release: {grade_real(RELEASE, 0):g}/16", flush=True)
        for variant in all_variants()[1:]:
            nb = nbformat.read(SOURCE, as_version=4)
            nb.cells.append(nbformat.v4.new_code_cell((FIXTURES / variant).read_text()))
            nb.cells[-1].id = "variant"
            path = Path(tmp) / variant.replace(".py", ".ipynb")
            nbformat.write(nb, path)
            print(f"real {variant}: {grade_real(path, 0):g}/16", flush=True)


def training(seeds: Iterable[int]) -> None:
    """The notebook at the cpu budget: detection rates with and without debiasing (informational)."""
    from tests.notebooks import execute

    pattern = re.compile(
        r"(standard CNN|DB-VAE): light ([\d.]+), dark ([\d.]+).*non-faces ([\d.]+)"
    )
    for seed in seeds:
        for label, smoothing in (("debiased", None), ("uniform re-sampling", "1e9")):
            nb = nbformat.read(SOURCE, as_version=4)
            cell = next(c for c in nb.cells if c.get("id") == "hyperparameters")
            cell.source = re.sub(r"^seed = \d+", f"seed = {seed}", cell.source, flags=re.M)
            if smoothing:
                cell.source = re.sub(
                    r"^smoothing_fac = [\d.e-]+",
                    f"smoothing_fac = {smoothing}",
                    cell.source,
                    flags=re.M,
                )
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / f"{LAB}.ipynb"
                nbformat.write(nb, path)
                started = time.monotonic()
                done = execute(path, budget="cpu", timeout=3600)
            text = "".join(
                o.get("text", "") for c in done.cells if c.get("id") == "eval" for o in c.outputs
            )
            for model, light, dark, non in pattern.findall(text):
                if model == "standard CNN" and smoothing:
                    continue  # the same CNN as in the first run of this seed
                name = model if model == "standard CNN" else f"DB-VAE ({label})"
                print(
                    f"training seed {seed} {name}: light {light} dark {dark} "
                    f"gap {float(light) - float(dark):+.2f} non-faces {non} "
                    f"({time.monotonic() - started:.0f} s run)",
                    flush=True,
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--seeds",
        type=int,
        help="grading seeds for the suite (default: 10 unless --real/--training)",
    )
    parser.add_argument("--variants", nargs="*", help="fixture names (default: all)")
    parser.add_argument("--real", type=int, default=0, help="seeds through the sandboxed engine")
    parser.add_argument("--training", type=int, default=0, help="seeds of cpu-budget notebook runs")
    args = parser.parse_args()
    if args.seeds is None and not (args.real or args.training):
        args.seeds = 10
    if args.seeds:
        variants = all_variants() if args.variants is None else args.variants
        summary = calibrate(range(args.seeds), variants)
        print("\nscores over", args.seeds, "seeds:")
        for variant, scores in summary.items():
            print(f"  {variant or 'reference':58} min {min(scores):5g} max {max(scores):5g}")
        ratios = train_step_ratios(range(args.seeds))
        print(
            f"train-step loss ratio (must be < 0.8, LOSS_RATIO): max {max(ratios):.3f}, {np.round(ratios, 3)}"
        )
    if args.real:
        real(args.real)
    if args.training:
        training(range(args.training))


if __name__ == "__main__":
    main()

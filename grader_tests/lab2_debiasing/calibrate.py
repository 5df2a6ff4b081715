"""Many-seed calibration of lab2_debiasing's hidden tests (results go in its CALIBRATION.md).

    make calibrate LAB=lab2_debiasing ARGS="--seeds 10"            # whole suite, reference + variants
    make calibrate LAB=lab2_debiasing ARGS="real --seeds 3"        # also through the sandboxed engine
    make calibrate LAB=lab2_debiasing ARGS="training --seeds 3"    # informational: the bias, measured

Run by the kit's one runner (introdl/grading/authoring/calibrate.py), which reads MODES below.

`suite` (the default): the source notebook's solutions, the correct-but-different variants and
every known-wrong variant of tests/fixtures/lab2_debiasing/ are graded against the WHOLE hidden
suite with each grading seed (in one real sandboxed kernel, `DefinitionsKernel`); then, for the
reference, the one ML threshold's metric: the ratio of the last to the first training losses in the
train-step test (the test requires < LOSS_RATIO, 0.8).

`real`: grades the source notebook on each seed, the untouched release once and each variant once
(its code appended as a last cell) through the whole sandboxed pipeline.

`training`: runs the source notebook at the cpu budget with each seed, twice: as written, and
with smoothing_fac = 1e9, which makes the re-sampling uniform (the DB-VAE without debiasing). It
prints the detection rates of the light and dark test groups: informational, not graded.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from pathlib import Path

import nbformat
import numpy as np
from nbclient import NotebookClient

from introdl.grading.authoring import (
    Calibration,
    grade_file,
    run_calibration,
    submission_notebook,
    suite_mode,
    variants,
)

LAB = "lab2_debiasing"
SETUP_CELLS = ("setup", "hyperparameters")
ANSWER_CELLS = (
    "cnn-model",
    "vae-loss",
    "sampling",
    "debiasing-loss",
    "decoder",
    "dbvae",
    "latent-mu",
    "resampling",
    "train-step",
)


def suite(cal: Calibration) -> list[str]:
    """The whole suite for every variant, then the reference's train-step loss ratios."""
    bar = cal.lab.module("inputs").LOSS_RATIO
    problems = suite_mode(cal)
    ratios = train_step_ratios(cal)
    print(
        f"train-step loss ratio (must be < {bar}, LOSS_RATIO): max {max(ratios):.3f}, "
        f"{np.round(ratios, 3)}"
    )
    return problems + [f"train-step loss ratio {r:.3f}" for r in ratios if r >= bar]


def train_step_ratios(cal: Calibration) -> list[float]:
    """The reference's last-3 / first-3 mean loss in the train-step test, per grading seed."""
    inputs = cal.lab.module("inputs")
    ratios = []
    with cal.kernel() as kernel:
        for seed in cal.seeds:
            kernel.define()
            student = kernel.student()
            lab = student.install(inputs.IN_KERNEL)
            rng = np.random.default_rng(seed)
            x = rng.uniform(size=(8, 64, 64, 3)).astype("float32")
            y = np.array([1, 0] * 4, dtype="float32").reshape(8, 1)
            args = (x, y, int(rng.integers(4, 9)), inputs.TRAIN_STEPS, seed)
            losses, _ = student.call(f"{lab}.train", *args, timeout=300)
            values = np.array([float(v) for v in losses])
            ratios.append(float(values[-3:].mean() / values[:3].mean()))
            print(f"train-step seed {seed}: losses {np.round(values, 3).tolist()}", flush=True)
    return ratios


def grade_real(cal: Calibration, nb: nbformat.NotebookNode, seed: int) -> float:
    results = grade_file(cal.lab, nb, seed=seed, backend=cal.backend)
    problems = [*results.errors, *(e.message for e in results.events)]
    if results.score == 0:  # say why, so a sandbox failure is not mistaken for a verdict
        print(f"  score 0: {'; '.join(str(p)[:200] for p in problems) or 'every test failed'}")
    return float(results.score)


def real(cal: Calibration) -> list[str]:
    """Through the sandboxed engine: the source on every seed, the release and each variant once."""
    problems = []
    for seed in cal.seeds:
        started = time.monotonic()
        score = grade_real(cal, submission_notebook(cal.lab, None), seed)
        print(f"real source seed {seed}: {score:g}/16 ({time.monotonic() - started:.0f} s)")
        if score != 16:
            problems.append(f"the source scored {score:g}/16 on seed {seed}")
    release = nbformat.read(cal.lab.release, as_version=4)
    print(f"real untouched release: {grade_real(cal, release, 0):g}/16", flush=True)
    for variant in variants(cal.lab):
        score = grade_real(cal, submission_notebook(cal.lab, variant), 0)
        print(f"real {variant.name}: {score:g}/16", flush=True)
        if (score == 16) == variant.wrong:
            problems.append(f"{variant.name} scored {score:g}/16 through the engine")
    return problems


def execute(path: Path, budget: str) -> nbformat.NotebookNode:
    """Run the notebook at PATH in a plain kernel (not sandboxed) at BUDGET."""
    nb = nbformat.read(path, as_version=4)
    before = os.environ.get("INTRODL_BUDGET")
    os.environ["INTRODL_BUDGET"] = budget
    try:
        NotebookClient(
            nb,
            timeout=3600,
            kernel_name="python3",
            resources={"metadata": {"path": str(path.parent)}},
        ).execute()
    finally:
        if before is None:
            os.environ.pop("INTRODL_BUDGET", None)
        else:
            os.environ["INTRODL_BUDGET"] = before
    return nb


def training(cal: Calibration) -> list[str]:
    """The notebook at the cpu budget: detection rates with and without debiasing (informational)."""
    pattern = re.compile(
        r"(standard CNN|DB-VAE): light ([\d.]+), dark ([\d.]+).*non-faces ([\d.]+)"
    )
    for seed in cal.seeds:
        for label, smoothing in (("debiased", None), ("uniform re-sampling", "1e9")):
            nb = nbformat.read(cal.lab.source, as_version=4)
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
                done = execute(path, "cpu")
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
    return []


MODES = {"suite": suite, "real": real, "training": training}

if __name__ == "__main__":
    raise SystemExit(run_calibration(LAB))

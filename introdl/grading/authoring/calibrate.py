"""The one calibration runner: `make calibrate LAB=<lab> ARGS="[MODE] --seeds N ..."`.

    python -m introdl.grading.authoring LAB [MODE] [--seeds N] [--first-seed S]
        [--variant NAME ...] [--set KEY=VALUE ...] [--json FILE]

It loads grader_tests/<LAB>/calibrate.py (as the grader loads the suite) and runs one of its
MODES, a dict {name: function(Calibration) -> list of problems}; the first is the default. The
module may also set SETUP_CELLS and ANSWER_CELLS (the source's cells a `DefinitionsKernel` runs),
SEEDS (how many, default 10) and FIRST_SEED (default 0). Every lab may list `suite_mode`, the whole
hidden suite graded for the reference and each variant on every seed. A mode prints its numbers
(one line per run) and returns what disagrees with what the tests promise: the exit code is 1 when
anything does, 0 when nothing does, 2 for bad input.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from introdl.grading.authoring.definitions import DefinitionsKernel
from introdl.grading.authoring.lab import Lab
from introdl.grading.authoring.variants import Variant, variant_named, variants
from introdl.grading.sandbox import default_backend

Mode = Callable[["Calibration"], list[str]]


@dataclass
class Calibration:
    """One calibration run: the lab, the seeds, the variants asked for, and settings."""

    lab: Lab
    seeds: list[int]
    names: list[str] = field(default_factory=list)  # variants asked for; [] = the mode's default
    settings: dict[str, str] = field(default_factory=dict)  # --set KEY=VALUE
    out: Path | None = None  # --json: one JSON line per run appended here
    setup_cells: tuple[str, ...] = ()
    answer_cells: tuple[str, ...] | None = None
    backend: str = "bwrap"

    def chosen(self, default: Sequence[str] = ("all",)) -> list[Variant | None]:
        """The variants asked for (None: the reference); "all" is the reference and every one."""
        names = self.names or list(default)
        if names == ["all"]:
            return [None, *variants(self.lab)]
        return [variant_named(self.lab, name) for name in names]

    @contextmanager
    def kernel(self) -> Iterator[DefinitionsKernel]:
        """A sandboxed kernel that has run the lab's SETUP_CELLS (answers: `define`)."""
        if self.backend == "bwrap" and shutil.which("bwrap") is None:
            raise RuntimeError("this calibration needs a sandbox backend (bubblewrap or docker)")
        with (
            tempfile.TemporaryDirectory(prefix="introdl-calibrate-") as tmp,
            DefinitionsKernel(
                self.lab, self.setup_cells, self.answer_cells, Path(tmp), backend=self.backend
            ) as kernel,
        ):
            yield kernel

    def emit(self, row: Mapping[str, Any]) -> None:
        """Append ROW to the --json file, if one was given."""
        if self.out is not None:
            with self.out.open("a") as fh:
                fh.write(json.dumps(row) + "\n")


def name_of(variant: Variant | None) -> str:
    return "reference" if variant is None else variant.name


def suite_mode(cal: Calibration) -> list[str]:
    """The whole hidden suite for the reference and each variant, on every seed: the reference and
    correct variants must keep every point, a wrong variant must fail the tests named to catch it."""
    problems = []
    with cal.kernel() as kernel:
        for variant in cal.chosen():
            scores = []
            for seed in cal.seeds:
                kernel.define(variant)
                results = kernel.grade(seed)
                score, top = sum(r.score for r in results), sum(r.max_score for r in results)
                scores.append(score)
                failed = [r for r in results if r.status != "passed"]
                print(
                    f"{name_of(variant)} seed {seed}: {score:g}/{top:g} "
                    f"failed={[r.name for r in failed]}",
                    flush=True,
                )
                cal.emit({"variant": name_of(variant), "seed": seed, "score": score, "max": top})
                caught = {r.name for r in failed} | {r.grade_id for r in failed}
                if variant is None or variant.correct:
                    if failed:
                        problems.append(f"{name_of(variant)} seed {seed} failed {sorted(caught)}")
                elif not failed or set(variant.caught_by) - caught:
                    missed = sorted(set(variant.caught_by) - caught)
                    problems.append(f"{variant.name} seed {seed} was not caught by {missed}")
            print(f"== {name_of(variant)}: min {min(scores):g} max {max(scores):g}", flush=True)
    return problems


def parse(
    argv: Sequence[str], modes: Mapping[str, Mode], seeds: int, first: int
) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("mode", nargs="?", default=next(iter(modes)), choices=list(modes))
    parser.add_argument("--seeds", type=int, default=seeds, help="runs per variant")
    parser.add_argument("--first-seed", type=int, default=first)
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        help="variant name (repeatable); 'reference' is the source's answers, 'all' every one",
    )
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--json", type=Path, help="append one JSON line per run to this file")
    return parser.parse_args(argv)


def run_calibration(lab: str, argv: Sequence[str] | None = None, root: Path | None = None) -> int:
    """Run LAB's calibration with command-line ARGV; 0 when nothing disagrees, 1 otherwise."""
    kit = Lab.named(lab, root)
    try:
        module = kit.module("calibrate")
    except FileNotFoundError as err:
        print(f"{err} (every lab's grading folder has one: docs/hidden-tests.md)", file=sys.stderr)
        return 2
    modes: dict[str, Mode] = dict(module.MODES)
    args = parse(
        sys.argv[1:] if argv is None else argv,
        modes,
        getattr(module, "SEEDS", 10),
        getattr(module, "FIRST_SEED", 0),
    )
    bad = [s for s in args.set if "=" not in s]
    try:
        for name in args.variant:
            if name != "all":
                variant_named(kit, name)  # ValueError: no such variant
        if bad:
            raise ValueError(f"--set takes KEY=VALUE, not {bad}")
        if "all" in args.variant and len(args.variant) > 1:
            raise ValueError("--variant all is the reference and every variant: give it alone")
    except ValueError as err:
        print(err, file=sys.stderr)
        return 2
    cal = Calibration(
        lab=kit,
        seeds=list(range(args.first_seed, args.first_seed + args.seeds)),
        names=args.variant,
        settings=dict(item.split("=", 1) for item in args.set),
        out=args.json,
        setup_cells=tuple(getattr(module, "SETUP_CELLS", ())),
        answer_cells=getattr(module, "ANSWER_CELLS", None),
        backend=default_backend(),
    )
    problems = modes[args.mode](cal)
    for problem in problems:
        print(f"PROBLEM: {problem}", flush=True)
    print(f"{lab} {args.mode}: {len(problems)} problem(s) over seeds {cal.seeds}", flush=True)
    return 1 if problems else 0


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1].startswith("-"):
        print("usage: python -m introdl.grading.authoring LAB [MODE] [--seeds N] ...")
        return 2
    return run_calibration(sys.argv[1], sys.argv[2:])

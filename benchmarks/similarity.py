"""Benchmark: how long does `introdl similarity` take on a class of 300, and does it find the copies?

The lab is lab3_rl, the largest by solution code (3,773 characters inside its 13 solution blocks;
lab2_debiasing 2,329, lab1_music 1,538). A generated course (tests/similarity_class.py) holds
STUDENTS submissions: each answer cell's TODO replaced by random array code as long as the
instructor's answer (unique per student), except that the last PLANTED students hand in copies of
the first PLANTED ones, disguised (variables renamed, functions and methods reordered, comments
reworded, blank lines and trailing spaces added). With `--common N`, N further students all hand in
the instructor's answers, each disguised differently: many near-identical submissions, the
worst case for pair counting.

It times the command as a TA runs it (`introdl similarity lab3_rl` in a fresh process: imports,
reading the notebooks, fingerprints, pairs, HTML and CSV) and the function alone, in process, and
prints where each planted pair ranks. Method and results: BENCHMARKS.md.
Run: .venv/bin/python benchmarks/similarity.py [--students 300] [--planted 10] [--common 0]
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the class generator lives with the tests that use it too

from introdl.similarity.command import similarity  # noqa: E402
from tests.similarity_class import (  # noqa: E402
    build_course,
    disguise,
    random_answers,
    reference_answers,
    submit,
)

LAB = "lab3_rl"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=300)
    parser.add_argument("--planted", type=int, default=10, help="disguised copies among them")
    parser.add_argument("--common", type=int, default=0, help="students disguising the reference")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="introdl-similarity-") as tmp:
        course = build_course(Path(tmp) / "course", LAB)
        t0 = time.perf_counter()
        unique = args.students - args.planted - args.common
        for n in range(unique):
            submit(course, LAB, f"s{n:03d}", random_answers(LAB, seed=n))
        for n in range(args.planted):
            copy = disguise(random_answers(LAB, seed=n), seed=1000 + n)
            submit(course, LAB, f"s{unique + n:03d}", copy)
        reference = reference_answers(LAB)
        for n in range(args.common):
            name = f"s{unique + args.planted + n:03d}"
            submit(course, LAB, name, disguise(reference, seed=2000 + n))
        print(f"generated {args.students} submissions of {LAB} in {time.perf_counter() - t0:.1f} s")

        env = {**os.environ, "INTRODL_COURSE_ROOT": str(course)}
        t0 = time.perf_counter()
        subprocess.run(
            [str(ROOT / ".venv" / "bin" / "introdl"), "similarity", LAB],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        cli = time.perf_counter() - t0
        os.environ["INTRODL_COURSE_ROOT"] = str(course)
        t0 = time.perf_counter()
        result = similarity(lab=LAB, top=50)
        inprocess = time.perf_counter() - t0

        planted = {frozenset((f"s{n:03d}", f"s{unique + n:03d}")) for n in range(args.planted)}
        ranks = [i for i, p in enumerate(result.pairs, 1) if frozenset((p.a, p.b)) in planted]
        scores = [p.score for p in result.pairs if frozenset((p.a, p.b)) in planted]
        common = {f"s{unique + args.planted + n:03d}" for n in range(args.common)}
        with Path(result.csv).open() as fh:
            rows = list(csv.DictReader(fh))
        honest = [
            float(r["score"])
            for r in rows
            if frozenset((r["a"], r["b"])) not in planted and not {r["a"], r["b"]} & common
        ]
        print(f"introdl similarity {LAB} (CLI, fresh process): {cli:.1f} s")
        print(f"similarity() in process: {inprocess:.1f} s; {result.pairs_total} pairs share code")
        print(f"planted pairs ranked {ranks} (scores {min(scores):.0%}-{max(scores):.0%})")
        print(f"best other pair (of {len(rows)} in the CSV): {max(honest, default=0):.0%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Many-seed calibration of lab1_music's hidden tests; results go in grader_tests/lab1_music/CALIBRATION.md.

    make calibrate LAB=lab1_music ARGS="--seeds 10"

The calibration of this lab is written as slow pytest tests (tests/test_lab1_music_calibration.py:
the reference's held-out loss and tunes over SEEDS seeds, every variant over the full suite, full
gradings of the source notebook); this runs them with their report on stdout. Not a hidden test
(the runner only collects test_*.py).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests" / "test_lab1_music_calibration.py"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10, help="seeds of the reference's training")
    parser.add_argument("-k", dest="select", help="only the calibration tests matching this")
    args = parser.parse_args(argv)
    env = {**os.environ, "INTRODL_CALIBRATION_RUNS": str(args.seeds), "TF_CPP_MIN_LOG_LEVEL": "3"}
    command = [sys.executable, "-m", "pytest", "-m", "slow", str(TESTS), "-s", "-q"]
    if args.select:
        command += ["-k", args.select]
    return subprocess.run(command, cwd=ROOT, env=env, check=False).returncode


if __name__ == "__main__":
    raise SystemExit(main())

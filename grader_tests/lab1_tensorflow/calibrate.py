"""Calibration of lab1_tensorflow's hidden tests; results go in grader_tests/lab1_tensorflow/CALIBRATION.md.

    make calibrate LAB=lab1_tensorflow ARGS="--seeds 10"

Run by the kit's one runner (introdl/grading/authoring/calibrate.py), which reads MODES below. The
tests train nothing, so there is no threshold to set: the one mode grades the source notebook's
solutions (and any variant in tests/fixtures/lab1_tensorflow/) against the whole hidden suite on
every seed, in one sandboxed kernel; the reference must keep every point on every seed.
"""

from __future__ import annotations

from introdl.grading.authoring import run_calibration, suite_mode

LAB = "lab1_tensorflow"
SETUP_CELLS = ("setup",)  # the imports the answers need; the answers: the solution cells

MODES = {"suite": suite_mode}

if __name__ == "__main__":
    raise SystemExit(run_calibration(LAB))

"""Does the lab author's kit (introdl.grading.authoring) refuse what it cannot run, and does its one
calibration runner report what a lab's calibration finds, by its exit code?

A small course in a temporary folder stands in for a lab (no kernel is started); the runner loads
its grader_tests/<lab>/calibrate.py by path, as `make calibrate` does for the real labs.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from introdl.grading.authoring import Lab, run_calibration, variants
from introdl.grading.authoring.variants import load_variant
from introdl.labs import LABS
from tests.conftest import ROOT

CALIBRATE = """
from introdl.grading.authoring import Calibration

SEEDS, FIRST_SEED = 2, 5


def fine(cal: Calibration) -> list[str]:
    print("seeds", cal.seeds, "variants", [v and v.name for v in cal.chosen()], cal.settings)
    return []


def drifted(cal: Calibration) -> list[str]:
    return [f"seed {seed} misses the bar" for seed in cal.seeds]


MODES = {"fine": fine, "drifted": drifted}
"""


def course(tmp_path: Path) -> Path:
    """A course with one lab, `kitlab`, its calibrate.py and two variants."""
    suite = tmp_path / "grader_tests" / "kitlab"
    suite.mkdir(parents=True)
    (tmp_path / "grader_tests" / "__init__.py").write_text("")
    (suite / "__init__.py").write_text("")
    (suite / "calibrate.py").write_text(CALIBRATE)
    fixtures = tmp_path / "tests" / "fixtures" / "kitlab"
    fixtures.mkdir(parents=True)
    (fixtures / "wrong-sign.py").write_text(
        '"""The sign is flipped."""\n# caught-by: loss\nx = -1\n'
    )
    (fixtures / "correct-loop.py").write_text('"""A loop."""\n# caught-by:\nx = 1\n')
    return tmp_path


def test_the_runner_runs_a_mode_with_its_seeds_variants_and_settings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Does the default mode get the lab's default seeds, every variant and the --set values, and
    exit 0 when it finds nothing wrong?"""
    root = course(tmp_path)
    assert run_calibration("kitlab", ["--set", "builders=a,b"], root=root) == 0
    out = capsys.readouterr().out
    assert "seeds [5, 6] variants [None, 'wrong-sign', 'correct-loop'] {'builders': 'a,b'}" in out
    assert "kitlab fine: 0 problem(s)" in out


def test_a_calibration_that_finds_problems_exits_1_and_names_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Does a mode's finding fail the run (the slow tests assert exit 0), each one printed?"""
    root = course(tmp_path)
    assert (
        run_calibration("kitlab", ["drifted", "--seeds", "1", "--first-seed", "9"], root=root) == 1
    )
    assert "PROBLEM: seed 9 misses the bar" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args",
    [
        ["--variant", "wrong-nothing"],
        ["--set", "builders"],
        ["no-such-mode"],
        ["--variant", "all", "--variant", "reference"],
    ],
    ids=["unknown variant", "set without =", "unknown mode", "all with another"],
)
def test_bad_input_exits_2(tmp_path: Path, args: list[str]) -> None:
    """Is a typo in the command bad input (exit 2), before any mode runs?"""
    root = course(tmp_path)
    try:
        code = run_calibration("kitlab", args, root=root)
    except SystemExit as exit:  # argparse
        code = int(exit.code or 0)
    assert code == 2


def test_a_lab_without_calibrate_py_is_bad_input(tmp_path: Path) -> None:
    root = course(tmp_path)
    (root / "grader_tests" / "other").mkdir()
    assert run_calibration("other", [], root=root) == 2


def test_variants_must_say_what_catches_them(tmp_path: Path) -> None:
    """Does the loader refuse a wrong variant that names no catching test, and a correct one
    that names some (a silent fixture proves nothing)?"""
    wrong = tmp_path / "wrong-x.py"
    wrong.write_text('"""A mistake."""\nx = 1\n')
    with pytest.raises(ValueError, match="caught-by"):
        load_variant(wrong)
    wrong.write_text('"""A mistake."""\n# caught-by:\nx = 1\n')
    with pytest.raises(ValueError, match="names the hidden tests"):
        load_variant(wrong)
    correct = tmp_path / "correct-x.py"
    correct.write_text('"""Right."""\n# caught-by: loss\nx = 1\n')
    with pytest.raises(ValueError, match="caught by nothing"):
        load_variant(correct)


def test_every_real_variant_loads_and_lab_modules_are_the_graders() -> None:
    """Do all five labs' variants load in the one shape, and is a lab module loaded through the kit
    the very module the suite imports (so a test that patches it patches what the tests use)?"""
    counts = {
        lab: len(variants(Lab.named(lab, ROOT)))
        for lab in LABS
        if lab != "lab1_tensorflow"  # no variants: its checks are exact values
    }
    assert all(counts.values()), counts
    lab = Lab.named("lab2_mnist", ROOT)
    hidden = lab.module("test_lab2_mnist")
    assert hidden.quality is lab.module("quality")

"""Do the public checks of Lab 2 Part 1 pass correct work and explain typical mistakes in words?

The implementations are the source notebook's solutions and the variant fixtures of
tests/fixtures/lab2_mnist/, run here in-process (the checks are plain functions students call in
their own notebook). Some mistakes are for the hidden tests alone: the public checks use models
whose outputs do not depend on the labels, so they cannot see shifted labels, a half batch, or a
softmax applied twice; those variants must pass here, which pins down what the checks promise.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import pytest
import tensorflow as tf

from introdl.checks import CheckFailed
from introdl.checks import lab2_mnist as check
from introdl.grading.authoring import Lab, variant_named, variants
from tests.conftest import ROOT

LAB = Lab.named("lab2_mnist", ROOT)

CHECKS: dict[str, Callable[[Any], None]] = {
    "build_fc_model": check.fc_model,
    "compile_model": check.compile_model,
    "build_cnn_model": check.cnn_model,
    "train_step": check.train_step,
}
# variant -> (the function it redefines, the words the failing check must use; None: it passes)
EXPECTED: dict[str, tuple[str, str | None]] = {
    "wrong-fc-outputs-scores": ("build_fc_model", "softmax"),
    "wrong-fc-linear-hidden-layer": ("build_fc_model", None),  # hidden tests only (no check looks)
    "wrong-compile-ignores-optimizer": ("compile_model", "optimizer=optimizer"),
    "wrong-compile-one-hot-loss": ("compile_model", "sparse categorical cross-entropy"),
    "wrong-cnn-no-pooling-tiny-dense": ("build_cnn_model", "pooling"),
    "wrong-cnn-without-convolutions": ("build_cnn_model", "convolution layers"),
    "wrong-cnn-softmax-twice": ("build_cnn_model", None),
    "wrong-train-step-sums-losses": ("train_step", "sums the losses"),
    "wrong-train-step-gradient-ascent": ("train_step", "drive its loss well down"),
    "wrong-train-step-labels-shifted": ("train_step", None),
    "wrong-train-step-fraction-of-batch": ("train_step", None),
}


def definitions(code: str) -> dict[str, Any]:
    """Run CODE (solutions or a fixture) with the names the notebook's set-up cell provides."""
    namespace: dict[str, Any] = {"keras": keras, "tf": tf, "np": np}
    exec(compile(code, "<lab2_mnist code>", "exec"), namespace)
    return namespace


def run_check(name: str, function: Callable[..., Any], capsys: pytest.CaptureFixture[str]) -> str:
    CHECKS[name](function)
    out, err = capsys.readouterr()
    assert err == "", f"check of {name} wrote to stderr (nbgrader would score it 0): {err[:200]}"
    assert out.startswith("✓ "), out
    assert out.count("\n") == 1, out
    return out


def answer_code() -> str:
    """The source notebook's answer cells (the solutions), as one block of code."""
    cells = LAB.source_cells()
    return "\n\n".join(cells[grade_id] for grade_id in LAB.answer_cells())


def variant_code(name: str) -> str:
    variant = variant_named(LAB, name)
    assert variant is not None
    return variant.code


@pytest.mark.parametrize("variant", ["reference", *(v.name for v in variants(LAB) if v.correct)])
def test_correct_work_passes_every_check(variant: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Do the solutions and a correct but different implementation pass all four checks?"""
    namespace = definitions(answer_code())
    if variant != "reference":
        namespace.update(definitions(variant_code(variant)))
    for name in CHECKS:
        run_check(name, namespace[name], capsys)


def test_every_wrong_fixture_has_an_expectation() -> None:
    """Is every wrong-* fixture listed here with what the public check should say?"""
    assert sorted(EXPECTED) == sorted(v.name for v in variants(LAB) if v.wrong)


@pytest.mark.parametrize("variant", sorted(EXPECTED))
def test_wrong_work_gets_the_expected_verdict(
    variant: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Does each check fail a typical mistake with a message that names the fix (or, for mistakes
    left to the hidden tests, pass it)?"""
    name, words = EXPECTED[variant]
    function = definitions(variant_code(variant))[name]
    if words is None:
        run_check(name, function, capsys)
        return
    with pytest.raises(CheckFailed) as info:
        CHECKS[name](function)
    assert words in str(info.value), str(info.value)
    assert capsys.readouterr().err == ""


def test_untouched_stub_raises_not_implemented() -> None:
    """Does a check let the release's NotImplementedError through unchanged?"""

    def stub(*args: Any) -> Any:
        raise NotImplementedError

    for run in CHECKS.values():
        with pytest.raises(NotImplementedError):
            run(stub)

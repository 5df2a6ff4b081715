"""Do the public checks of Lab 2 Part 2 pass correct work and explain the known mistakes in words?

The correct work is the source notebook's solutions and tests/fixtures/lab2_debiasing's
correct-alternative; the mistakes are the same wrong-*.py variants the hidden tests must catch.
"""

from __future__ import annotations

from typing import Any

import pytest

from introdl.checks import CheckFailed
from introdl.checks import lab2_debiasing as check
from tests.conftest import ROOT
from tests.fixtures.lab2_debiasing.inprocess import InProcessStudent

SOURCE = ROOT / "source" / "lab2_debiasing" / "lab2_debiasing.ipynb"
FIXTURES = ROOT / "tests" / "fixtures" / "lab2_debiasing"


def namespace(variant: str = "") -> dict[str, Any]:
    code = (FIXTURES / variant).read_text() if variant else ""
    return InProcessStudent(SOURCE, code).namespace


def run_checks(ns: dict[str, Any]) -> None:
    check.vae_loss(ns["vae_loss_function"])
    check.sampling(ns["sampling"])
    check.debiasing_loss(ns["debiasing_loss_function"], ns["vae_loss_function"])
    check.dbvae_model(ns["DB_VAE"])
    check.resampling(ns["get_training_sample_probabilities"])
    check.train_step(ns["debiasing_train_step"], ns["DB_VAE"])


@pytest.mark.parametrize("variant", ["", "correct-alternative.py"], ids=["solution", "alternative"])
def test_checks_pass_correct_work_quietly(variant: str, capfd: pytest.CaptureFixture[str]) -> None:
    """Does every check print one ✓ line for correct work, and nothing on stderr?"""
    ns = namespace(variant)
    capfd.readouterr()
    run_checks(ns)
    out, err = capfd.readouterr()
    assert [line[0] for line in out.splitlines()] == ["✓"] * 6, out
    assert err == "", err


# (variant, the check that must fail, words its message must contain)
MISTAKES = [
    ("wrong-kl-sign.py", "vae_loss", "sign"),
    ("wrong-kl-logsigma-as-log-std.py", "vae_loss", "log of the variance"),
    ("wrong-vae-loss-batch-mean.py", "vae_loss", "one loss per sample"),
    ("wrong-reconstruction-squared-error.py", "vae_loss", "mean absolute error"),
    ("wrong-kl-weight-on-reconstruction.py", "vae_loss", "weight only the KL term"),
    ("wrong-sampling-std-is-exp-logsigma.py", "sampling", "variance instead"),
    ("wrong-sampling-shared-noise.py", "sampling", "z_mean"),
    ("wrong-vae-term-for-non-faces.py", "debiasing_loss", "counts only for faces"),
    ("wrong-face-indicator-broadcast.py", "debiasing_loss", "broadcasts"),
    ("wrong-classification-loss-on-logits-as-probabilities.py", "debiasing_loss", "cross-entropy"),
    ("wrong-predict-returns-probability.py", "dbvae_model", "predict(x)"),
    ("wrong-call-returns-latent-sample.py", "dbvae_model", "recon"),
    ("wrong-probabilities-not-normalised.py", "resampling", "sum to 1"),
    ("wrong-density-not-inverted.py", "resampling", "1 / (smoothed density"),
    ("wrong-resampling-last-latent-only.py", "resampling", "maximum"),
    ("wrong-smoothing-ignored.py", "resampling", "smoothing_fac"),
    ("wrong-train-step-classification-only.py", "train_step", "decoder"),
    ("wrong-train-step-gradient-ascent.py", "train_step", "loss"),
    ("wrong-train-step-no-update.py", "train_step", "did not change"),
]


@pytest.mark.parametrize(("variant", "which", "words"), MISTAKES, ids=[m[0] for m in MISTAKES])
def test_check_explains_the_mistake(variant: str, which: str, words: str) -> None:
    """Does the check of the exercise with the mistake fail, saying what to fix?"""
    ns = namespace(variant)
    calls = {
        "vae_loss": lambda: check.vae_loss(ns["vae_loss_function"]),
        "sampling": lambda: check.sampling(ns["sampling"]),
        "debiasing_loss": lambda: check.debiasing_loss(
            ns["debiasing_loss_function"], ns["vae_loss_function"]
        ),
        "dbvae_model": lambda: check.dbvae_model(ns["DB_VAE"]),
        "resampling": lambda: check.resampling(ns["get_training_sample_probabilities"]),
        "train_step": lambda: check.train_step(ns["debiasing_train_step"], ns["DB_VAE"]),
    }
    with pytest.raises(CheckFailed) as info:
        calls[which]()
    assert words in str(info.value), str(info.value)


def test_unfinished_exercise_fails_with_not_implemented() -> None:
    """Does a check let NotImplementedError through, so an untouched release fails only with it?"""

    def todo(*args: Any) -> Any:
        raise NotImplementedError

    with pytest.raises(NotImplementedError):
        check.vae_loss(todo)
    with pytest.raises(NotImplementedError):
        check.resampling(todo)

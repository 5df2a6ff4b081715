"""How far the student's fully connected network is from a linear function of the pixels.

A hidden layer without an activation makes build_fc_model() one affine map of the pixels followed
by the softmax (Dense(128) then Dense(10) is one Dense(10)): its log-probabilities, once each row's
mean is taken off (the softmax's constant), are then affine in the image, so at the midpoint of
two images they are exactly the average of theirs. `departure` measures the largest difference
over several random pairs (a maximum of absolute values: no pair can cancel another), and
`NONLINEAR` is the line between float32 round-off and a real non-linearity, from the many-seed
run in CALIBRATION.md ("The hidden layer's non-linearity").
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from introdl.grading.authoring import Student, as_array, assert_true

IN_KERNEL = Path(__file__).with_name("in_kernel.py")
PAIRS = 8  # random pairs of images per test
# A linear network stays under 3e-6 (round-off), the lab's ReLU network is above 0.11 (and a
# sigmoid one above 0.008), in log-probability, on every calibrated seed.
NONLINEAR = 1e-3


def departure(student: Student, rng: np.random.Generator, seed: int) -> float:
    """The largest departure from linearity of build_fc_model()'s network, weights from SEED."""
    shape = (PAIRS, 28, 28, 1)
    a = rng.uniform(0.0, 1.0, size=shape).astype(np.float32)
    b = rng.uniform(0.0, 1.0, size=shape).astype(np.float32)
    midpoints = (a + b) / np.float32(2.0)  # (PAIRS, 28, 28, 1)
    lab = student.install(IN_KERNEL)
    student.call(f"{lab}.build", "_grader_fcl", "build_fc_model", seed)
    out = as_array(
        student.call("_grader_fcl", np.concatenate([a, b, midpoints])),
        "the output of build_fc_model()",
    ).astype(np.float64)
    n = 3 * PAIRS
    assert_true(
        out.shape == (n, 10) and bool(np.all(np.isfinite(out))),
        f"on a batch of {n} images, build_fc_model() should output {n} rows of ten finite "
        f"numbers; it gave shape {out.shape}",
    )
    # Log-probabilities when the network outputs probabilities, its scores otherwise (a missing
    # softmax is test_fc_model_outputs_ten_probabilities_per_image's to charge, not this one's).
    scores = np.log(out) if out.min() > 0 else out
    scores -= scores.mean(axis=1, keepdims=True)  # (n, 10): each row's constant dropped
    at_a, at_b, at_midpoint = scores[:PAIRS], scores[PAIRS : 2 * PAIRS], scores[2 * PAIRS :]
    return float(np.abs(at_midpoint - (at_a + at_b) / 2).max())

"""Hidden tests for lab1_tensorflow (intro to TensorFlow). Never released to students.

Inputs are drawn at grading time from the `rng` fixture; references are in reference.py.
Objects the tests build in the student's kernel get names starting with `_grader_`.
"""

from __future__ import annotations

import numpy as np
import pytest

from grader_tests.lab1_tensorflow import reference
from introdl.grading.authoring import as_array, assert_close, assert_shape, assert_true

pytestmark = pytest.mark.budget(seconds=60)


def random_dims(rng: np.random.Generator) -> tuple[int, int, int]:
    """(batch, d, n_output_nodes) for a dense layer."""
    return int(rng.integers(1, 6)), int(rng.integers(1, 7)), int(rng.integers(1, 6))


# --- 1.1 tensors -------------------------------------------------------------------------------
@pytest.mark.grade("tensors", points=0.5)
def test_make_matrix_is_two_dimensional(student) -> None:
    matrix = as_array(student.call("make_matrix"), "make_matrix()")
    assert_true(
        matrix.ndim == 2,
        f"make_matrix() should return a 2-d tensor; it has {matrix.ndim} dimensions",
    )


@pytest.mark.grade("tensors", points=0.5)
def test_make_images_gives_zeros_of_any_requested_shape(student, rng) -> None:
    shape = tuple(int(v) for v in rng.integers(1, 9, size=4))
    images = assert_shape(
        student.call("make_images", *shape),
        shape,
        f"make_images{shape} should have shape (batch, height, width, channels)",
    )
    assert_true(not images.any(), "make_images should return a tensor of zeros")


# --- 1.2 computation ---------------------------------------------------------------------------
@pytest.mark.grade("computation", points=1)
def test_func_computes_the_graph_on_random_tensors(student, rng) -> None:
    shape = tuple(int(v) for v in rng.integers(1, 5, size=2))
    a = rng.normal(size=shape).astype("float32")
    b = rng.normal(size=shape).astype("float32")
    assert_close(
        student.call("func", a, b), reference.func(a, b), "func(a, b) should be (a + b) * (b - 1)"
    )
    x, y = float(rng.uniform(-5, 5)), float(rng.uniform(-5, 5))
    assert_close(
        student.call("func", x, y),
        reference.func(x, y),
        "func(a, b) should also work on plain numbers",
    )


# --- 1.3 neural networks -----------------------------------------------------------------------
@pytest.mark.grade("dense_layer", points=1.5)
def test_dense_layer_is_sigmoid_of_affine_map(student, rng) -> None:
    batch, d, n = random_dims(rng)
    w = rng.normal(size=(d, n)).astype("float32")
    b = rng.normal(size=(1, n)).astype("float32")
    x = rng.normal(size=(batch, d)).astype("float32")
    student.call("OurDenseLayer", n, store_as="_grader_layer")
    student.call("_grader_layer.build", (None, d))
    student.call("_grader_layer.W.assign", w)
    student.call("_grader_layer.b.assign", b)
    assert_close(
        student.call("_grader_layer", x),
        reference.dense(x, w, b),
        "OurDenseLayer should return sigmoid(x W + b)",
    )


@pytest.mark.grade("dense_layer", points=0.5)
def test_dense_layer_output_shape_for_several_batches(student, rng) -> None:
    _, d, n = random_dims(rng)
    student.call("OurDenseLayer", n, store_as="_grader_layer2")
    for batch in (1, 7):
        x = rng.normal(size=(batch, d)).astype("float32")
        y = assert_shape(
            student.call("_grader_layer2", x),
            (batch, n),
            "OurDenseLayer should map (batch, d) to (batch, n_output_nodes)",
        )
        assert_true(
            bool(np.all((y > 0) & (y < 1))),
            "OurDenseLayer's outputs should lie strictly between 0 and 1 (a sigmoid)",
        )


# The three exercises that build a model of one sigmoid Dense layer, graded alike: the student's
# builder (a function or a class), what the feedback calls it, and its grade cell.
ONE_LAYER_MODELS = [
    pytest.param(
        "build_sequential_model",
        "build_sequential_model(n)",
        marks=pytest.mark.grade("sequential_model", points=1),
        id="sequential",
    ),
    pytest.param(
        "SubclassModel",
        "SubclassModel(n)",
        marks=pytest.mark.grade("subclass_model", points=1),
        id="subclass",
    ),
    pytest.param(
        "IdentityModel",
        "IdentityModel(n) with isidentity=False",
        marks=pytest.mark.grade("identity_model", points=1),
        id="identity-switched-off",
    ),
]


@pytest.mark.parametrize(("build", "what"), ONE_LAYER_MODELS)
def test_model_is_one_sigmoid_dense_layer(student, rng, build: str, what: str) -> None:
    """BUILD(n), the student's function or class, makes a model of one sigmoid Dense layer."""
    batch, d, n = random_dims(rng)
    x = rng.normal(size=(batch, d)).astype("float32")
    student.call(build, n, store_as="_grader_model")
    y = student.call("_grader_model", x)
    weights = student.call("_grader_model.get_weights")
    assert_true(
        isinstance(weights, list) and len(weights) == 2,
        f"{what} should hold exactly one Dense layer (a kernel and a bias)",
    )
    kernel, bias = (as_array(v, "a weight") for v in weights)
    assert_close(
        y,
        reference.dense(x, kernel, bias.reshape(1, -1)),
        f"{what} should compute sigmoid(x W + b) with {n} outputs",
    )


@pytest.mark.grade("identity_model", points=1)
def test_identity_model_returns_input_when_switched_on(student, rng) -> None:
    batch, d, n = random_dims(rng)
    x = rng.normal(size=(batch, d)).astype("float32")
    student.call("IdentityModel", n, store_as="_grader_identity")
    student.call("_grader_identity", x)  # build through the dense branch first, as Keras expects
    got = student.call("_grader_identity", x, isidentity=True)
    assert_close(
        got, x, "IdentityModel(x, isidentity=True) should return x unchanged", rtol=0, atol=0
    )


# --- 1.4 automatic differentiation -------------------------------------------------------------
@pytest.mark.grade("gradient_tape", points=1)
def test_gradient_of_square_is_two_x(student, rng) -> None:
    for x in rng.uniform(-10, 10, size=3):
        got = student.call("gradient_of_square", float(x))
        assert_close(got, 2 * x, f"gradient_of_square({x:.3f}) should be dy/dx of x*x, that is 2x")


# Shown after the due date only: before it, a pre-deadline check counts this test as passed or
# failed, so a student fixes the update rule instead of tuning numbers against its tolerance.
@pytest.mark.visibility("after_due_date")
@pytest.mark.grade("gradient_descent", points=2)
def test_minimize_loss_follows_gradient_descent(student, rng) -> None:
    x_f = float(rng.uniform(-5, 5))
    learning_rate = float(rng.uniform(0.01, 0.1))
    steps = int(rng.integers(60, 120))
    result = student.call("minimize_loss", x_f, learning_rate, steps, int(rng.integers(0, 1000)))
    assert_true(
        isinstance(result, list | tuple) and len(result) == 2,
        "minimize_loss should return (x_final, history)",
    )
    x_final, history = result
    history = as_array(history, "history")
    assert_true(
        history.shape == (steps,),
        f"history should hold x after each of the {steps} steps; it has shape {history.shape}",
    )
    # Undo the first step to find the (random) start, then replay gradient descent from it.
    x0 = (history[0] - 2 * learning_rate * x_f) / (1 - 2 * learning_rate)
    expected = reference.gradient_descent_history(float(x0), x_f, learning_rate, steps)
    assert_close(
        history,
        expected,
        "each step should be x <- x - learning_rate * dL/dx for L = (x - x_f)^2",
        rtol=1e-3,
        atol=1e-3,
    )
    assert_close(
        x_final, history[-1], "x_final should be the last value of x", rtol=1e-5, atol=1e-5
    )

"""Do the public checks of Lab 1 Part 1 pass correct work and explain typical mistakes in words?

Each check runs on a correct implementation (it must print one "✓" line and nothing on stderr)
and on the mistakes students actually make (it must fail with a message that names the fix).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest
import tensorflow as tf

from introdl.checks import CheckFailed
from introdl.checks import lab1_tensorflow as check

SOURCE = (
    Path(__file__).resolve().parents[1] / "source" / "lab1_tensorflow" / "lab1_tensorflow.ipynb"
)

# --- Correct work -------------------------------------------------------------------------------


def make_matrix() -> tf.Tensor:
    return tf.constant([[1.0, 2.0], [3.0, 4.0]])


def make_images(
    batch: int = 10, height: int = 256, width: int = 256, channels: int = 3
) -> tf.Tensor:
    return tf.zeros([batch, height, width, channels])


def func(a: Any, b: Any) -> Any:
    return (a + b) * (b - 1)


class DenseLayer(keras.layers.Layer):
    """A correct OurDenseLayer; subclasses below make one mistake each in `call`."""

    def __init__(self, n_output_nodes: int) -> None:
        super().__init__()
        self.n_output_nodes = n_output_nodes

    def build(self, input_shape: tuple[int, ...]) -> None:
        d = int(input_shape[-1])
        self.W = self.add_weight(name="weight", shape=(d, self.n_output_nodes))
        self.b = self.add_weight(name="bias", shape=(1, self.n_output_nodes))

    def call(self, x: tf.Tensor) -> tf.Tensor:
        return tf.sigmoid(tf.matmul(x, self.W) + self.b)


def build_sequential_model(n_output_nodes: int) -> keras.Sequential:
    return keras.Sequential([keras.layers.Dense(n_output_nodes, activation="sigmoid")])


class SubclassModel(keras.Model):
    def __init__(self, n_output_nodes: int) -> None:
        super().__init__()
        self.dense_layer = keras.layers.Dense(n_output_nodes, activation="sigmoid")

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        return self.dense_layer(inputs)


class IdentityModel(keras.Model):
    def __init__(self, n_output_nodes: int) -> None:
        super().__init__()
        self.dense_layer = keras.layers.Dense(n_output_nodes, activation="sigmoid")

    def call(self, inputs: tf.Tensor, isidentity: bool = False) -> tf.Tensor:
        return inputs if isidentity else self.dense_layer(inputs)


def gradient_of_square(x: float) -> tf.Tensor:
    x = tf.Variable(tf.cast(x, tf.float32))
    with tf.GradientTape() as tape:
        y = x * x
    return tape.gradient(y, x)


def descent(
    update: Callable[[tf.Variable, tf.Tensor, float], None], loss_fn: Any = None
) -> Callable[..., Any]:
    """A minimize_loss whose step is UPDATE (and whose loss is LOSS_FN, default (x - x_f)**2)."""
    loss_fn = loss_fn or (lambda x, x_f: (x - x_f) ** 2)

    def minimize_loss(
        x_f: float, learning_rate: float = 1e-2, num_training_iterations: int = 500, seed: int = 0
    ) -> tuple[float, list[float]]:
        tf.random.set_seed(seed)
        x = tf.Variable(tf.random.normal([]))
        history = []
        for _ in range(num_training_iterations):
            with tf.GradientTape() as tape:
                loss = loss_fn(x, x_f)
            update(x, tape.gradient(loss, x), learning_rate)
            history.append(float(x.numpy()))
        return float(x.numpy()), history

    return minimize_loss


def gradient_step(x: tf.Variable, grad: tf.Tensor, learning_rate: float) -> None:
    x.assign(x - learning_rate * grad)


def sgd_minimize_loss(
    x_f: float, learning_rate: float = 1e-2, num_training_iterations: int = 500, seed: int = 0
) -> tuple[float, list[float]]:
    """The same descent through keras.optimizers.SGD, which the lab also accepts."""
    tf.random.set_seed(seed)
    x = tf.Variable(tf.random.normal([]))
    optimizer = keras.optimizers.SGD(learning_rate=learning_rate)
    history = []
    for _ in range(num_training_iterations):
        with tf.GradientTape() as tape:
            loss = (x - x_f) ** 2
        optimizer.apply_gradients([(tape.gradient(loss, x), x)])
        history.append(float(x.numpy()))
    return float(x.numpy()), history


CORRECT: list[tuple[Callable[..., None], tuple[Any, ...]]] = [
    (check.tensors, (make_matrix, make_images)),
    (check.computation, (func,)),
    (check.computation, (lambda a, b: tf.multiply(tf.add(a, b), tf.subtract(b, 1)),)),
    (check.dense_layer, (DenseLayer,)),
    (check.sequential_model, (build_sequential_model,)),
    (check.subclass_model, (SubclassModel,)),
    (check.identity_model, (IdentityModel,)),
    (check.gradient_tape, (gradient_of_square,)),
    (check.gradient_descent, (descent(gradient_step),)),
    (check.gradient_descent, (sgd_minimize_loss,)),
]


@pytest.mark.parametrize(("run_check", "work"), CORRECT, ids=lambda v: getattr(v, "__name__", None))
def test_correct_work_passes_with_one_line_and_no_stderr(
    run_check: Callable[..., None], work: tuple[Any, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    """Does each check accept a correct implementation, say so on one line, and keep stderr empty?"""
    run_check(*work)
    out, err = capsys.readouterr()
    assert out.startswith("✓ "), out
    assert out.count("\n") == 1, out
    assert err == ""


def test_an_exercise_not_done_yet_raises_not_implemented_error_unchanged() -> None:
    """Does a check let NotImplementedError through, so a fresh release fails only with it?"""

    class Stub(DenseLayer):
        def call(self, x: tf.Tensor) -> tf.Tensor:
            raise NotImplementedError

    def stub(*args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    with pytest.raises(NotImplementedError):
        check.dense_layer(Stub)
    with pytest.raises(NotImplementedError):
        check.gradient_descent(stub)
    with pytest.raises(NotImplementedError):
        check.tensors(stub, make_images)


def test_a_crash_in_student_code_names_the_call_and_keeps_the_original_error() -> None:
    """Does a crash other than NotImplementedError become a CheckFailed that names the call?"""

    class WrongOrder(DenseLayer):
        def call(self, x: tf.Tensor) -> tf.Tensor:
            return tf.sigmoid(tf.matmul(self.W, x) + self.b)  # (d, n) @ (batch, d): shapes clash

    with pytest.raises(CheckFailed, match=r"OurDenseLayer\(3\) on a \(4, 2\) input raised") as info:
        check.dense_layer(WrongOrder)
    assert info.value.__cause__ is not None


# --- 1.1 Tensors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("matrix", "images", "message"),
    [
        (lambda: np.ones((2, 2)), make_images, "not a NumPy array"),
        (lambda: tf.constant([1, 2, 3]), make_images, "2-d Tensor"),
        (lambda: tf.Variable([[1.0]]), make_images, "not a tf.Variable"),
        (
            make_matrix,
            lambda batch=10, height=256, width=256, channels=3: tf.zeros([10, 256, 256, 3]),
            "from the arguments",
        ),
        (
            make_matrix,
            lambda batch=10, height=256, width=256, channels=3: tf.zeros(
                [batch, channels, height, width]
            ),
            "order",
        ),
        (
            make_matrix,
            lambda batch=10, height=256, width=256, channels=3: tf.ones(
                [batch, height, width, channels]
            ),
            "zeros",
        ),
    ],
    ids=["numpy", "rank-1", "variable", "fixed-shape", "channels-first", "ones"],
)
def test_tensors_explains_wrong_tensors(
    matrix: Callable[[], Any], images: Callable[..., Any], message: str
) -> None:
    """Does check.tensors say what is wrong with a matrix or an image batch of the wrong kind?"""
    with pytest.raises(CheckFailed, match=message):
        check.tensors(matrix, images)


# --- 1.2 Computation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wrong", "message"),
    [
        (lambda a, b: (a + b) * (b + 1), r"should be 6\.0"),
        (lambda a, b: (a + b) + (b - 1), r"should be 6\.0"),
        (lambda a, b: (a + b) * (a - 1), r"should be 6\.0"),
        (lambda a, b: tf.reduce_sum((a + b) * (b - 1)), r"shape \(2, 3\)"),
    ],
    ids=["d=b+1", "e=c+d", "d=a-1", "reduced"],
)
def test_computation_rejects_a_wrong_graph(wrong: Callable[[Any, Any], Any], message: str) -> None:
    """Does check.computation catch a wrong node in the graph, or a result of the wrong shape?"""
    with pytest.raises(CheckFailed, match=message):
        check.computation(wrong)


def test_computation_catches_a_hard_coded_answer() -> None:
    """Does a func that only knows the lab's example (1.5, 2.5) still fail?"""
    with pytest.raises(CheckFailed, match="b = 1"):
        check.computation(lambda a, b: tf.constant(6.0) + 0 * tf.cast(a, tf.float32))


# --- 1.3 Neural networks -------------------------------------------------------------------------


class NoSigmoid(DenseLayer):
    def call(self, x: tf.Tensor) -> tf.Tensor:
        return tf.matmul(x, self.W) + self.b


class NoBias(DenseLayer):
    def call(self, x: tf.Tensor) -> tf.Tensor:
        return tf.sigmoid(tf.matmul(x, self.W))


class Softmax(DenseLayer):
    def call(self, x: tf.Tensor) -> tf.Tensor:
        return tf.nn.softmax(tf.matmul(x, self.W) + self.b)


class NoMatmul(DenseLayer):
    def call(self, x: tf.Tensor) -> tf.Tensor:
        return tf.sigmoid(tf.reduce_sum(x, axis=1, keepdims=True) * tf.reduce_mean(self.W) + self.b)


class IgnoresInput(DenseLayer):
    """Sums W over its rows instead of multiplying by x: right shape, wrong values."""

    def call(self, x: tf.Tensor) -> tf.Tensor:
        return tf.sigmoid(tf.reduce_sum(self.W, axis=0, keepdims=True) + self.b + 0 * x[:, :1])


class UntrackedWeights(keras.layers.Layer):
    """Keeps W and b as NumPy arrays, which Keras does not train."""

    def __init__(self, n_output_nodes: int) -> None:
        super().__init__()
        self.n_output_nodes = n_output_nodes

    def build(self, input_shape: tuple[int, ...]) -> None:
        self.W = np.zeros((int(input_shape[-1]), self.n_output_nodes), dtype="float32")
        self.b = np.zeros((1, self.n_output_nodes), dtype="float32")

    def call(self, x: tf.Tensor) -> tf.Tensor:
        return tf.sigmoid(tf.matmul(x, self.W) + self.b)


@pytest.mark.parametrize(
    ("layer", "message"),
    [
        (NoSigmoid, r"values must lie in \(0, 1\)"),
        (NoBias, "The bias b is missing"),
        (Softmax, r"sigmoid\(0\) = 0\.5"),
        (NoMatmul, "tf.matmul"),
        (IgnoresInput, "tf.matmul"),
        (UntrackedWeights, "self.add_weight"),
    ],
    ids=lambda v: getattr(v, "__name__", None),
)
def test_dense_layer_names_the_missing_piece(layer: type, message: str) -> None:
    """Does check.dense_layer tell a layer without sigmoid, bias or matmul what it lacks?"""
    with pytest.raises(CheckFailed, match=message):
        check.dense_layer(layer)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda n: keras.Sequential([keras.layers.Dense(n)]), "activation='sigmoid'"),
        (
            lambda n: keras.Sequential([keras.layers.Dense(n, activation="relu")]),
            "activation='sigmoid'",
        ),
        (
            lambda n: keras.Sequential([keras.layers.Dense(3, activation="sigmoid")]),
            r"shape \(4, 5\)",
        ),
        (
            lambda n: keras.Sequential(
                [keras.layers.Dense(n, activation="sigmoid", use_bias=False)]
            ),
            "use_bias",
        ),
        (
            lambda n: keras.Sequential(
                [keras.layers.Dense(8), keras.layers.Dense(n, activation="sigmoid")]
            ),
            "exactly one layer",
        ),
        (SubclassModel, "keras.Sequential"),
    ],
    ids=["linear", "relu", "fixed-units", "no-bias", "two-layers", "not-sequential"],
)
def test_sequential_model_rejects_the_wrong_network(
    build: Callable[[int], Any], message: str
) -> None:
    """Does check.sequential_model catch a wrong activation, size, bias or number of layers?"""
    with pytest.raises(CheckFailed, match=message):
        check.sequential_model(build)


class MisnamedLayer(keras.Model):
    def __init__(self, n_output_nodes: int) -> None:
        super().__init__()
        self.dense = keras.layers.Dense(n_output_nodes, activation="sigmoid")

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        return self.dense(inputs)


class LinearSubclass(SubclassModel):
    def __init__(self, n_output_nodes: int) -> None:
        super().__init__(n_output_nodes)
        self.dense_layer = keras.layers.Dense(n_output_nodes)


class FixedSizeSubclass(SubclassModel):
    def __init__(self, n_output_nodes: int) -> None:
        super().__init__(3)


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (MisnamedLayer, "self.dense_layer"),
        (LinearSubclass, r"values in \(0, 1\)|activation='sigmoid'"),
        (FixedSizeSubclass, r"shape \(4, 5\)"),
    ],
    ids=lambda v: getattr(v, "__name__", None),
)
def test_subclass_model_rejects_the_wrong_layer(model: type, message: str) -> None:
    """Does check.subclass_model catch a misnamed, linear or fixed-size dense layer?"""
    with pytest.raises(CheckFailed, match=message):
        check.subclass_model(model)


class IgnoresSwitch(IdentityModel):
    def call(self, inputs: tf.Tensor, isidentity: bool = False) -> tf.Tensor:
        return self.dense_layer(inputs)


class InvertedSwitch(IdentityModel):
    def call(self, inputs: tf.Tensor, isidentity: bool = False) -> tf.Tensor:
        return self.dense_layer(inputs) if isidentity else inputs


class ApproximateIdentity(IdentityModel):
    """Returns a copy that is close to, but not exactly, the input."""

    def call(self, inputs: tf.Tensor, isidentity: bool = False) -> tf.Tensor:
        return inputs * 1.001 if isidentity else self.dense_layer(inputs)


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (IgnoresSwitch, "ignores isidentity"),
        (InvertedSwitch, "inverted"),
        (ApproximateIdentity, "unchanged"),
    ],
    ids=lambda v: getattr(v, "__name__", None),
)
def test_identity_model_explains_a_broken_switch(model: type, message: str) -> None:
    """Does check.identity_model catch a switch that is ignored, inverted or not exact?"""
    with pytest.raises(CheckFailed, match=message):
        check.identity_model(model)


# --- 1.4 Automatic differentiation ---------------------------------------------------------------


def returns_y(x: float) -> tf.Tensor:
    x = tf.Variable(tf.cast(x, tf.float32))
    with tf.GradientTape():
        y = x * x
    return y


def unwatched_constant(x: float) -> Any:
    x = tf.constant(x, tf.float32)
    with tf.GradientTape() as tape:
        y = x * x
    return tape.gradient(y, x)


@pytest.mark.parametrize(
    ("gradient", "message"),
    [
        (returns_y, "That is y = x \\* x itself"),
        (unwatched_constant, "returned None"),
        (lambda x: tf.constant(6.0), r"gradient_of_square\(-2\.0\) should be dy/dx = 2x = -4\.0"),
    ],
    ids=["returns-y", "unwatched", "hard-coded"],
)
def test_gradient_tape_explains_a_wrong_derivative(
    gradient: Callable[[float], Any], message: str
) -> None:
    """Does check.gradient_tape explain a returned y, a None gradient and a hard-coded 6?"""
    with pytest.raises(CheckFailed, match=message):
        check.gradient_tape(gradient)


def step_uphill(x: tf.Variable, grad: tf.Tensor, learning_rate: float) -> None:
    x.assign(x + learning_rate * grad)


def step_sign_only(x: tf.Variable, grad: tf.Tensor, learning_rate: float) -> None:
    x.assign(x - learning_rate * tf.sign(grad))


def float32_history(
    x_f: float, learning_rate: float = 1e-2, num_training_iterations: int = 500, seed: int = 0
) -> tuple[float, list[Any]]:
    x_final, history = descent(gradient_step)(x_f, learning_rate, num_training_iterations, seed)
    return x_final, [np.float32(v) for v in history]


def rebinds_x(
    x_f: float, learning_rate: float = 1e-2, num_training_iterations: int = 500, seed: int = 0
) -> tuple[float, list[float]]:
    """Writes x = x - ..., so x stops being a variable and the next gradient is None."""
    tf.random.set_seed(seed)
    x: Any = tf.Variable(tf.random.normal([]))
    history = []
    for _ in range(num_training_iterations):
        with tf.GradientTape() as tape:
            loss = (x - x_f) ** 2
        x = x - learning_rate * tape.gradient(loss, x)
        history.append(float(x.numpy()))
    return float(x.numpy()), history


@pytest.mark.parametrize(
    ("minimize_loss", "message"),
    [
        (descent(step_uphill), "grew from"),
        (descent(gradient_step, loss_fn=lambda x, x_f: tf.abs(x - x_f)), "a factor 0.98"),
        (descent(step_sign_only), "a factor 0.98"),
        (float32_history, "Python floats"),
        (rebinds_x, r"x\.assign"),
    ],
    ids=["uphill", "abs-loss", "sign-step", "float32-history", "rebinds-x"],
)
def test_gradient_descent_explains_a_broken_loop(
    minimize_loss: Callable[..., Any], message: str
) -> None:
    """Does check.gradient_descent catch a wrong sign, a wrong loss, wrong types or a lost variable?"""
    with pytest.raises(CheckFailed, match=message):
        check.gradient_descent(minimize_loss)


# --- The notebook uses these checks under the published grade ids -------------------------------

GRADE_CELLS = {
    "tensors": 1,
    "computation": 1,
    "dense_layer": 2,
    "sequential_model": 1,
    "subclass_model": 1,
    "identity_model": 2,
    "gradient_tape": 1,
    "gradient_descent": 2,
}


def test_each_grade_cell_runs_the_check_named_after_its_grade_id() -> None:
    """Do the source notebook's grade cells carry the published ids and points, in lab order?"""
    cells = json.loads(SOURCE.read_text(encoding="utf-8"))["cells"]
    graded = [c for c in cells if c["metadata"].get("nbgrader", {}).get("grade")]
    found = {
        c["metadata"]["nbgrader"]["grade_id"]: c["metadata"]["nbgrader"]["points"] for c in graded
    }
    assert list(found.items()) == list(GRADE_CELLS.items())
    for cell in graded:
        grade_id = cell["metadata"]["nbgrader"]["grade_id"]
        assert cell["metadata"]["nbgrader"]["locked"], grade_id
        assert f"check.{grade_id}(" in "".join(cell["source"]), grade_id

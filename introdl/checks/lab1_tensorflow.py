"""Public checks for Lab 1 Part 1 (intro to TensorFlow), one per graded exercise.

Each function is named after the grade cell that calls it (`check.dense_layer(OurDenseLayer)`
runs in the cell whose grade id is `dense_layer`). They check shapes, value ranges and small cases
whose answer is known (sigmoid(0) = 0.5, the derivative of x² at 3 is 6), never a reference
implementation, so they can ship inside the student's notebook.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from introdl.checks import CheckFailed, as_array, calling, describe, fail, passed
from introdl.checks import quiet as _quiet
from introdl.checks.lab1_tensorflow_autodiff import (
    gradient_descent,
    gradient_tape,
)

__all__ = [
    "CheckFailed",
    "computation",
    "dense_layer",
    "gradient_descent",
    "gradient_tape",
    "identity_model",
    "sequential_model",
    "subclass_model",
    "tensors",
]

# The checks draw their own inputs from a fixed generator, so a check that fails once fails
# again on re-run (and a student can reproduce it).
_SEED = 6191


def _inputs(shape: tuple[int, ...], seed: int = _SEED) -> tf.Tensor:
    return tf.constant(np.random.default_rng(seed).normal(size=shape), dtype=tf.float32)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-z)))


# --- 1.1 Tensors ---------------------------------------------------------------------------------


def _expect_tensor(value: Any, what: str) -> tf.Tensor:
    if isinstance(value, tf.Tensor):
        return value
    if value is None:
        fail(f"{what} returned None: did you forget the `return` statement?")
    if isinstance(value, tf.Variable):
        fail(
            f"{what} should return a tf.Tensor, not a tf.Variable: build it with tf.constant or tf.zeros."
        )
    if isinstance(value, np.ndarray):
        fail(f"{what} should return a tf.Tensor, not a NumPy array: wrap it with tf.constant(...).")
    fail(
        f"{what} should return a tf.Tensor (made with tf.constant or tf.zeros); got {type(value).__name__}."
    )


def _order_hint(got: tuple[Any, ...], want: tuple[int, ...]) -> str:
    if sorted(got) == sorted(want):
        return " The order of the dimensions is (batch, height, width, channels)."
    return ""


def tensors(make_matrix: Callable[[], Any], make_images: Callable[..., Any]) -> None:
    """make_matrix() gives a 2-d tensor; make_images(...) gives zeros shaped (batch, h, w, c)."""
    with calling("make_matrix()"):
        matrix = _expect_tensor(make_matrix(), "make_matrix()")
    if matrix.shape.rank != 2:
        fail(
            f"make_matrix() should return a 2-d Tensor (rank 2: rows and columns, like [[1, 2], [3, 4]]); "
            f"got rank {matrix.shape.rank} with shape {tuple(matrix.shape)}."
        )
    if matrix.shape.num_elements() == 0:
        fail(
            f"make_matrix() returned an empty matrix of shape {tuple(matrix.shape)}; put some numbers in it."
        )

    with calling("make_images()"):
        images = _expect_tensor(make_images(), "make_images()")
    if tuple(images.shape) != (10, 256, 256, 3):
        fail(
            "make_images() with its default arguments should have shape (10, 256, 256, 3): "
            f"10 images of 256 x 256 pixels with 3 colour channels; got {tuple(images.shape)}."
            + _order_hint(tuple(images.shape), (10, 256, 256, 3))
        )
    small = (2, 5, 4, 1)
    with calling("make_images(batch=2, height=5, width=4, channels=1)"):
        few = _expect_tensor(
            make_images(batch=2, height=5, width=4, channels=1),
            "make_images(batch=2, height=5, width=4, channels=1)",
        )
    if tuple(few.shape) != small:
        hint = _order_hint(tuple(few.shape), small) or (
            " Build the shape from the arguments instead of fixed numbers."
        )
        fail(
            f"make_images(batch=2, height=5, width=4, channels=1) should have shape {small}; "
            f"got {tuple(few.shape)}.{hint}"
        )
    if bool(tf.reduce_any(images != 0)) or bool(tf.reduce_any(few != 0)):
        fail("make_images(...) should be all zeros (tf.zeros); some entries are not 0.")
    passed(
        f"make_matrix() is a 2-d Tensor of shape {tuple(matrix.shape)}; "
        "make_images() is zeros of shape (batch, height, width, channels)"
    )


# --- 1.2 Computations on tensors -----------------------------------------------------------------


def computation(func: Callable[[Any, Any], Any]) -> None:
    """func(a, b) computes e = c * d with c = a + b and d = b - 1, on numbers and tensors."""
    with calling("func(1.5, 2.5)"):
        got = as_array(func(1.5, 2.5), "func(1.5, 2.5)")
    if got.size != 1 or not np.isclose(float(got.reshape(())), 6.0):
        fail(
            f"func(1.5, 2.5) should be 6.0 (c = 1.5 + 2.5 = 4.0, d = 2.5 - 1 = 1.5, e = c * d = 6.0); "
            f"got {describe(got)}. Follow the graph: c = a + b, d = b - 1, e = c * d."
        )

    a = tf.constant([[-2.0, 0.5, 3.0], [1.0, -1.0, 4.0]])
    ones = tf.ones_like(a)
    with calling("func(a, b) on (2, 3) tensors"):
        got = as_array(func(a, ones), "func(a, b) on (2, 3) tensors")
    if got.shape != (2, 3):
        fail(
            f"func(a, b) on two tensors of shape (2, 3) should return shape (2, 3) (element-wise); got {got.shape}."
        )
    if not np.allclose(got, 0.0):
        fail(
            f"with b = 1, d = b - 1 is 0, so func(a, b) must be 0 for every a; got {describe(got)}. "
            "Check that d is b - 1 and that e multiplies c by d."
        )
    with calling("func(-b, b)"):
        got = as_array(func(-a, a), "func(-b, b)")
    if not np.allclose(got, 0.0):
        fail(
            f"with a = -b, c = a + b is 0, so func(-b, b) must be 0; got {describe(got)}. Check c = a + b."
        )

    b = tf.constant([2.0, 3.0, -1.0])
    with calling("func(a, b) with a scalar a"):
        got = as_array(func(tf.constant(2.0), b), "func(2.0, b)")
    expected = np.array([4.0 * 1.0, 5.0 * 2.0, 1.0 * -2.0])
    if got.shape != (3,) or not np.allclose(got, expected):
        fail(
            f"func(2.0, [2.0, 3.0, -1.0]) should broadcast the scalar and give {describe(expected)}; "
            f"got {describe(got)}."
        )
    passed("func(a, b) = (a + b) * (b - 1) on numbers and tensors")


# --- 1.3 Neural networks -------------------------------------------------------------------------


def dense_layer(OurDenseLayer: type) -> None:
    """OurDenseLayer(n) creates W (d, n) and b (1, n) and computes sigmoid(x W + b)."""
    n = 3
    with calling(f"OurDenseLayer({n})"), _quiet():
        layer = OurDenseLayer(n)
    if not isinstance(layer, keras.layers.Layer):
        fail(f"OurDenseLayer should subclass keras.layers.Layer; got {type(layer).__mro__[1:]}.")
    x = _inputs((4, 2))
    with calling(f"OurDenseLayer({n}) on a (4, 2) input"), _quiet():
        y = as_array(layer(x), "OurDenseLayer.call(x)")

    for name, shape in (("W", (2, n)), ("b", (1, n))):
        weight = getattr(layer, name, None)
        if weight is None:
            fail(f"OurDenseLayer.build should create self.{name} with self.add_weight(...).")
        if tuple(weight.shape) != shape:
            fail(
                f"for a (4, 2) input, OurDenseLayer({n}).{name} should have shape {shape}; "
                f"got {tuple(weight.shape)}."
            )
        if not any(w is weight for w in layer.trainable_weights):
            fail(
                f"self.{name} is not a trainable weight of the layer: create it with self.add_weight(...)."
            )

    if y.shape != (4, n):
        fail(
            f"OurDenseLayer({n}) on a (4, 2) input should return shape (4, {n}) (one row per example, "
            f"one column per output node); got {y.shape}. Multiply x (4, 2) by W (2, {n}) with tf.matmul."
        )
    if not np.all((y > 0) & (y < 1)):
        fail(
            f"OurDenseLayer.call should return sigmoid(xW + b): values must lie in (0, 1); "
            f"got {describe(y)}. Apply tf.sigmoid to z = xW + b."
        )

    def output_with(W: np.ndarray, b: np.ndarray, inputs: tf.Tensor) -> np.ndarray:
        layer.W.assign(W.astype("float32"))
        layer.b.assign(b.astype("float32"))
        with calling("OurDenseLayer.call(x)"), _quiet():
            return as_array(layer(inputs), "OurDenseLayer.call(x)")

    got = output_with(np.zeros((2, n)), np.zeros((1, n)), x)
    if not np.allclose(got, 0.5, atol=1e-6):
        fail(
            f"with W = 0 and b = 0, z = xW + b is 0 and sigmoid(0) = 0.5, so every output should be 0.5; "
            f"got {describe(got)}. Return tf.sigmoid(z)."
        )
    b = np.array([[-2.0, 0.0, 3.0]])
    got = output_with(np.zeros((2, n)), b, x)
    expected = np.repeat(_sigmoid(b), 4, axis=0)
    if not np.allclose(got, expected, atol=1e-5):
        hint = " The bias b is missing: z = xW + b." if np.allclose(got, 0.5, atol=1e-6) else ""
        fail(
            f"with W = 0 and b = {b.tolist()}, every row should be sigmoid(b) = {describe(expected[0])}; "
            f"got {describe(got)}.{hint}"
        )
    W = np.array([[1.0, 0.0, -1.0], [0.0, 1.0, 1.0]])
    x_one = tf.constant([[1.0, 2.0]])
    got = output_with(W, np.zeros((1, n)), x_one)
    expected = _sigmoid(np.array([[1.0, 2.0, 1.0]]))
    if not np.allclose(got, expected, atol=1e-5):
        fail(
            f"with x = [[1, 2]], W = {W.tolist()} and b = 0, xW = [[1, 2, 1]], so the output should be "
            f"sigmoid(xW) = {describe(expected)}; got {describe(got)}. Compute tf.matmul(x, self.W)."
        )
    passed(
        f"OurDenseLayer({n}) computes sigmoid(xW + b) with W of shape (d, {n}) and b of shape (1, {n})"
    )


def _check_sigmoid_dense(model: keras.Model, layer: Any, owner: str, n: int) -> None:
    """LAYER is a Dense(n, activation='sigmoid') with a bias, seen through MODEL."""
    if not isinstance(layer, keras.layers.Dense):
        fail(f"{owner} should be a keras.layers.Dense layer; got {type(layer).__name__}.")
    if layer.units != n:
        fail(
            f"{owner} should have {n} units (n_output_nodes); got Dense({layer.units}). "
            "Use the n_output_nodes argument rather than a fixed number."
        )
    if layer.bias is None:
        fail(f"{owner} should keep its bias b (leave use_bias at its default, True).")
    x = _inputs((4, 2))
    layer.kernel.assign(np.zeros(tuple(layer.kernel.shape), dtype="float32"))
    layer.bias.assign(np.zeros(tuple(layer.bias.shape), dtype="float32"))
    with calling(f"{owner} on a (4, 2) input"), _quiet():
        got = as_array(model(x), f"the model's output with {owner}")
    if not np.allclose(got, 0.5, atol=1e-6):
        fail(
            f"with all weights 0 the output should be sigmoid(0) = 0.5 everywhere; got {describe(got)}. "
            f"Give {owner} activation='sigmoid'."
        )


def _check_output(model: keras.Model, what: str, n: int) -> None:
    x = _inputs((4, 2))
    with calling(f"{what} on a (4, 2) input"), _quiet():
        y = as_array(model(x), f"{what}(x)")
    if y.shape != (4, n):
        fail(f"{what} on a (4, 2) input should return shape (4, {n}); got {y.shape}.")
    if not np.all((y > 0) & (y < 1)):
        fail(
            f"{what} should output sigmoid values in (0, 1); got {describe(y)}. "
            "Give its Dense layer activation='sigmoid'."
        )


def sequential_model(build_sequential_model: Callable[[int], Any]) -> None:
    """build_sequential_model(n) is a keras.Sequential holding one Dense(n, sigmoid)."""
    for n in (3, 5):
        with calling(f"build_sequential_model({n})"), _quiet():
            model = build_sequential_model(n)
        if not isinstance(model, keras.Sequential):
            fail(
                f"build_sequential_model({n}) should return a keras.Sequential model; got {type(model).__name__}."
            )
        _check_output(model, f"build_sequential_model({n})", n)
        if len(model.layers) != 1:
            names = [type(layer).__name__ for layer in model.layers]
            fail(f"the Sequential model should hold exactly one layer, a Dense layer; got {names}.")
        _check_sigmoid_dense(model, model.layers[0], "the Sequential model's layer", n)
    passed("build_sequential_model(n) is a Sequential model with one Dense(n, sigmoid) layer")


def subclass_model(SubclassModel: type) -> None:
    """SubclassModel(n) keeps a Dense(n, sigmoid) in self.dense_layer and applies it in call."""
    for n in (3, 5):
        with calling(f"SubclassModel({n})"), _quiet():
            model = SubclassModel(n)
        if not isinstance(model, keras.Model):
            fail(f"SubclassModel should subclass keras.Model; got {type(model).__name__}.")
        if getattr(model, "dense_layer", None) is None:
            fail("SubclassModel.__init__ should create its layer as self.dense_layer.")
        _check_output(model, f"SubclassModel({n})", n)
        _check_sigmoid_dense(model, model.dense_layer, "self.dense_layer", n)
    passed("SubclassModel(n) applies one Dense(n, sigmoid) layer in call")


def identity_model(IdentityModel: type) -> None:
    """IdentityModel(n)(x) applies its dense layer, and returns x unchanged when isidentity=True."""
    n = 3
    with calling(f"IdentityModel({n})"), _quiet():
        model = IdentityModel(n)
    if not isinstance(model, keras.Model):
        fail(f"IdentityModel should subclass keras.Model; got {type(model).__name__}.")
    x = _inputs((4, 2))
    # The dense branch runs first: Keras warns when a model's first call skips its layers.
    with calling("IdentityModel(3)(x)"), _quiet():
        default = as_array(model(x), "IdentityModel(3)(x)")
    if default.shape == tuple(x.shape) and np.array_equal(default, x.numpy()):
        fail(
            "with isidentity=False (the default) the model should apply its dense layer, but it returned "
            "the input unchanged. Is the switch inverted?"
        )
    if default.shape != (4, n):
        fail(
            f"IdentityModel(3)(x) on a (4, 2) input should return the dense layer's (4, {n}) output; got {default.shape}."
        )
    with calling("IdentityModel(3)(x, isidentity=False)"), _quiet():
        explicit = as_array(model(x, isidentity=False), "IdentityModel(3)(x, isidentity=False)")
    if not np.allclose(explicit, default):
        fail(
            "model(x, isidentity=False) should give the same output as model(x): False is the default."
        )

    for inputs in (x, _inputs((3, 2), seed=_SEED + 1)):
        with calling("IdentityModel(3)(x, isidentity=True)"), _quiet():
            same = as_array(model(inputs, isidentity=True), "IdentityModel(3)(x, isidentity=True)")
        want = tuple(inputs.shape)
        if same.shape != want:
            hint = (
                " The model ignores isidentity: return the inputs themselves when it is True."
                if same.shape == (want[0], n)
                else ""
            )
            fail(
                f"with isidentity=True the model should return its input unchanged, of shape {want}; "
                f"got shape {same.shape}.{hint}"
            )
        if not np.array_equal(same, inputs.numpy()):
            fail(
                "with isidentity=True the model should return its input unchanged, but the values "
                f"differ by up to {np.abs(same - inputs.numpy()).max():.3g}. Return `inputs` itself."
            )
    passed(
        "IdentityModel applies its dense layer by default and returns the input when isidentity=True"
    )

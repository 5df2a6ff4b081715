"""Grader code that runs INSIDE the student's kernel for lab2_mnist's hidden tests.

Installed by the tests with ``student.install(Path(__file__).with_name("in_kernel.py"))`` as
``_grader_lab2_mnist``; the door binds `NOTEBOOK` to the notebook's namespace. Networks and
optimizers cannot cross the door, so they are made here and kept in the notebook's namespace
under the `_grader_...` names the tests choose (the tests then reach them by attribute path:
``student.call("_grader_cm.evaluate", ...)``). The grader's own training of the student's
networks (quality.py) runs here too, on digits the grader sends; their held-out labels never
come here. Nothing here is secret (the kernel can read it) or trusted (the grader checks what
comes back).
"""

from typing import Any

import keras
import numpy as np

NOTEBOOK: dict[str, Any] = {}  # the notebook's namespace, bound by the door
DIGITS: dict[str, np.ndarray] = {}  # the digits the grader trains and predicts on


def small_net(name: str, hidden: int, params: list[np.ndarray]) -> None:
    """The grader's own small network (Flatten, Dense(hidden, relu), Dense(10, softmax))."""
    net = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras.layers.Flatten(),
            keras.layers.Dense(hidden, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    net.set_weights(params)
    NOTEBOOK[name] = net


def build(name: str, builder: str, seed: int | None = None) -> None:
    """The network the student's BUILDER makes, kept as NAME (its weights drawn from SEED)."""
    if seed is not None:
        keras.utils.set_random_seed(int(seed))
    NOTEBOOK[name] = NOTEBOOK[builder]()


def compile_with_sgd(name: str, learning_rate: float) -> None:
    """The student's compile_model on network NAME with the grader's SGD optimizer."""
    NOTEBOOK["compile_model"](NOTEBOOK[name], keras.optimizers.SGD(learning_rate=learning_rate))


def layer_kinds(name: str) -> list[str]:
    """The class names of every layer inside network NAME."""
    return [type(layer).__name__ for layer in NOTEBOOK[name]._flatten_layers(include_self=False)]


def sgd_optimizer(name: str, learning_rate: float) -> Any:
    optimizer = keras.optimizers.SGD(learning_rate=learning_rate)
    optimizer.build(NOTEBOOK[name].trainable_variables)
    return optimizer


def train_step_once(name: str, learning_rate: float, x: np.ndarray, y: np.ndarray) -> Any:
    """What the student's train_step returns for one SGD step of network NAME on (x, y)."""
    return NOTEBOOK["train_step"](NOTEBOOK[name], sgd_optimizer(name, learning_rate), x, y)


def train_steps(
    name: str, learning_rate: float, x: np.ndarray, y: np.ndarray, steps: int
) -> list[float]:
    """The losses of STEPS calls of the student's train_step on one batch."""
    train_step, optimizer = NOTEBOOK["train_step"], sgd_optimizer(name, learning_rate)
    return [float(np.mean(train_step(NOTEBOOK[name], optimizer, x, y))) for _ in range(steps)]


# --- the grader's training of a student's network (quality.py) --------------------------------
def send_digits(train_u8: np.ndarray, train_y: np.ndarray, heldout_u8: np.ndarray) -> None:
    """Keep the digits, converted to the notebook's layout: (n, 28, 28, 1) floats in [0, 1]."""
    DIGITS["train_x"] = (train_u8.astype("float32") / 255.0)[..., None]
    DIGITS["train_y"] = train_y
    DIGITS["heldout_x"] = (heldout_u8.astype("float32") / 255.0)[..., None]


def has_digits() -> bool:
    return "train_x" in DIGITS


def probe(builder: str, seed: int) -> Any:
    """A fresh network from BUILDER, seeded with SEED, and its output on 16 training digits."""
    keras.utils.set_random_seed(int(seed))
    NOTEBOOK["_grader_net"] = NOTEBOOK[builder]()
    return NOTEBOOK["_grader_net"].predict_on_batch(DIGITS["train_x"][:16])


def compile_net(learning_rate: float, from_logits: bool) -> None:
    """Compile the probed network with the grader's optimizer and loss (before its first epoch)."""
    NOTEBOOK["_grader_net"].compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits),
    )


def train_epoch_and_predict(batch_size: int, epoch: int) -> Any:
    """Train the probed network for its EPOCH-th epoch (counted from 1); its held-out outputs.

    One call per epoch lets the grader look at the held-out scores after each epoch and stop
    once its tests are judged (quality.py); the labels of those digits stay with the grader.
    """
    net = NOTEBOOK["_grader_net"]
    net.fit(
        DIGITS["train_x"],
        DIGITS["train_y"],
        batch_size=batch_size,
        initial_epoch=epoch - 1,
        epochs=epoch,
        shuffle=True,
        verbose=0,
    )
    return net.predict(DIGITS["heldout_x"], batch_size=500, verbose=0)

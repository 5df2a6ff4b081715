"""The door's half inside the student's kernel. Its source is injected at the start of phase 2.

It is self-contained (standard library and numpy only) because it runs in the sandbox, and it is
NOT trusted: the submission can replace it. The grader's half (`introdl.grading.transport`) checks
everything that comes back. The grader also uses `Encoder` to write its own arguments.

Plain data is JSON with tagged nodes, every array a ``.npy`` file next to it::

    null, true, 3, 2.5, "text", [ ... ]          themselves (lists stay lists)
    {"tuple": [...]}  {"set": [...]}  {"dict": [[key, value], ...]}  {"bytes": "<base64>"}
    {"ndarray": "0.npy"}  {"npscalar": "1.npy"}  (saved with allow_pickle=False)

A request directory holds ``request.json``: ``{"op": "call"|"get"|"has", "target": "a.b.c",
"args": [...], "kwargs": {...}, "store_as": name|null, "max_bytes": n}``. The answer is
``result.json`` in the result directory: ``{"ok": value}``, ``{"stored": name}``,
``{"error": {"ename", "evalue", "traceback", "function"}}``, ``{"unsupported": {"type", "where"}}`` or
``{"too_large": bytes}``.
"""

from __future__ import annotations

import base64
import json
import os
import traceback
from types import TracebackType
from typing import Any

import numpy as np

ARRAY_KINDS = "biufcUS"  # bool, ints, floats, complex, fixed-width text; never objects
MAX_DEPTH = 64
TENSOR_MODULES = ("tensorflow", "keras", "jax")
# Files of code the student wrote: notebook cells (ipykernel names them after the kernel's pid;
# older IPython "<ipython-input-...>"), and the files autograph writes for a `tf.function`.
STUDENT_FILES = ("ipykernel_", "<ipython-input", "__autograph_generated_file")
AUTOGRAPH_PREFIX = "tf__"  # autograph renames a converted function f to tf__f


class Unsupported(Exception):
    """A value that cannot be sent as plain data."""

    def __init__(self, type_name: str, where: str) -> None:
        super().__init__(f"{where} is a {type_name}")
        self.type_name = type_name
        self.where = where


class TooLarge(Exception):
    """The encoded value is over the byte limit."""


class Encoder:
    """Turns a value into tagged JSON, writing arrays as .npy files into `directory`."""

    def __init__(self, directory: str, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.used = 0
        self.files = 0

    def encode(self, value: Any, where: str = "value", depth: int = 0) -> Any:
        if depth > MAX_DEPTH:
            raise Unsupported(f"structure nested deeper than {MAX_DEPTH}", where)
        kind = type(value)
        if value is None or kind in (bool, int, str):
            self._spend(len(value) if kind is str else 8)
            return value
        if kind is float:
            self._spend(8)
            return value
        if kind is list:
            return [self.encode(v, f"{where}[{i}]", depth + 1) for i, v in enumerate(value)]
        if kind is tuple:
            return {
                "tuple": [self.encode(v, f"{where}[{i}]", depth + 1) for i, v in enumerate(value)]
            }
        if kind in (set, frozenset):
            return {"set": [self.encode(v, f"{where} element", depth + 1) for v in value]}
        if kind is dict:
            return {
                "dict": [
                    [
                        self.encode(k, f"{where} key", depth + 1),
                        self.encode(v, f"{where}[{k!r}]", depth + 1),
                    ]
                    for k, v in value.items()
                ]
            }
        if kind is bytes:
            self._spend(len(value) * 4 // 3)
            return {"bytes": base64.b64encode(value).decode("ascii")}
        if isinstance(value, np.generic):
            return {"npscalar": self._save(np.asarray(value), where)}
        if isinstance(value, np.ndarray):
            return {"ndarray": self._save(np.asarray(value), where)}
        if kind.__module__.split(".")[0] in TENSOR_MODULES and hasattr(value, "numpy"):
            converted = np.asarray(value.numpy())
            if converted.ndim == 0:
                return {"npscalar": self._save(converted, where)}
            return {"ndarray": self._save(converted, where)}
        raise Unsupported(f"{kind.__module__}.{kind.__qualname__}", where)

    def _save(self, array: np.ndarray[Any, Any], where: str) -> str:
        if array.dtype.kind not in ARRAY_KINDS or array.dtype.hasobject:
            raise Unsupported(f"numpy array of dtype {array.dtype}", where)
        self._spend(array.nbytes + 128)
        name = f"{self.files}.npy"
        self.files += 1
        np.save(os.path.join(self.directory, name), array, allow_pickle=False)
        return name

    def _spend(self, size: int) -> None:
        self.used += size
        if self.used > self.max_bytes:
            raise TooLarge(f"more than {self.max_bytes} bytes")


def decode(node: Any, directory: str) -> Any:
    """Rebuild a value the grader encoded (the grader is trusted here)."""
    if isinstance(node, list):
        return [decode(v, directory) for v in node]
    if not isinstance(node, dict):
        return node
    ((tag, payload),) = node.items()
    if tag == "tuple":
        return tuple(decode(v, directory) for v in payload)
    if tag == "set":
        return {decode(v, directory) for v in payload}
    if tag == "dict":
        return {decode(k, directory): decode(v, directory) for k, v in payload}
    if tag == "bytes":
        return base64.b64decode(payload)
    array = np.load(os.path.join(directory, payload), allow_pickle=False)
    return array[()] if tag == "npscalar" else array


def resolve(target: str, namespace: dict[str, Any]) -> Any:
    """``a.b.c`` looked up in the submission's namespace, then attribute by attribute."""
    first, *rest = target.split(".")
    if first not in namespace:
        raise NameError(f"name {first!r} is not defined in the submission")
    value = namespace[first]
    for attribute in rest:
        value = getattr(value, attribute)
    return value


class Notebook:
    """The notebook's namespace as the grader's in_kernel modules see it (their ``NOTEBOOK``).

    Live (names the notebook defines later are there too); a name the notebook does not define
    is a NameError that tells the student what to do, not a KeyError.
    """

    def __init__(self, namespace: dict[str, Any]) -> None:
        self._namespace = namespace

    def __getitem__(self, name: str) -> Any:
        if name not in self._namespace:
            raise NameError(
                f"`{name}` is not defined in your notebook: run the cell that defines it "
                "(and keep its name as given)"
            )
        return self._namespace[name]

    def __setitem__(self, name: str, value: Any) -> None:
        self._namespace[name] = value

    def __contains__(self, name: object) -> bool:
        return name in self._namespace

    def get(self, name: str, default: Any = None) -> Any:
        return self._namespace.get(name, default)


def serve(request_dir: str, result_dir: str, namespace: dict[str, Any]) -> None:
    """Answer one request from the grader; every outcome is written to ``result.json``."""
    with open(os.path.join(request_dir, "request.json")) as f:
        request = json.load(f)
    os.mkdir(result_dir)
    encoder = Encoder(result_dir, int(request["max_bytes"]))
    try:
        target = request["target"]
        if request["op"] == "has":
            try:
                resolve(target, namespace)
                answer: dict[str, Any] = {"ok": True}
            except (NameError, AttributeError):
                answer = {"ok": False}
        elif request["op"] == "get":
            answer = {"ok": encoder.encode(resolve(target, namespace))}
        else:
            function = resolve(target, namespace)
            args = decode(request["args"], request_dir)
            kwargs = {k: decode(v, request_dir) for k, v in request["kwargs"].items()}
            value = function(*args, **kwargs)
            if request["store_as"]:
                namespace[request["store_as"]] = value
                answer = {"stored": request["store_as"]}
            else:
                answer = {"ok": encoder.encode(value, "the returned value")}
    except Unsupported as err:
        answer = {"unsupported": {"type": err.type_name, "where": err.where}}
    except TooLarge:
        answer = {"too_large": encoder.used}
    except (Exception, SystemExit) as err:
        frames = traceback.format_exception(type(err), err, err.__traceback__)
        answer = {
            "error": {
                "ename": type(err).__name__,
                "evalue": str(err),
                "function": student_function(err.__traceback__),
                # the first frames are this helper's; the student's own frames follow
                "traceback": frames[-20:],
            }
        }
    with open(os.path.join(result_dir, "result.json"), "w") as f:
        json.dump(answer, f)


def student_function(tb: TracebackType | None) -> str | None:
    """The name of the outermost function of the student's own code in the traceback TB.

    When a grader helper (an installed in_kernel module) calls the student's code, this is the
    student's function the helper called, so the error can name it instead of the helper.
    """
    while tb is not None:
        code = tb.tb_frame.f_code
        if any(marker in code.co_filename for marker in STUDENT_FILES):
            name = getattr(code, "co_qualname", code.co_name)
            if "__autograph_generated_file" in code.co_filename:
                name = code.co_name.removeprefix(AUTOGRAPH_PREFIX)
            if not name.startswith("<"):  # a lambda or a cell's top level: no name to give
                return str(name)
        tb = tb.tb_next
    return None

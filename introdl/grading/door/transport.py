"""The grader's half of the door's data format: write arguments, read answers without trust.

The format is described in `introdl.grading.kernel_side`. Reading assumes the kernel is hostile:

- files are opened relative to directory descriptors with ``O_NOFOLLOW`` (a symlink planted in the
  exchange directory cannot make the grader read its own files), must be regular files (a FIFO
  cannot block the grader) and are size-capped before they are read;
- ``.npy`` files are loaded with ``allow_pickle=False`` and only numeric, boolean and fixed-width
  text dtypes are accepted; nothing is ever unpickled;
- JSON may only contain the tagged shapes of the format; the values that come out are built by
  the grader from JSON primitives, so they are exactly ``int``, ``float``, ``str``, ``bool``,
  ``None``, ``list``, ``tuple``, ``dict``, ``set``, ``bytes``, numpy arrays and numpy scalars.
  An object whose ``==`` always returns True cannot cross.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import io
import json
import os
import re
import stat
from pathlib import Path
from typing import Any

import numpy as np

from introdl.grading.door.kernel_side import ARRAY_KINDS, Encoder, TooLarge, Unsupported

NPY_NAME = re.compile(r"[0-9]{1,9}\.npy")
MAX_DEPTH = 64


class TransportError(Exception):
    """What came back from the kernel is not plain data the grader accepts."""


def write_request(directory: Path, request: dict[str, Any], max_bytes: int) -> None:
    """Write a request whose "args" and "kwargs" are still Python values (the grader's own)."""
    directory.mkdir()
    directory.chmod(0o755)  # the kernel's uid reads it, whatever the grader's umask
    encoder = Encoder(str(directory), max_bytes)
    try:
        request = dict(request)
        request["args"] = [
            encoder.encode(a, f"argument {i}") for i, a in enumerate(request["args"])
        ]
        request["kwargs"] = {
            k: encoder.encode(v, f"argument {k!r}") for k, v in request["kwargs"].items()
        }
    except Unsupported as err:
        raise TypeError(
            f"cannot send {err.where} to the student's kernel: it is a {err.type_name}; send "
            "numbers, strings, bools, None, lists/tuples/dicts/sets of those, or numpy arrays"
        ) from None
    except TooLarge:
        raise ValueError(
            f"the arguments are larger than the {max_bytes}-byte exchange limit"
        ) from None
    (directory / "request.json").write_text(json.dumps(request))
    for path in directory.iterdir():
        path.chmod(0o644)


class SafeDir:
    """A directory in the exchange, opened without following symlinks; reads are size-capped."""

    def __init__(self, parent: Path, name: str, budget: int) -> None:
        flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
        parent_fd = os.open(parent, flags)
        try:
            self.fd = os.open(name, flags, dir_fd=parent_fd)
        except OSError as err:
            raise TransportError(f"the kernel left no answer ({err.strerror})") from None
        finally:
            os.close(parent_fd)
        self.budget = budget

    def read(self, name: str) -> bytes:
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=self.fd)
        except OSError as err:
            raise TransportError(
                f"the kernel's answer has no readable {name} ({err.strerror})"
            ) from None
        with os.fdopen(fd, "rb") as f:
            info = os.fstat(f.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise TransportError(f"the kernel's {name} is not a regular file")
            if info.st_size > self.budget:
                raise TransportError(
                    f"the kernel's answer is larger than the {self.budget}-byte exchange limit"
                )
            data = f.read(self.budget + 1)
        if len(data) > self.budget:
            raise TransportError("the kernel's answer grew past the exchange limit while read")
        self.budget -= len(data)
        return data

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)


def read_answer(exchange: Path, name: str, max_bytes: int) -> dict[str, Any]:
    """The parsed ``result.json`` of one request, its values decoded and checked."""
    directory = SafeDir(exchange, name, max_bytes)
    try:
        try:
            answer = json.loads(directory.read("result.json"))
        except (ValueError, RecursionError) as err:
            raise TransportError(f"the kernel's answer is not valid JSON ({err})") from None
        if not isinstance(answer, dict) or len(answer) != 1:
            raise TransportError("the kernel's answer does not have the expected shape")
        ((kind, payload),) = answer.items()
        if kind == "ok":
            return {"ok": decode(payload, directory)}
        if kind == "stored" and isinstance(payload, str):
            return answer
        if kind == "too_large" and isinstance(payload, int):
            return answer
        if kind == "unsupported" and _strings(payload, ("type", "where")):
            return answer
        if kind == "error" and _strings(payload, ("ename", "evalue")):
            frames = payload.get("traceback", [])
            if not isinstance(frames, list) or not all(isinstance(f, str) for f in frames):
                frames = []
            function = payload.get("function")  # the student's function that raised, or None
            return {
                "error": {
                    "ename": payload["ename"],
                    "evalue": payload["evalue"],
                    "traceback": frames,
                    "function": function if isinstance(function, str) else None,
                }
            }
        raise TransportError(f"the kernel's answer has an unknown kind {kind[:50]!r}")
    finally:
        directory.close()


def _strings(payload: Any, keys: tuple[str, ...]) -> bool:
    return isinstance(payload, dict) and all(isinstance(payload.get(k), str) for k in keys)


def decode(node: Any, directory: SafeDir, depth: int = 0) -> Any:
    """Rebuild a value from the format, accepting nothing else."""
    if depth > MAX_DEPTH:
        raise TransportError(f"the value is nested deeper than {MAX_DEPTH}")
    if node is None or type(node) in (bool, int, float, str):
        return node
    if type(node) is list:
        return [decode(v, directory, depth + 1) for v in node]
    if type(node) is not dict or len(node) != 1:
        raise TransportError("the value has a shape outside the plain-data format")
    ((tag, payload),) = node.items()
    try:
        if tag == "tuple" and type(payload) is list:
            return tuple(decode(v, directory, depth + 1) for v in payload)
        if tag == "set" and type(payload) is list:
            return {decode(v, directory, depth + 1) for v in payload}
        if tag == "dict" and type(payload) is list:
            pairs = [_pair(p) for p in payload]
            return {
                decode(k, directory, depth + 1): decode(v, directory, depth + 1) for k, v in pairs
            }
    except TypeError as err:  # an unhashable key or set element
        raise TransportError(f"the value has an unusable dict key or set element ({err})") from None
    if tag == "bytes" and type(payload) is str:
        try:
            return base64.b64decode(payload, validate=True)
        except binascii.Error:
            raise TransportError("the value has malformed bytes") from None
    if tag in ("ndarray", "npscalar") and type(payload) is str and NPY_NAME.fullmatch(payload):
        array = _load_array(directory.read(payload), payload)
        if tag == "npscalar":
            if array.ndim != 0:
                raise TransportError(f"{payload} should hold a scalar, not shape {array.shape}")
            return array[()]
        return array
    raise TransportError(f"the value has an unknown tag {str(tag)[:50]!r}")


def _pair(item: Any) -> tuple[Any, Any]:
    if type(item) is not list or len(item) != 2:
        raise TransportError("a dict entry is not a [key, value] pair")
    return item[0], item[1]


def _load_array(data: bytes, name: str) -> np.ndarray[Any, Any]:
    # Check the header first: np.load allocates the whole declared shape before reading data.
    try:
        stream = io.BytesIO(data)
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(stream)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(stream)
        else:
            raise ValueError(f"npy version {version}")
    except Exception as err:
        raise TransportError(
            f"{name} is not a readable .npy array ({type(err).__name__})"
        ) from None
    if dtype.kind not in ARRAY_KINDS or dtype.hasobject or dtype.names:
        raise TransportError(f"{name} has dtype {dtype}, which the grader does not accept")
    if int(np.prod(shape, dtype=np.float64)) * dtype.itemsize > len(data):
        raise TransportError(f"{name} declares more data than it holds")
    try:
        array = np.load(io.BytesIO(data), allow_pickle=False)
    except Exception as err:  # a malformed file says nothing we could trust
        raise TransportError(
            f"{name} is not a readable .npy array ({type(err).__name__})"
        ) from None
    if type(array) is not np.ndarray:
        raise TransportError(f"{name} is not a single .npy array")
    if array.dtype.kind not in ARRAY_KINDS or array.dtype.hasobject or array.dtype.names:
        raise TransportError(f"{name} has dtype {array.dtype}, which the grader does not accept")
    return array

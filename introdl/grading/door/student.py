"""`Student`: the only door from hidden tests (in the grader's process) into the student's kernel.

Hidden tests get it as the ``student`` fixture. It calls the submission's functions on inputs the
grader chooses and brings back plain data; expected values never enter the kernel::

    def test_loss_on_random_logits(student, rng):
        labels = rng.integers(0, 83, size=(4, 7))
        logits = rng.normal(size=(4, 7, 83)).astype("float32")
        got = student.call("compute_loss", labels, logits)      # a numpy array or scalar
        assert np.allclose(got, reference_loss(labels, logits))

Objects that cannot cross (a Keras model, an environment) stay in the kernel under a name::

    student.call("build_model", vocab_size=83, embedding_dim=8, rnn_units=16, batch_size=1,
                 store_as="_grader_model")                        # returns None
    student.run("_grader_model.build((1, None))")                 # a grader-written statement
    out = student.call("_grader_model.predict_on_batch", x)       # attribute paths work
    n = student.call("_grader_model.count_params")

Use names starting with ``_grader_`` for stored objects so they cannot clash with the student's.

Grader code that must run next to the student's (a loop calling the student's function at every
step, a helper that builds a model and keeps it) is a real module beside the tests,
``grader_tests/<lab>/in_kernel.py``, installed once per test session::

    LAB = student.install(Path(__file__).with_name("in_kernel.py"))   # "_grader_lab3_rl"
    student.call(f"{LAB}.train_cartpole", episodes=200)

The module's ``NOTEBOOK`` is bound to the notebook's namespace, where its functions find the
student's code (``NOTEBOOK["build_model"]``; a name the notebook lacks is a NameError that says
which cell to run). When the student's code raises inside such a helper, the error names the
student's function (``build_model() raised ValueError: ...``), not the helper.
``timeout`` and ``store_as`` are the door's own keywords: a student function whose parameters
have those names must get them positionally. Names are looked up in the submission's namespace
only (not builtins): ``student.call("np.mean", x)`` works where the submission imported numpy
as np. ``student.has(name)`` says whether a name (or attribute path) exists.
Whatever a test sends with `run` (its code) or `call` (its arguments) is visible to the
submission: never send expected values or labels.

What can come back: ``None``, ``bool``, ``int``, ``float``, ``str``, ``bytes``, lists, tuples,
dicts and sets of those, numpy arrays (numeric, bool or fixed-width text) and numpy scalars;
TensorFlow tensors and variables arrive as numpy. Anything else raises `UnsupportedValue`, which
names the type that came back. Every call has a timeout: on expiry the kernel is interrupted, and
killed if it ignores the interrupt (then every later call raises `KernelDied`).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import secrets
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from introdl.grading.door import kernel_side
from introdl.grading.door.transport import TransportError, read_answer, write_request

if TYPE_CHECKING:
    from introdl.grading.kernel.kernel import SandboxedKernel

TARGET = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
HELPER = "__introdl_door__"
PREFIX = "_grader_"  # every name the grader puts into the kernel starts with it
MESSAGE_CHARS = 2000
NAME_CHARS = 200


class DoorError(Exception):
    """Anything the door raises: the test that hit it fails, with this message as the reason."""


class StudentError(DoorError):
    """The submission's code raised an exception (its type and message, never grader source)."""

    def __init__(
        self, what: str, ename: str, evalue: str, traceback: list[str] | None = None
    ) -> None:
        self.ename = ename
        self.evalue = evalue[:MESSAGE_CHARS]
        self.traceback = traceback or []
        super().__init__(f"{what} raised {ename}: {self.evalue}")


class CallTimeout(DoorError):
    """The submission did not answer in time (`killed` when it also ignored the interrupt)."""

    def __init__(self, message: str, *, killed: bool) -> None:
        super().__init__(message)
        self.killed = killed


class KernelDied(DoorError):
    """The kernel is gone (it exited, was killed after a timeout, or ran out of memory)."""


class UnsupportedValue(DoorError):
    """The value cannot leave the sandbox (not plain data, too large, or malformed)."""


class Student:
    """The submission, as hidden tests see it. Made by `Student(SandboxedKernel)`."""

    def __init__(self, kernel: SandboxedKernel) -> None:
        self._kernel = kernel
        self._ids = itertools.count()
        self._installed = False
        self._modules: dict[Path, str] = {}

    # --- the three verbs ---------------------------------------------------------------------
    def call(
        self,
        name: str,
        *args: Any,
        timeout: float | None = None,
        store_as: str | None = None,
        **kwargs: Any,
    ) -> Any:
        """Call the submission's ``name`` (a function, or an attribute path like ``"m.predict"``).

        Returns the result as plain data, or stores it in the kernel as ``store_as`` and returns
        None. Raises `StudentError` when the submission's code raises.
        """
        if store_as is not None and not IDENTIFIER.fullmatch(store_as):
            raise ValueError(f"store_as={store_as!r} is not a Python identifier")
        request = {
            "op": "call",
            "target": _target(name),
            "args": list(args),
            "kwargs": kwargs,
            "store_as": store_as,
        }
        return self._ask(request, f"{name}()", timeout)

    def get(self, name: str, *, timeout: float | None = None) -> Any:
        """The value of the submission's variable ``name`` (or attribute path), as plain data."""
        return self._ask(self._lookup("get", name), name, timeout)

    def has(self, name: str, *, timeout: float | None = None) -> bool:
        """Whether the submission defines ``name`` (or attribute path)."""
        return self._ask(self._lookup("has", name), name, timeout) is True

    def run(self, code: str, *, timeout: float | None = None) -> None:
        """Run a short grader-written statement in the kernel (its text is visible to the kernel).

        Raises `StudentError` with the exception's type and message only (no traceback, so the
        grader's code does not leak into feedback).
        """
        self._install()
        result = self._execute(code, "the grader's set-up statement", timeout)
        if result.status == "error":
            raise StudentError(
                "the grader's set-up statement", result.ename or "Error", result.evalue or ""
            )

    def install(self, module: Path, *, timeout: float | None = 60.0) -> str:
        """Install the grader's module file MODULE in the kernel; returns its name there.

        The name is ``_grader_<folder>`` (``grader_tests/lab3_rl/in_kernel.py`` becomes
        ``_grader_lab3_rl``), so it cannot clash with the student's names. The module's
        ``NOTEBOOK`` is bound to the notebook's namespace. Installing the same file again through
        the same `Student` does nothing. Its text is visible to the kernel: no expected values.
        """
        path = Path(module).resolve()
        if path in self._modules:
            return self._modules[path]
        if not path.is_file():
            raise FileNotFoundError(
                f"{path}: no such grader module; grader code that runs in the kernel lives in "
                "grader_tests/<lab>/in_kernel.py"
            )
        name = PREFIX + path.parent.name
        if not IDENTIFIER.fullmatch(name):
            raise ValueError(f"{path}: its folder name does not make a Python identifier ({name})")
        self._install()
        code = _module_code(name, path.read_text(), f"<grader {path.parent.name}/{path.name}>")
        result = self._execute(
            code + f"{name}.NOTEBOOK = {HELPER}.Notebook(globals())\n",
            f"installing {name}",
            timeout,
        )
        if result.status == "error":
            raise StudentError(
                f"installing the grader's {path.name}", result.ename or "Error", result.evalue or ""
            )
        self._modules[path] = name
        return name

    # --- plumbing ----------------------------------------------------------------------------
    def _lookup(self, op: str, name: str) -> dict[str, Any]:
        return {"op": op, "target": _target(name), "args": [], "kwargs": {}, "store_as": None}

    def _install(self) -> None:
        if self._installed:
            return
        source = Path(kernel_side.__file__).read_text()
        code = _module_code(HELPER, source, "<introdl door>")
        result = self._execute(code, "installing the grader's door", None)
        if result.status != "ok":
            raise DoorError(
                f"could not install the grader's door in the kernel ({result.ename}: "
                f"{result.evalue}); the submission may have exhausted its processes or memory"
            )
        self._installed = True

    def _execute(self, code: str, what: str, timeout: float | None) -> Any:
        kernel = self._kernel
        if not kernel.alive:
            raise KernelDied(f"cannot run {what}: the student's kernel is no longer running")
        seconds = kernel.limits.call_timeout if timeout is None else timeout
        result = kernel.execute(
            code, timeout=seconds, silent=True, store_history=False, timeout_kind="call_timeout"
        )
        if result.status == "timeout":
            raise CallTimeout(
                f"{what} did not finish within {seconds:g} s (interrupted)", killed=False
            )
        if result.status == "killed":
            raise CallTimeout(
                f"{what} did not finish within {seconds:g} s and ignored the interrupt: "
                "the kernel was killed",
                killed=True,
            )
        if result.status == "died":
            raise KernelDied(f"the student's kernel died during {what}: {result.evalue}")
        return result

    def _ask(self, request: dict[str, Any], what: str, timeout: float | None) -> Any:
        self._install()
        kernel = self._kernel
        name = f"{next(self._ids)}-{secrets.token_hex(8)}"
        request_dir = kernel.requests_dir / name
        result_dir = kernel.exchange_dir / name
        limit = kernel.limits.exchange_bytes
        try:
            write_request(request_dir, {**request, "max_bytes": limit}, limit)
            code = f"{HELPER}.serve({str(request_dir)!r}, {str(result_dir)!r}, globals())"
            result = self._execute(code, what, timeout)
            if result.status == "error":
                raise DoorError(
                    f"the grader's door failed inside the kernel during {what} "
                    f"({result.ename}: {str(result.evalue)[:200]}); the submission may have replaced it"
                )
            try:
                answer = read_answer(kernel.exchange_dir, name, limit)
            except TransportError as err:
                raise UnsupportedValue(f"{what}: {err}") from None
        finally:
            _remove(request_dir)
            _remove(result_dir)
        return _unwrap(answer, what, limit)


def _module_code(name: str, source: str, filename: str) -> str:
    """A kernel statement that makes SOURCE a module object bound to the global NAME."""
    return (
        "def _introdl_install(source):\n"
        "    import types\n"
        f"    module = types.ModuleType({name!r})\n"
        f"    exec(compile(source, {filename!r}, 'exec'), module.__dict__)\n"
        "    return module\n"
        f"{name} = _introdl_install({source!r})\n"
        "del _introdl_install\n"
    )


def _target(name: str) -> str:
    if not TARGET.fullmatch(name):
        raise ValueError(f"{name!r} is not a name or attribute path like 'f' or 'model.predict'")
    return name


def _unwrap(answer: dict[str, Any], what: str, limit: int) -> Any:
    ((kind, payload),) = answer.items()
    if kind == "ok":
        return payload
    if kind == "stored":
        return None
    if kind == "error":
        function = payload.get("function")  # the student's function that raised, if any
        if isinstance(function, str) and function:
            what = f"{function[:NAME_CHARS]}()"
        raise StudentError(what, payload["ename"][:200], payload["evalue"], payload["traceback"])
    if kind == "too_large":
        raise UnsupportedValue(f"{what} returned more than the {limit}-byte exchange limit")
    raise UnsupportedValue(
        f"{what} returned a value that cannot leave the sandbox: {payload['where'][:200]} is a "
        f"{payload['type'][:200]}. Return numbers, strings, bools, None, lists/tuples/dicts of "
        "those, or numpy arrays (tensors are converted)."
    )


def _remove(path: Path) -> None:
    """Remove a request or answer directory without following anything the kernel planted."""
    with contextlib.suppress(FileNotFoundError):
        if path.is_symlink() or not path.is_dir():
            os.unlink(path)
        else:
            shutil.rmtree(path, ignore_errors=True)

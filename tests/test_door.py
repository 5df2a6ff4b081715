"""The `Student` door: hidden tests call the submission's functions on plain data, and only that."""

from __future__ import annotations

import dataclasses
import pickle
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from introdl.grading.door.student import (
    CallTimeout,
    KernelDied,
    Student,
    StudentError,
    UnsupportedValue,
)
from introdl.grading.kernel.kernel import SandboxedKernel
from introdl.grading.sandbox import processes_of_uid
from introdl.grading.sandbox.limits import TEST_LIMITS, GiB
from tests.sandboxed import needs_bwrap, run_fixture, sandboxed_kernel

pytestmark = needs_bwrap


@pytest.fixture(scope="module")
def functions_kernel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxedKernel]:
    """One kernel that ran the well-behaved fixture, shared by the tests that do not break it."""
    with sandboxed_kernel(
        tmp_path_factory.mktemp("functions"), "submitted-numpy-functions"
    ) as kernel:
        run = run_fixture(kernel, "submitted-numpy-functions")
        assert {c.status for c in run.cells} == {"ok"}
        yield kernel


@pytest.fixture
def student(functions_kernel: SandboxedKernel) -> Student:
    return Student(functions_kernel)


def test_function_called_on_grader_arrays(student: Student) -> None:
    """Does a student function run on the grader's numpy arrays and return a real numpy array?"""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 4)).astype("float32")
    got = student.call("normalize", x)
    assert type(got) is np.ndarray
    assert got.dtype == np.float32
    assert got.shape == (3, 4)
    np.testing.assert_allclose(got, (x - x.mean()) / x.std(), rtol=1e-6)


def test_tuples_of_arrays_and_keyword_arguments(student: Student) -> None:
    """Do tuples stay tuples, int arrays keep their dtype, and keyword arguments arrive?"""
    songs = np.arange(100, dtype=np.int64)
    x, y = student.call("get_batch", songs, seq_length=5, batch_size=2, seed=3)
    assert x.dtype == np.int64
    assert x.shape == (2, 5)
    np.testing.assert_array_equal(y, x + 1)  # targets are inputs shifted by one
    got = student.call("get_batch", songs, 5, 2)
    assert type(got) is tuple
    assert len(got) == 2


def test_plain_data_comes_back_with_exact_types(student: Student) -> None:
    """Do dicts, tuples, strings, floats and numpy scalars cross with their exact types?"""
    got = student.call("describe", [1, 2, 3, 4])
    assert got == {"count": 4, "mean": 2.5, "dtype": "int64", "shape": (4,)}
    assert type(got["shape"]) is tuple
    assert type(got["mean"]) is float
    assert student.get("vocab_size") == 83
    assert type(student.get("vocab_size")) is int
    assert student.get("first_song") == "X:1\nT:The Road\n"
    mean = student.call("np.mean", np.array([1.0, 2.0], dtype=np.float32))
    assert type(mean) is np.float32
    assert mean == np.float32(1.5)
    assert student.call("np.unique", [b"b", b"a"]).tolist() == [b"a", b"b"]


def test_objects_stay_in_the_kernel_under_a_name(student: Student) -> None:
    """Can a test keep an object in the kernel (store_as) and call its methods by attribute path?"""
    assert student.call("Counter", 5, store_as="_grader_counter") is None
    assert student.call("_grader_counter.add", 3) == 8
    student.run("_grader_counter.add(10)")
    assert student.get("_grader_counter.value") == 18
    assert student.has("_grader_counter.add")
    assert not student.has("_grader_counter.nope")


def test_student_exception_names_type_and_message(student: Student) -> None:
    """Does an exception in the submission reach the test as StudentError with its type and message?"""
    with pytest.raises(StudentError) as caught:
        student.call("fails", [1, 2])
    assert caught.value.ename == "ValueError"
    assert caught.value.evalue == "cannot handle [1, 2]"
    assert str(caught.value) == "fails() raised ValueError: cannot handle [1, 2]"
    assert any("fails" in frame for frame in caught.value.traceback)


IN_KERNEL = """
from typing import Any

NOTEBOOK: dict[str, Any] = {}  # bound by the door to the notebook's namespace

CALLS = []


def twice(name, x):
    CALLS.append(name)
    return NOTEBOOK[name](NOTEBOOK[name](x))


def calls():
    return list(CALLS)
"""


def test_installed_module_reaches_the_notebook_and_names_the_student_function(
    student: Student, tmp_path: Path
) -> None:
    """Does `install` put a grader module in the kernel once, under a `_grader_` name, whose
    helpers call the student's functions, with the student's function named when it raises?"""
    module = tmp_path / "lab_x" / "in_kernel.py"
    module.parent.mkdir()
    module.write_text(IN_KERNEL)
    name = student.install(module)
    assert name == "_grader_lab_x"
    assert student.call(f"{name}.twice", "normalize", np.arange(4.0)).shape == (4,)
    assert student.install(module) == name  # the same Student: nothing re-sent, state kept
    assert student.call(f"{name}.calls") == ["normalize"]
    with pytest.raises(StudentError) as caught:
        student.call(f"{name}.twice", "fails", 3)
    assert str(caught.value) == "fails() raised ValueError: cannot handle 3"
    with pytest.raises(StudentError) as caught:  # no student frame: the helper is named
        student.call(f"{name}.twice", "no_such_function", 3)
    assert str(caught.value) == (
        f"{name}.twice() raised NameError: `no_such_function` is not defined in your notebook: "
        "run the cell that defines it (and keep its name as given)"
    )
    with pytest.raises(FileNotFoundError, match=r"in_kernel\.py"):
        student.install(tmp_path / "missing" / "in_kernel.py")


def test_missing_names_are_student_errors(student: Student) -> None:
    """Is a function the submission never defined a clear NameError, and `has` False?"""
    assert not student.has("compute_loss")
    with pytest.raises(StudentError, match="NameError: name 'compute_loss' is not defined"):
        student.call("compute_loss", 1)
    with pytest.raises(ValueError, match="not a name"):
        student.call("__import__('os').system('id')")


def test_run_reports_type_and_message_without_grader_source(student: Student) -> None:
    """Does a failing grader statement give the exception without echoing the grader's code?"""
    with pytest.raises(StudentError) as caught:
        student.run("expected_secret_answer = 41\nnormalize(None)")
    assert caught.value.ename == "AttributeError"
    assert "expected_secret_answer" not in str(caught.value)
    assert caught.value.traceback == []


def test_arguments_must_be_plain_data(student: Student) -> None:
    """Is sending a non-plain argument refused in the grader, before the kernel sees anything?"""
    with pytest.raises(TypeError, match=r"argument 0 .* is a builtins\.object"):
        student.call("normalize", object())
    with pytest.raises(TypeError, match="dtype object"):
        student.call("normalize", np.array([{}], dtype=object))


def test_slow_call_is_interrupted_and_the_kernel_survives(student: Student) -> None:
    """Does a call past its timeout raise CallTimeout, leaving the kernel usable?"""
    with pytest.raises(CallTimeout) as caught:
        student.call("slow", 30, timeout=0.5)
    assert not caught.value.killed
    assert student.call("slow", 0) == 0


def test_oversized_answer_is_refused(student: Student) -> None:
    """Is a value bigger than the exchange limit refused rather than loaded?"""
    student.run("_grader_big = np.zeros(4 * 1024 * 1024)")  # 32 MiB, over the 16 MiB test limit
    with pytest.raises(UnsupportedValue, match="exchange limit"):
        student.get("_grader_big")


def test_call_that_ignores_the_interrupt_kills_the_kernel(tmp_path: Path) -> None:
    """Does a call that swallows the interrupt get its sandbox killed, and later calls KernelDied?"""
    with sandboxed_kernel(tmp_path, "submitted-numpy-functions") as kernel:
        run_fixture(kernel, "submitted-numpy-functions")
        student = Student(kernel)
        with pytest.raises(CallTimeout) as caught:
            student.call("stubborn", 60, timeout=0.5)
        assert caught.value.killed
        # it sleeps: little CPU, so a first grading cannot blame it (tests/test_busy_host.py)
        assert [e.kind for e in kernel.events] == ["call_timeout", "host_busy", "kernel_killed"]
        assert processes_of_uid(kernel.sandbox.spec.uid) == []
        with pytest.raises(KernelDied):
            student.call("normalize", np.ones(2))


def test_always_equal_objects_cannot_cross(tmp_path: Path) -> None:
    """Is an object whose == is always True rejected, naming its type, instead of passing asserts?"""
    with sandboxed_kernel(tmp_path, "submitted-always-equal") as kernel:
        run_fixture(kernel, "submitted-always-equal")
        student = Student(kernel)
        labels, logits = np.zeros((2, 3)), np.zeros((2, 3, 4))
        with pytest.raises(
            UnsupportedValue, match=r"the returned value is a __main__\.AlwaysEqual"
        ):
            student.call("compute_loss", labels, logits)
        with pytest.raises(UnsupportedValue, match="FakeFloat"):
            student.call("almost_loss", labels, logits)
        # an ndarray subclass arrives as a plain ndarray: its __eq__ stays behind
        got = student.call("array_loss", labels, logits)
        assert type(got) is np.ndarray
        assert not (got == np.ones(3)).any()


def test_tampered_door_cannot_forge_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the submission patches json/numpy inside the kernel, is every forged answer refused, unpickled never?"""

    def no_unpickling(*args: object, **kwargs: object) -> None:
        raise AssertionError("the grader unpickled something the kernel produced")

    secret = tmp_path / "grader-only.txt"
    secret.write_text("GRADER SECRET")
    secret.chmod(0o600)
    with sandboxed_kernel(tmp_path, "submitted-tampers-door") as kernel:
        run_fixture(kernel, "submitted-tampers-door")
        student = Student(kernel)
        monkeypatch.setattr(pickle, "loads", no_unpickling)
        monkeypatch.setattr(pickle, "load", no_unpickling)
        with pytest.raises(UnsupportedValue, match="unknown tag 'pickle'"):
            student.call("forge_pickle_json")
        assert student.call("restore") == "restored"
        with pytest.raises(UnsupportedValue, match="dtype object"):
            student.call("forge_object_npy")
        student.call("restore")
        with pytest.raises(UnsupportedValue, match="declares more data than it holds"):
            student.call("forge_huge_npy")
        student.call("restore")
        with pytest.raises(UnsupportedValue) as caught:
            student.call("forge_symlink", str(secret))
        assert "GRADER SECRET" not in str(caught.value)
        student.call("restore")
        with pytest.raises(UnsupportedValue, match="not a regular file"):
            student.call("forge_fifo", timeout=5)
        assert student.call("restore") == "restored"


def test_tensorflow_tensors_arrive_as_numpy(tmp_path: Path) -> None:
    """Do TensorFlow tensors and variables returned by the submission arrive as numpy values?"""
    limits = dataclasses.replace(
        TEST_LIMITS,
        address_space_bytes=8 * GiB,
        memory_bytes=3 * GiB,
        nproc=256,
        pids=256,
        cell_timeout=60.0,
    )
    with sandboxed_kernel(tmp_path, "submitted-tensorflow", limits=limits) as kernel:
        run = run_fixture(kernel, "submitted-tensorflow")
        assert {c.status for c in run.cells} == {"ok"}, run.to_dict()
        student = Student(kernel)
        x = np.array([1.0, 2.0], dtype=np.float32)
        scaled = student.call("scale", x, 3.0)
        assert type(scaled) is np.ndarray
        assert scaled.dtype == np.float32
        np.testing.assert_allclose(scaled, [3.0, 6.0])
        mean = student.call("mean_loss", x)
        assert type(mean) is np.float32
        assert mean == np.float32(1.5)
        weights = student.get("weights")
        assert type(weights) is np.ndarray
        assert weights.shape == (2, 2)

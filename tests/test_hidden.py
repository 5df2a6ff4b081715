"""The test phase: hidden pytest suites run in-process, scored by marker, with source-free feedback."""

from __future__ import annotations

import json
import re
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import nbformat
import pytest

from introdl.grading.hidden.marks import NO_MESSAGE, feedback_message
from introdl.grading.hidden.plugin import StudentLike
from introdl.grading.hidden.runner import HiddenSuiteError, run_hidden_tests
from introdl.grading.record.results import (
    CellRun,
    Event,
    Phases,
    Results,
    Sandbox,
    TestResult,
    results_path,
)
from tests.fixtures.notebook_student import NotebookStudent

EXAMPLE = Path(__file__).parent / "fixtures" / "grader_tests_example"
EXAMPLE_POINTS = {"add": 2.0, "scale": 3.0}

BUGGY = """
def add(a, b):
    return int(a) + int(b)

def scale(x, k):
    if k < 0:
        raise ValueError("negative scale not supported")
    return [k * v for v in x]
"""
CORRECT = """
def add(a, b):
    return a + b

def scale(x, k):
    return [k * v for v in x]
"""


def student_from(code: str) -> NotebookStudent:
    return NotebookStudent(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)]))


def write_suite(root: Path, files: dict[str, str]) -> Path:
    suite = root / "grader_tests" / "lab_x"
    suite.mkdir(parents=True)
    for name, text in files.items():
        (suite / name).write_text(textwrap.dedent(text), encoding="utf-8")
    return suite


def source_lines(*paths: Path) -> list[str]:
    """The lines of PATHS a leak would show: code, not blank lines, imports, comments or docstrings.

    Imports are left out because a student's notebook may legitimately contain the same line.
    """
    lines: list[str] = []
    for path in paths:
        text = path.read_text(encoding="utf-8")
        body = text.split('"""', 2)[-1] if text.lstrip().startswith('"""') else text
        for line in body.splitlines():
            s = line.strip()
            if len(s) < 8 or s.startswith(("#", "import ", "from ", '"""')):
                continue
            lines.append(s)
    return lines


def strings(data: Any) -> list[str]:
    """Every string inside a JSON-like value."""
    if isinstance(data, str):
        return [data]
    if isinstance(data, dict):
        return [s for k, v in data.items() for s in (k, *strings(v))]
    if isinstance(data, list | tuple):
        return [s for v in data for s in strings(v)]
    return []


class Recorder:
    """A StudentLike that records the arguments it was called with and returns them."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.interrupted = 0

    def call(self, name: str, *args: Any, timeout: float = 30.0, **kwargs: Any) -> Any:
        self.calls.append((name, args))
        return args

    def run(self, code: str) -> None:
        return None

    def get(self, name: str) -> Any:
        return None

    def interrupt(self) -> None:
        self.interrupted += 1


def test_test_doubles_satisfy_the_student_protocol() -> None:
    """Do the doubles used here implement the Protocol the runner asks for?"""
    assert isinstance(Recorder(), StudentLike)
    assert isinstance(student_from(CORRECT), StudentLike)


def test_correct_submission_earns_every_point() -> None:
    """Does a correct submission pass every hidden test and earn each grade cell's points?"""
    outcomes = run_hidden_tests(EXAMPLE, student_from(CORRECT), seed=1, points=EXAMPLE_POINTS)
    assert [t.status for t in outcomes] == ["passed"] * 4
    assert {
        g: sum(t.score for t in outcomes if t.grade_id == g) for g in EXAMPLE_POINTS
    } == EXAMPLE_POINTS


def test_buggy_submission_gets_authored_messages_and_partial_scores() -> None:
    """Does each failing test score 0 and say what is wrong in the author's words?"""
    outcomes = {
        t.name: t
        for t in run_hidden_tests(EXAMPLE, student_from(BUGGY), seed=7, points=EXAMPLE_POINTS)
    }
    assert outcomes["test_add_on_random_integers"].status == "passed"
    floats = outcomes["test_add_on_random_floats"]
    assert floats.status == "failed"
    assert floats.score == 0
    assert floats.output.startswith("add should also work on floats (1 of 1 values differ")
    scale = outcomes["test_scale_matches_reference_on_random_vectors"]
    assert scale.status == "failed"
    assert scale.output == "StudentError: scale raised ValueError: negative scale not supported"
    assert outcomes["test_scale_keeps_length"].score == 1.0
    assert sum(t.score for t in outcomes.values()) == 2.0


def test_feedback_never_contains_hidden_test_source() -> None:
    """Can any line of the hidden tests or their reference code reach the results a student sees?"""
    outcomes = run_hidden_tests(EXAMPLE, student_from(BUGGY), seed=3, points=EXAMPLE_POINTS)
    results = Results(
        lab="lab_x",
        student="s",
        seed=3,
        max_points=EXAMPLE_POINTS,
        sandbox=Sandbox("none", sandboxed=False),
        tests=tuple(outcomes),
    )
    # Every string of results.json, unescaped (JSON escaping would hide a leaked quoted line).
    text = "\n".join(strings(results.to_json()))
    assert any(t.status == "failed" for t in outcomes)
    lines = source_lines(EXAMPLE / "test_example.py", EXAMPLE / "reference.py")
    assert len(lines) > 10
    leaked = [line for line in lines if line in text]
    assert leaked == []
    assert str(EXAMPLE) not in text
    assert "test_example.py" not in text
    assert "expected_secret_values" not in text


def test_every_kind_of_failure_has_a_source_free_message(tmp_path: Path) -> None:
    """What does a student read for a bare assert, a helper, pytest.fail, an exception, a skip, a broken fixture?"""
    suite = write_suite(
        tmp_path,
        {
            "test_kinds.py": f"""
            import pytest

            DATA = r"{tmp_path}/grader_tests/lab_x/answers.npy"

            def check(value):
                if value != 42:
                    raise AssertionError("the answer should be 42")

            @pytest.fixture
            def broken():
                raise RuntimeError("the grader could not build its inputs")

            @pytest.mark.grade("k", points=1)
            def test_bare_assert(student):
                secret_expected = [1, 2, 3]
                assert student.call("f", 1) == secret_expected

            @pytest.mark.grade("k", points=1)
            def test_helper(student):
                check(student.call("f", 2))

            @pytest.mark.grade("k", points=1)
            def test_explicit_fail(student):
                pytest.fail("f should not return a tuple")

            @pytest.mark.grade("k", points=1)
            def test_exception_with_grader_path(student):
                open(DATA)

            @pytest.mark.grade("k", points=1)
            def test_skipped(student):
                pytest.skip("not graded this term")

            @pytest.mark.grade("k", points=1)
            def test_fixture_error(student, broken):
                pass

            @pytest.mark.grade("k", points=1)
            @pytest.mark.xfail(reason="known to fail")
            def test_expected_failure(student):
                assert False, "this always fails"
            """
        },
    )
    outcomes = {t.name: t for t in run_hidden_tests(suite, Recorder(), seed=0, points={"k": 7})}
    got = {name: (t.status, t.output) for name, t in outcomes.items()}
    assert got == {
        "test_bare_assert": ("failed", NO_MESSAGE),
        "test_helper": ("failed", "the answer should be 42"),
        "test_explicit_fail": ("failed", "f should not return a tuple"),
        "test_exception_with_grader_path": (
            "failed",
            "FileNotFoundError: [Errno 2] No such file or directory: '<grader>/answers.npy'",
        ),
        "test_skipped": ("skipped", "not graded this term"),
        "test_fixture_error": (
            "error",
            "the test could not be set up: RuntimeError: the grader could not build its inputs",
        ),
        "test_expected_failure": ("failed", "this always fails"),
    }
    assert all(t.score == 0 for t in outcomes.values())
    text = "\n".join(strings([t.to_json() for t in outcomes.values()]))
    assert "secret_expected" not in text
    assert "[1, 2, 3]" not in text
    assert str(tmp_path) not in text


def test_a_test_over_its_budget_fails_and_the_next_test_still_runs(tmp_path: Path) -> None:
    """Does a hidden test that overruns its budget fail with a clear message, even if it swallows the stop?"""
    suite = write_suite(
        tmp_path,
        {
            "test_slow.py": """
            import time
            import pytest

            @pytest.mark.grade("t", points=1)
            @pytest.mark.budget(seconds=0.3)
            def test_sleeps(student):
                time.sleep(30)

            @pytest.mark.grade("t", points=1)
            @pytest.mark.budget(seconds=0.3)
            def test_swallows_the_stop(student):
                end = time.monotonic() + 30
                while time.monotonic() < end:
                    try:
                        time.sleep(30)
                    except Exception:
                        pass

            @pytest.mark.grade("t", points=1)
            def test_after(student):
                assert student.call("f", 1) == (1,), "f should echo"
            """
        },
    )
    student = Recorder()
    start = time.monotonic()
    outcomes = run_hidden_tests(suite, student, seed=0, points={"t": 3})
    assert time.monotonic() - start < 10
    assert [(t.status, t.output) for t in outcomes[:1]] == [
        ("failed", "the test ran past its time budget of 0.3 s and was stopped")
    ]
    assert outcomes[1].status == "failed"
    assert "time budget of 0.3 s" in outcomes[1].output
    assert outcomes[2].status == "passed"
    assert student.interrupted >= 2


def test_results_stream_as_they_land_and_training_tests_run_last(tmp_path: Path) -> None:
    """Does the runner announce the plan (tests marked `trains` last, whatever their place in the
    file) and send each outcome the moment its test ends, before the next test starts?"""
    suite = write_suite(
        tmp_path,
        {
            "test_stream.py": """
            import pytest

            @pytest.mark.trains
            @pytest.mark.grade("t", points=1)
            def test_trains_a_model(student):
                assert student.heard == ["tests", "test:test_fast", "test:test_fails_fast"]

            @pytest.mark.grade("t", points=1)
            def test_fast(student):
                assert student.heard == ["tests"]

            @pytest.mark.grade("t", points=1)
            def test_fails_fast(student):
                assert False, "wrong on purpose"
            """
        },
    )
    student = Recorder()
    student.heard = []  # type: ignore[attr-defined]
    events: list[dict[str, Any]] = []

    def listen(event: dict[str, Any]) -> None:
        events.append(event)
        name = event["result"]["name"] if event["event"] == "test" else ""
        student.heard.append(f"test:{name}" if name else event["event"])  # type: ignore[attr-defined]

    outcomes = run_hidden_tests(suite, student, seed=0, points={"t": 3}, on_event=listen)
    assert [t["name"] for t in events[0]["planned"]] == [
        "test_fast", "test_fails_fast", "test_trains_a_model"
    ]  # fmt: skip
    assert [t["trains"] for t in events[0]["planned"]] == [False, False, True]
    assert [(t.name, t.status) for t in outcomes] == [
        ("test_fast", "passed"), ("test_fails_fast", "failed"), ("test_trains_a_model", "passed")
    ]  # fmt: skip
    assert [e["result"] for e in events[1:]] == [t.to_json() for t in outcomes]


def test_off_the_main_thread_an_overrun_is_failed_after_the_fact(tmp_path: Path) -> None:
    """Graded on a worker thread (as a Dask worker does), where no SIGALRM can stop a test, does
    a test that overruns its budget still fail, with the time it took, and the next one pass?"""
    suite = write_suite(
        tmp_path,
        {
            "test_slow.py": """
            import time
            import pytest

            @pytest.mark.grade("t", points=1)
            @pytest.mark.budget(seconds=0.2)
            def test_overruns(student):
                time.sleep(0.6)

            @pytest.mark.grade("t", points=1)
            def test_after(student):
                assert student.call("f", 1) == (1,), "f should echo"
            """
        },
    )
    student = Recorder()
    outcomes: list[TestResult] = []
    errors: list[BaseException] = []

    def grade() -> None:
        try:
            outcomes.extend(run_hidden_tests(suite, student, seed=0, points={"t": 2}))
        except BaseException as err:
            errors.append(err)

    worker = threading.Thread(target=grade, name="dask-worker-like")
    worker.start()
    worker.join(timeout=60)
    assert not worker.is_alive()
    assert not errors, errors
    overran, after = outcomes
    assert overran.status == "failed"
    assert overran.score == 0
    assert re.fullmatch(r"the test took \d+\.\d s, past its time budget of 0\.2 s", overran.output)
    assert overran.duration >= 0.6
    assert (after.status, after.score) == ("passed", 1)


def test_rng_is_drawn_at_grading_time_and_reproducible_from_the_seed() -> None:
    """Do two gradings with one seed draw the same inputs, and another seed different ones?"""

    def inputs(seed: int) -> list[tuple[str, tuple[Any, ...]]]:
        student = Recorder()
        run_hidden_tests(EXAMPLE, student, seed=seed, points=EXAMPLE_POINTS)
        return student.calls

    first, again, other = inputs(11), inputs(11), inputs(12)
    assert first == again
    assert first != other
    assert len({repr(args) for _, args in first}) == len(first)  # each test has its own stream


def test_a_test_moved_to_a_topic_file_keeps_its_draws(tmp_path: Path) -> None:
    """When a suite is split into topic files, does a moved test whose file says
    `SEEDED_AS = "<the old file>"` draw what it drew before, for every grading seed (and a moved
    test without it draw something else)?"""
    body = """
        import pytest

        @pytest.mark.grade("t", points=1)
        def test_draws(rng, seed):
            assert False, f"{rng.integers(10**9)} {seed}"
        """
    before = write_suite(tmp_path / "before", {"test_lab.py": body})
    seeded_as = 'SEEDED_AS = "test_lab.py"\n' + textwrap.dedent(body)
    after = write_suite(tmp_path / "after", {"test_lab_topic.py": seeded_as})
    moved = write_suite(tmp_path / "moved", {"test_lab_topic.py": body})

    def drawn(suite: Path, seed: int) -> str:
        (result,) = run_hidden_tests(suite, student_from(""), seed=seed, points={"t": 1})
        return result.output

    for seed in (1, 2):
        assert drawn(after, seed) == drawn(before, seed)
        assert drawn(moved, seed) != drawn(before, seed)
    assert drawn(before, 1) != drawn(before, 2)


def test_hypothesis_inputs_follow_the_grading_seed(tmp_path: Path) -> None:
    """Are hypothesis-driven hidden tests seeded by the grading seed too?"""
    suite = write_suite(
        tmp_path,
        {
            "test_prop.py": """
            import pytest
            from hypothesis import given, settings, strategies as st

            @pytest.mark.grade("p", points=1)
            @settings(max_examples=5)
            @given(st.integers())
            def test_echo(student, n):
                assert student.call("f", n) == (n,), "f should echo"
            """
        },
    )

    def inputs(seed: int) -> list[tuple[str, tuple[Any, ...]]]:
        student = Recorder()
        outcomes = run_hidden_tests(suite, student, seed=seed, points={"p": 1})
        assert outcomes[0].status == "passed"
        return student.calls

    assert inputs(5) == inputs(5)
    assert not (tmp_path / "grader_tests" / "lab_x" / ".hypothesis").exists()


def test_only_selects_grade_ids_and_test_names() -> None:
    """Can calibration run just the tests of one grade id, or one named test?"""
    by_grade = run_hidden_tests(
        EXAMPLE, student_from(BUGGY), seed=1, points=EXAMPLE_POINTS, only=["scale"]
    )
    assert {t.grade_id for t in by_grade} == {"scale"}
    assert len(by_grade) == 2
    by_name = run_hidden_tests(
        EXAMPLE,
        student_from(BUGGY),
        seed=1,
        points=EXAMPLE_POINTS,
        only=["test_add_on_random_floats"],
    )
    assert [t.name for t in by_name] == ["test_add_on_random_floats"]
    with pytest.raises(HiddenSuiteError, match="`only` names no hidden test or grade id: nope"):
        run_hidden_tests(EXAMPLE, Recorder(), seed=1, points=EXAMPLE_POINTS, only=["nope"])


def test_each_grading_imports_the_suite_afresh(tmp_path: Path) -> None:
    """Does module state in a hidden suite start clean for every student graded in one process?"""
    suite = write_suite(
        tmp_path,
        {
            "helper_state.py": "seen = []\n",
            "test_state.py": """
            import pytest
            import helper_state

            @pytest.mark.grade("s", points=1)
            def test_first_to_touch_the_state(student):
                helper_state.seen.append(1)
                assert helper_state.seen == [1], "state leaked from an earlier grading"
            """,
        },
    )
    for _ in range(2):
        assert run_hidden_tests(suite, Recorder(), seed=0, points={"s": 1})[0].status == "passed"


def test_visibility_is_a_marker_of_its_own_and_defaults_to_visible(tmp_path: Path) -> None:
    """Do `@pytest.mark.visibility(...)` (also on a module) and the grade marker's keyword agree?"""
    suite = write_suite(
        tmp_path,
        {
            "test_vis.py": """
            import pytest

            @pytest.mark.grade("v", points=1)
            def test_plain(student):
                pass

            @pytest.mark.visibility("after_due_date")
            @pytest.mark.grade("v", points=1)
            def test_later(student):
                pass

            @pytest.mark.grade("v", points=1, visibility="hidden")
            def test_secret(student):
                pass
            """,
        },
    )
    tests = run_hidden_tests(suite, Recorder(), seed=0, points={"v": 3})
    assert {t.name: t.visibility for t in tests} == {
        "test_plain": "visible",
        "test_later": "after_due_date",
        "test_secret": "hidden",
    }


OK_TEST = """
import pytest

@pytest.mark.grade("a", points=2)
def test_ok(student):
    pass
"""


@pytest.mark.parametrize(
    ("files", "points", "expected"),
    [
        pytest.param(
            {"test_nomark.py": "def test_unmarked(student):\n    pass\n"},
            {"a": 2},
            r"test_nomark.py::test_unmarked: has no @pytest.mark.grade\(grade_id, points=N\) marker",
            id="missing-marker",
        ),
        pytest.param(
            {"test_ok.py": OK_TEST},
            {"a": 3},
            r"test_ok.py: grade cell 'a' is worth 3 points in the release notebook \(`introdl release` "
            r"makes it from the source\), but its hidden tests carry 2",
            id="points-mismatch",
        ),
        pytest.param(
            {"test_ok.py": OK_TEST},
            {"a": 2, "b": 1},
            r"grade cell 'b' \(1 points\) has no hidden test",
            id="grade-cell-without-tests",
        ),
        pytest.param(
            {"test_ok.py": OK_TEST},
            {"z": 2},
            r"test_ok.py::test_ok: grade id 'a' is not an autograded grade cell of the source notebook",
            id="unknown-grade-id",
        ),
        pytest.param(
            {"test_broken.py": "import pytest\nimport no_such_reference_module\n"},
            {"a": 2},
            r"lab_x/test_broken.py could not be imported or collected:.*no_such_reference_module",
            id="import-error",
        ),
        pytest.param(
            {"conftest.py": "raise RuntimeError('conftest exploded')\n", "test_ok.py": OK_TEST},
            {"a": 2},
            r"conftest.py.*conftest exploded",
            id="conftest-error",
        ),
        pytest.param(
            {"test_ok.py": OK_TEST.replace("points=2", "points=0")},
            {"a": 2},
            r"test_ok.py::test_ok: grade marker for 'a' needs points=N with N > 0",
            id="zero-points",
        ),
        pytest.param(
            {
                "test_ok.py": OK_TEST.replace(
                    "def test_ok", "@pytest.mark.budget(seconds=-1)\ndef test_ok"
                )
            },
            {"a": 2},
            r"test_ok.py::test_ok: budget marker needs seconds=S with S > 0",
            id="bad-budget",
        ),
        pytest.param(
            {
                "test_ok.py": OK_TEST.replace(
                    "def test_ok", "@pytest.mark.visibility('secret')\ndef test_ok"
                )
            },
            {"a": 2},
            r"test_ok.py::test_ok: grade marker visibility must be one of visible, hidden",
            id="unknown-visibility",
        ),
        pytest.param(
            {
                "test_ok.py": OK_TEST.replace("points=2", "points=2, visibility='hidden'").replace(
                    "def test_ok", "@pytest.mark.visibility('visible')\ndef test_ok"
                )
            },
            {"a": 2},
            r"says visibility='hidden' but its visibility marker says 'visible': keep one",
            id="two-visibilities",
        ),
        pytest.param(
            {"test_ok.py": OK_TEST, "test_again.py": OK_TEST.replace("points=2", "points=1")},
            {"a": 3},
            r"another hidden test is also named 'test_ok'",
            id="duplicate-names",
        ),
    ],
)
def test_a_broken_suite_is_an_authoring_error_naming_the_file(
    tmp_path: Path, files: dict[str, str], points: dict[str, float], expected: str
) -> None:
    """Does a broken hidden suite stop grading with an error that names the file, instead of scoring zero?"""
    suite = write_suite(tmp_path, files)
    with pytest.raises(HiddenSuiteError, match=f"(?s){expected}") as err:
        run_hidden_tests(suite, Recorder(), seed=0, points=points)
    assert str(suite) in str(err.value)


def test_results_round_trip_and_derive_grade_scores(tmp_path: Path) -> None:
    """Does results.json keep everything, derive per-cell scores, and get written atomically?"""
    tests = (
        TestResult("t1", "a", 1.0, 1.0, "passed"),
        TestResult("t2", "a", 0.0, 1.0, "failed", output="should be positive"),
        TestResult("t3", "b", 0.1 + 0.2, 0.3, "passed"),  # an ulp above 0.3: capped, never > points
    )
    results = Results(
        lab="lab_x",
        student="s1",
        seed=99,
        max_points={"a": 2.0, "b": 0.3, "c": 1.0},
        sandbox=Sandbox("bwrap", sandboxed=True),
        tests=tests,
        phases=Phases(sandbox_start=0.7, notebook=3.2, hidden_tests=1.5, total=5.5),
        events=(Event("timeout", "cell 4 ran past 60 s", cell=4),),
        cells=(CellRun(0, "ok", 0.1), CellRun(4, "timeout", 60.0, grade_id="a")),
        errors=("kernel died during cell 5",),
        execution_time=5.5,
        timestamp="2026-11-02 10:00:00.000000 UTC",
    )
    grades = results.grades()
    assert (grades["a"].score, grades["b"].score, grades["c"].score) == (1.0, 0.3, 0.0)
    assert results.score == 1.3
    assert results.max_score == 3.3
    path = results.write(results_path(tmp_path, "s1", "lab_x"))
    assert path == tmp_path / "autograded" / "s1" / "lab_x" / "results.json"
    assert Results.read(path) == results
    data = json.loads(path.read_text())
    assert data["score"] == 1.3
    assert data["grades"]["a"] == {"score": 1.0, "max_score": 2.0}
    assert data["tests"][1] == {
        "name": "t2",
        "grade_id": "a",
        "score": 0.0,
        "max_score": 1.0,
        "status": "failed",
        "output": "should be positive",
        "visibility": "visible",
        "duration": 0.0,
    }
    results.write(path)  # overwriting leaves no temporary files behind
    assert sorted(p.name for p in path.parent.iterdir()) == ["results.json"]
    with pytest.raises(ValueError, match="grade ids that the lab does not have: z"):
        Results(
            "lab_x",
            "s1",
            1,
            {"a": 1.0},
            Sandbox("none", False),
            tests=(TestResult("t", "z", 0, 1, "failed"),),
        )


def test_platform_errors_speak_to_students_as_written() -> None:
    """Is the door's own error ("compute_loss raised ValueError: ...") shown without a type prefix?"""

    class StudentError(Exception):
        pass

    StudentError.__module__ = "introdl.grading.door.student"
    err = StudentError("compute_loss raised ValueError: shapes (4,) and (5,) differ")
    assert feedback_message(err) == "compute_loss raised ValueError: shapes (4,) and (5,) differ"
    assert feedback_message(KeyError("logits")) == "KeyError: 'logits'"
    assert feedback_message(AssertionError("x" * 5000)).endswith("…")

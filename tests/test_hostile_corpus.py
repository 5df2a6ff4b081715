"""A class full of hostile submissions, graded in one batch through the whole pipeline.

Each scenario is one student of a one-exercise course (tests/fixtures/corpus_course). The batch runs
with the bwrap backend and short limits; every submission must get a result row with a clear status
and message, nothing may leak or change outside its working copy, and the correct submissions that
come after the hostile ones must grade normally.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import nbformat
import pytest
from nbformat import NotebookNode
from nbformat.v4 import new_code_cell, new_notebook

from introdl.grading.batch import Row, grade_class
from introdl.grading.grade import GradeOptions
from introdl.grading.record.results import Results, results_path
from introdl.grading.sandbox.limits import TEST_LIMITS
from introdl.grading.submission import find_submissions
from tests.corpus_course import LAB, answer, build_course, submit, with_cell
from tests.sandboxed import fill_working_copy

SECRET = "SECRET-MARKER-7f3a"


def scenarios(
    release: NotebookNode, course: Path, port: int
) -> dict[str, NotebookNode | bytes | Callable[[Path], None]]:
    """Student id -> notebook, raw bytes, or a function that writes the submission folder."""

    def retagged(rel: NotebookNode) -> NotebookNode:
        nb = answer(rel, "return a - b")
        nb.cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") != "add"]
        fake = new_code_cell("print('free points')")
        fake.metadata["nbgrader"] = {
            "grade_id": "bonus",
            "grade": True,
            "points": 100,
            "solution": False,
            "locked": True,
            "schema_version": 3,
            "task": False,
        }
        nb.cells.append(fake)
        return nb

    def symlink_out(folder: Path) -> None:
        nbformat.write(
            with_cell(release, "print(open('secret.txt').read())"), folder / f"{LAB}.ipynb"
        )
        os.symlink(course / "grader_tests" / LAB / "test_corpus.py", folder / "secret.txt")

    def other_lab(rel: NotebookNode) -> NotebookNode:
        nb = answer(rel)
        nb.metadata["introdl"] = {"generated_from": "source/lab2_mnist/lab2_mnist.ipynb"}
        return nb

    return {
        "a_correct": answer(release),
        "b_infinite_loop": with_cell(release, "while True:\n    pass"),
        "c_ignores_interrupt": with_cell(
            release,
            "import time\nwhile True:\n    try:\n        time.sleep(0.1)\n    except KeyboardInterrupt:\n        pass",
        ),
        "d_exits_kernel": with_cell(release, "import os\nos._exit(1)", first=True),
        "e_kills_parent": with_cell(
            release,
            "import os, signal\nfor pid in (os.getppid(), 1):\n    try:\n        os.kill(pid, signal.SIGKILL)\n    except OSError:\n        pass",
        ),
        "f_fork_bomb": with_cell(
            release,
            "import os, time\nfor _ in range(100000):\n    try:\n        if os.fork() == 0:\n            time.sleep(30)\n            os._exit(0)\n    except OSError:\n        break\nprint('contained')",
        ),
        "g_memory_hog": with_cell(
            release, "chunks = []\nwhile True:\n    chunks.append(np.ones(2**24))"
        ),
        "h_huge_output": with_cell(release, "for i in range(20000):\n    print('spam ' * 200, i)"),
        "i_reads_secrets": with_cell(
            release,
            "import os\nfound = {}\n"
            f"for p in [{str(course / 'grader_tests')!r}, {str(course / 'gradebook.db')!r}, {str(course / 'source')!r}, '/work', '/etc/shadow']:\n"
            "    try:\n        found[p] = os.listdir(p) if os.path.isdir(p) else open(p, 'rb').read(100)\n"
            "    except OSError as err:\n        found[p] = type(err).__name__\nprint(found)",
        ),
        "j_writes_outside": with_cell(
            release,
            "import pathlib\nfor p in ["
            f"{str(course / 'nbgrader_config.py')!r}, {str(course / 'grader_tests' / LAB / 'test_corpus.py')!r}, "
            f"{str(course / 'autograded' / 'j_writes_outside' / LAB / 'results.json')!r}, '/usr/lib/evil.txt']:\n"
            "    try:\n        pathlib.Path(p).write_text('owned')\n        print('wrote', p)\n"
            "    except OSError as err:\n        print('refused', p, type(err).__name__)",
        ),
        "k_opens_network": with_cell(
            release,
            "import socket\ntry:\n"
            f"    socket.create_connection(('127.0.0.1', {port}), timeout=3).sendall(b'leak')\n    print('connected')\n"
            "except OSError as err:\n    print('no network', type(err).__name__)",
        ),
        "l_always_equal": with_cell(
            release,
            "class AlwaysEqual:\n    def __eq__(self, other):\n        return True\ndef add(a, b):\n    return AlwaysEqual()",
        ),
        "m_monkeypatches": with_cell(
            release,
            "import builtins, numpy\nnumpy.allclose = lambda *a, **k: True\nnumpy.testing.assert_allclose = lambda *a, **k: None\n"
            "builtins.isinstance = lambda *a: True\ndef add(a, b):\n    return a * 0",
        ),
        "n_forges_results": with_cell(
            release,
            "import json\njson.dump({'score': 2, 'max_score': 2, 'tests': []}, open('results.json', 'w'))\ndef add(a, b):\n    return a - b",
        ),
        "o_retags_cells": retagged(release),
        "p_invalid_json": b'{"cells": [ {"cell_type": "code", "source": "def add(a, b): return a + b"',
        "q_empty_notebook": new_notebook(),
        "r_other_lab": other_lab(release),
        "s_symlink_out": symlink_out,
        "t_fills_disk": with_cell(
            release,
            fill_working_copy(TEST_LIMITS.file_size_bytes // 2)
            + "print('stopped by', failure, 'after', i, 'files')",
        ),
        "z_correct": answer(release),
    }


@pytest.fixture(scope="module")
def listener() -> Iterator[tuple[int, list[bytes]]]:
    """A loopback server in the grader: any byte it receives means the sandbox had network."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(5)
    server.settimeout(0.5)
    received: list[bytes] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            received.append(conn.recv(100) or b"<connected>")
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], received
    stop.set()
    thread.join(2)
    server.close()


def tree_hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in root.rglob("*")
        if p.is_file()
        and "submitted" not in p.parts
        and "autograded" not in p.parts
        and "__pycache__" not in p.parts
        and p.name != "gradebook.db"
    }


@pytest.fixture(scope="module", params=[0, 1], ids=["cold", "warm"])
def graded(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    listener: tuple[int, list[bytes]],
) -> dict[str, object]:
    """The class graded with cold sandboxes, then again with warm ones (pool.py: each worker
    keeps one kernel warming while it grades)."""
    course = tmp_path_factory.mktemp("corpus") / "course"
    release = build_course(course)
    for student, what in scenarios(release, course, listener[0]).items():
        submit(course, student, what)
    before = tree_hashes(course)
    options = GradeOptions(backend="bwrap", seed=1234, limits=TEST_LIMITS)
    subs = find_submissions(course, LAB)
    rows = grade_class(course, subs, options, workers=2, warm=request.param)
    after = tree_hashes(course)
    results = {
        r.student: Results.read(results_path(course, r.student, LAB))
        for r in rows
        if r.status == "graded"
    }
    return {
        "course": course,
        "rows": {r.student: r for r in rows},
        "results": results,
        "before": before,
        "after": after,
    }


def row(graded: dict[str, object], student: str) -> Row:
    rows = graded["rows"]
    assert isinstance(rows, dict)
    return rows[student]


def result(graded: dict[str, object], student: str) -> Results:
    results = graded["results"]
    assert isinstance(results, dict)
    return results[student]


def kinds(graded: dict[str, object], student: str) -> set[str]:
    return {e.kind for e in result(graded, student).events}


def test_every_submission_gets_a_result_row(graded: dict[str, object]) -> None:
    """Does every student of the hostile class get a graded row (none lost, none crashed)?"""
    rows = graded["rows"]
    assert isinstance(rows, dict)
    assert len(rows) == 21
    assert {r.status for r in rows.values()} == {"graded"}, {
        s: (r.status, r.message) for s, r in rows.items()
    }


def test_correct_submissions_before_and_after_the_hostile_ones_get_full_marks(
    graded: dict[str, object],
) -> None:
    """Does the batch keep grading normally around hostile submissions?"""
    assert row(graded, "a_correct").score == 2
    assert row(graded, "z_correct").score == 2


@pytest.mark.parametrize(
    ("student", "score", "event"),
    [
        ("b_infinite_loop", 2, "cell_timeout"),
        ("h_huge_output", 2, "output_truncated"),
        ("d_exits_kernel", 0, "kernel_died"),
    ],
)
def test_runaway_cells_are_stopped_and_reported(
    graded: dict[str, object], student: str, score: float, event: str
) -> None:
    """Is a runaway cell stopped, reported as an event, and the rest still graded where possible?"""
    assert row(graded, student).score == score
    assert event in kinds(graded, student)


def test_a_loop_that_ignores_interrupts_is_killed(graded: dict[str, object]) -> None:
    """Does swallowing KeyboardInterrupt end in a killed sandbox with a reported event?"""
    assert "kernel_killed" in kinds(graded, "c_ignores_interrupt") or "cell_timeout" in kinds(
        graded, "c_ignores_interrupt"
    )
    tests = result(graded, "c_ignores_interrupt").tests
    assert all(t.output for t in tests if t.status != "passed")


def test_killing_the_parent_or_forking_or_hogging_memory_harms_no_one(
    graded: dict[str, object],
) -> None:
    """Do a parent killer, a fork bomb and a memory hog each get a row while the batch goes on?"""
    for student in ("e_kills_parent", "f_fork_bomb", "g_memory_hog"):
        assert row(graded, student).max_score == 2
    assert row(graded, "f_fork_bomb").score == 2  # contained by the process limit; add still works


def test_nothing_outside_the_working_copies_changed(graded: dict[str, object]) -> None:
    """Are the course files (config, hidden tests, sources, releases) unchanged after the batch?"""
    assert graded["before"] == graded["after"]
    assert not Path("/usr/lib/evil.txt").exists()


def test_no_network_from_the_sandbox(
    graded: dict[str, object], listener: tuple[int, list[bytes]]
) -> None:
    """Can a submission reach even a loopback server of the grading host? (No.)"""
    assert listener[1] == []
    assert row(graded, "k_opens_network").score == 2


def test_secrets_are_not_readable_and_do_not_leak(graded: dict[str, object]) -> None:
    """Can a submission read the hidden tests, the gradebook or the sources, or see them in feedback?"""
    course = graded["course"]
    assert isinstance(course, Path)
    nb = nbformat.read(
        course / "autograded" / "i_reads_secrets" / LAB / f"{LAB}.ipynb", as_version=4
    )
    printed = "".join(
        o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
    )
    assert "FileNotFoundError" in printed or "PermissionError" in printed
    assert "test_corpus" not in printed
    assert "gradebook" not in printed.replace(str(course / "gradebook.db"), "")
    for student in graded["results"]:  # type: ignore[union-attr]
        text = json.dumps(result(graded, student).to_json())
        assert SECRET not in text


@pytest.mark.parametrize("student", ["l_always_equal", "m_monkeypatches", "n_forges_results"])
def test_tricks_do_not_earn_points(graded: dict[str, object], student: str) -> None:
    """Do an always-equal object, a monkeypatched numpy or a forged results.json earn anything? (No.)"""
    assert row(graded, student).score == 0
    assert result(graded, student).tests[0].output


def test_retagged_cells_cannot_raise_the_maximum(graded: dict[str, object]) -> None:
    """Does deleting the grade cell and adding a 100-point one change the lab's points? (No.)"""
    r = row(graded, "o_retags_cells")
    assert (r.score, r.max_score) == (0, 2)
    assert "repaired" in kinds(graded, "o_retags_cells")


@pytest.mark.parametrize(
    ("student", "words"),
    [
        ("p_invalid_json", "not a valid notebook"),
        ("q_empty_notebook", "no cells"),
        ("r_other_lab", "lab2_mnist"),
    ],
)
def test_unreadable_submissions_score_zero_with_a_reason(
    graded: dict[str, object], student: str, words: str
) -> None:
    """Does a broken, empty or wrong-lab notebook get zero and a message that says why?"""
    r = row(graded, student)
    assert (r.score, r.max_score) == (0, 2)
    assert words in r.message


def test_filling_the_working_copy_stops_at_its_quota(graded: dict[str, object]) -> None:
    """Can a submission fill the grading host's disk with files each under the size cap? (No.)"""
    course = graded["course"]
    assert isinstance(course, Path)
    nb = nbformat.read(course / "autograded" / "t_fills_disk" / LAB / f"{LAB}.ipynb", as_version=4)
    printed = "".join(o.get("text", "") for o in nb.cells[-1].get("outputs", []))
    files = TEST_LIMITS.workdir_bytes // (TEST_LIMITS.file_size_bytes // 2)
    assert printed.strip() in {f"stopped by ENOSPC after {n} files" for n in (files - 1, files)}
    assert row(graded, "t_fills_disk").score == 2  # its own cell failed; add still works
    assert not list(course.rglob("chunk*.bin"))
    assert result(graded, "t_fills_disk").sandbox.workdir_quota == TEST_LIMITS.workdir_bytes


def test_symlinks_out_of_the_submission_are_not_followed(graded: dict[str, object]) -> None:
    """Is a symlink to the hidden tests left out of the sandbox's copy?"""
    assert "repaired" in kinds(graded, "s_symlink_out")
    assert row(graded, "s_symlink_out").score == 2
    text = json.dumps(result(graded, "s_symlink_out").to_json())
    assert SECRET not in text

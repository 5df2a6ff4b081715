"""`introdl lms csv`: do the files import into Canvas's and Moodle's gradebooks as they document?

The fixtures (tests/fixtures/lms/) are gradebooks copied by hand from the formats Canvas and Moodle
document (each says where from). `canvas_import` and `moodle_import` below apply a file the way
those pages describe the import: match rows by Canvas's ID / Moodle's ID number, fill the
assignment's column, leave empty cells alone, and report rows they cannot match.
"""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path

import pytest

from introdl.cli import main
from tests.lms_course import LAB, Student, template_gradebook

FIXTURES = Path(__file__).parent / "fixtures" / "lms"
STUDENTS = (
    Student(
        "alice", "10231", (5.0, 3.0), first_name="Alice", last_name="Ng", email="alice@example.edu"
    ),
    Student(
        "bob",
        "10232",
        (6.0, 3.0),
        late_penalty=2.0,
        first_name="Bob",
        last_name="Okafor",
        email="bob@example.edu",
    ),
    Student(
        "carol",
        "10233",
        (2.5, 2.5),
        first_name="Carol",
        last_name="Diaz",
        email="carol@example.edu",
    ),
    Student("dave", "", (4.0, 2.0), first_name="Dave", last_name="Kim"),
    Student("frank", "10236", None, first_name="Frank", last_name="Roy", email="frank@example.edu"),
    Student(
        "mallory",
        "10240",
        (1.0, 1.0),
        first_name='=HYPERLINK("http://evil.example")',
        last_name="M",
    ),
)


def read_fixture(name: str) -> list[list[str]]:
    text = (FIXTURES / name).read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    return list(csv.reader(lines))


def read_csv(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.reader(handle))


@pytest.fixture
def course(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "course"
    root.mkdir()
    db_url = f"sqlite:///{root / 'gradebook.db'}"
    (root / "nbgrader_config.py").write_text(
        "c = get_config()  # noqa: F821\n"
        'c.CourseDirectory.course_id = "introdl"\n'
        f"c.CourseDirectory.root = {str(root)!r}\n"
        f"c.CourseDirectory.db_url = {db_url!r}\n"
    )
    (root / "gradebook.db").write_bytes(template_gradebook(STUDENTS))
    monkeypatch.setenv("INTRODL_COURSE_ROOT", str(root))
    return root


def canvas_import(
    gradebook: list[list[str]], upload: list[list[str]]
) -> tuple[dict[str, str], list[str]]:
    """Canvas's documented import: columns by header, rows by ID; returns ({ID: cell}, unmatched)."""
    header, points = gradebook[0], gradebook[1]
    assert (
        upload[0][:5] == header[:5] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
    )
    assert upload[1][0].strip() == points[0].strip() == "Points Possible"
    (column,) = upload[0][5:]
    match = re.fullmatch(r"(.+) \((\d+)\)", column)
    assert match, f"{column!r} is not '<name> (<assignment id>)'"
    index = header.index(column)  # the upload's column is the gradebook's assignment
    assert float(upload[1][5]) == float(points[index])
    cells = {row[1]: row[index] for row in gradebook[2:]}
    unmatched = []
    for row in upload[2:]:
        if row[1] not in cells:
            unmatched.append(row[1])
        elif row[5] != "":
            cells[row[1]] = row[5]
    return cells, unmatched


def moodle_import(
    gradebook: list[list[str]], upload: list[list[str]], item: str
) -> tuple[dict[str, str], list[str]]:
    """Moodle's documented CSV import: map "ID number" to useridnumber and the grade column to ITEM."""
    header = gradebook[0]
    by_idnumber = {row[header.index("ID number")]: row for row in gradebook[1:]}
    target = header.index(item)
    id_col = upload[0].index("ID number")
    (grade_col,) = [i for i, name in enumerate(upload[0]) if name not in gradebook[0]]
    unmatched = []
    for row in upload[1:]:
        found = by_idnumber.get(row[id_col])
        if found is None:
            unmatched.append(row[id_col])
        elif row[grade_col] != "":
            found[target] = row[grade_col]
    return {k: v[target] for k, v in by_idnumber.items()}, unmatched


def test_the_canvas_file_imports_into_a_canvas_gradebook(
    course: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Does Canvas's import, as documented, put every final score in the assignment's column?"""
    out = tmp_path / "canvas.csv"
    code = main(
        [
            "lms",
            "csv",
            LAB,
            "--lms",
            "canvas",
            "--out",
            str(out),
            "--name",
            "Lab 1: Music",
            "--assignment-id",
            "4711",
        ]
    )
    assert code == 0
    summary = capsys.readouterr().out
    assert "left out (no lms_user_id): dave" in summary
    cells, unmatched = canvas_import(read_fixture("canvas-gradebook.csv.txt"), read_csv(out))
    assert cells == {
        "10231": "8.00",
        "10232": "7.00",
        "10233": "5.00",
        "10236": "",
        "10239": "3.00",
    }
    assert unmatched == ["10240"]  # mallory is not in the Canvas course: Canvas lists her
    assert os.stat(out).st_mode & 0o077 == 0
    assert out.read_bytes().count(b"\r\n") == len(read_csv(out))  # CSV's CRLF rows


def test_the_moodle_file_imports_into_a_moodle_gradebook(course: Path, tmp_path: Path) -> None:
    """Does Moodle's CSV import, mapped by ID number, fill the grade item with the final scores?"""
    out = tmp_path / "moodle.csv"
    assert main(["lms", "csv", LAB, "--lms", "moodle", "--out", str(out)]) == 0
    upload = read_csv(out)
    assert upload[0] == ["First name", "Last name", "ID number", "Email address", LAB]
    grades, unmatched = moodle_import(
        read_fixture("moodle-grades.csv.txt"), upload, "Assignment: Lab 1: Music (Real)"
    )
    assert grades == {
        "10231": "8.00",
        "10232": "7.00",
        "10233": "5.00",
        "10236": "-",
        "10239": "3.00",
    }
    assert unmatched == ["10240"]


def test_a_name_that_is_a_formula_stays_text(course: Path, tmp_path: Path) -> None:
    """Could a student's name run as a formula when staff open the file in a spreadsheet?"""
    for lms in ("canvas", "moodle"):
        out = tmp_path / f"{lms}.csv"
        assert main(["lms", "csv", LAB, "--lms", lms, "--out", str(out)]) == 0
        cells = [cell for row in read_csv(out) for cell in row]
        assert not [c for c in cells if c.startswith(("=", "+", "@", "-"))], lms
    moodle_cells = [cell for row in read_csv(tmp_path / "moodle.csv") for cell in row]
    assert '\'=HYPERLINK("http://evil.example")' in moodle_cells


def test_an_unknown_lms_is_bad_input(
    course: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Is `--lms blackboard` refused with the choices named?"""
    assert main(["lms", "csv", LAB, "--lms", "blackboard", "--out", str(tmp_path / "x.csv")]) == 2
    assert "use canvas or moodle" in capsys.readouterr().err

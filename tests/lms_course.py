"""A small course for the grade-passback tests: a real nbgrader gradebook and the tool's secrets.

The gradebook is made with nbgrader's own Gradebook API: one lab (two autograded cells, 10 points),
students with `lms_user_id`, their scores, and one stored late penalty. The tool's RSA key and
client id are files of mode 0600, registered with the test platform (tests/lti_platform.py).
"""

from __future__ import annotations

import functools
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import rsa
from nbgrader.api import Gradebook

from tests.lti_platform import INSTRUCTOR, Platform, new_rsa_key, private_pem

LAB = "lab1_music"
CONTEXT = "course-42"
CLIENT_ID = "introdl-tool-client-17"


@dataclass(frozen=True)
class Student:
    id: str
    lms_user_id: str
    cells: tuple[float, float] | None  # the two cells' scores; None: no submission
    late_penalty: float = 0.0
    first_name: str = ""
    last_name: str = ""
    email: str = ""


# alice, bob (late: 9 - 2 = 7) and carol are on both sides; dave has no lms_user_id; erin is not in
# the LMS course; frank never submitted; the LMS also lists "u-zoe", whom the gradebook lacks.
STUDENTS = (
    Student(
        "alice",
        "u-alice",
        (5.0, 3.0),
        first_name="Alice",
        last_name="Ng",
        email="alice@example.edu",
    ),
    Student(
        "bob",
        "u-bob",
        (6.0, 3.0),
        late_penalty=2.0,
        first_name="Bob",
        last_name="Okafor",
        email="bob@example.edu",
    ),
    Student(
        "carol",
        "u-carol",
        (2.5, 2.5),
        first_name="Carol",
        last_name="Diaz",
        email="carol@example.edu",
    ),
    Student("dave", "", (4.0, 2.0), first_name="Dave", last_name="Kim"),
    Student("erin", "u-erin", (1.0, 3.0), first_name="Erin", last_name="Li"),
    Student("frank", "u-frank", None, first_name="Frank", last_name="Roy"),
)
LMS_MEMBERS = ("u-alice", "u-bob", "u-carol", "u-frank", "u-zoe")
FINALS = {"alice": 8.0, "bob": 7.0, "carol": 5.0}  # what the line item must hold


@dataclass(frozen=True)
class Course:
    root: Path
    key_file: Path
    client_id_file: Path
    db_url: str


def make_gradebook(db_url: str, students: tuple[Student, ...] = STUDENTS) -> None:
    # A new gradebook runs `alembic` from PATH (as `nbgrader` does): this environment's bin first.
    bin_dir = str(Path(sys.executable).parent)
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"
    with Gradebook(db_url, "introdl") as gb:
        gb.add_assignment(LAB)
        gb.add_notebook(LAB, LAB)
        for cell in ("cell_a", "cell_b"):
            gb.add_grade_cell(cell, LAB, LAB, max_score=5.0, cell_type="code")
        for s in students:
            gb.add_student(
                s.id,
                lms_user_id=s.lms_user_id or None,
                first_name=s.first_name,
                last_name=s.last_name,
                email=s.email or None,
            )
            if s.cells is None:
                continue
            gb.add_submission(LAB, s.id)
            set_scores(gb, s.id, s.cells)
            if s.late_penalty:
                nb = gb.find_submission_notebook(LAB, LAB, s.id)
                nb.late_submission_penalty = s.late_penalty
                gb.db.commit()


@functools.cache
def template_gradebook(students: tuple[Student, ...] = STUDENTS) -> bytes:
    """The gradebook's bytes, made once per test session (a new one runs alembic: ~2 s)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "gradebook.db"
        make_gradebook(f"sqlite:///{path}", students)
        return path.read_bytes()


@functools.cache
def tool_key() -> rsa.RSAPrivateKey:
    return new_rsa_key()


def set_scores(gb: Gradebook, student: str, cells: tuple[float, float]) -> None:
    for cell, score in zip(("cell_a", "cell_b"), cells, strict=True):
        gb.find_grade(cell, LAB, LAB, student).auto_score = score
    gb.db.commit()


def regrade(course: Course, student: str, cells: tuple[float, float]) -> None:
    with Gradebook(course.db_url, "introdl") as gb:
        set_scores(gb, student, cells)


def secret_file(path: Path, data: bytes) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    return path


def make_course(root: Path, platform: Platform, **lti: object) -> Course:
    """A course folder whose c.LTI points at PLATFORM; LTI overrides settings (retries=...)."""
    from introdl.lms.keys import public_jwk

    root.mkdir(parents=True, exist_ok=True)
    secrets_dir = root / "secrets"
    secrets_dir.mkdir(mode=0o700)
    key = tool_key()
    key_file = secret_file(secrets_dir / "tool.pem", private_pem(key))
    client_id_file = secret_file(secrets_dir / "client_id", CLIENT_ID.encode() + b"\n")
    platform.register_tool(CLIENT_ID, public_jwk(key))
    for member in LMS_MEMBERS:
        platform.add_member(CONTEXT, member, name=f"Name of {member}")
    platform.add_member(CONTEXT, "u-teacher", role=INSTRUCTOR, name="The Teacher")
    db_url = f"sqlite:///{root / 'gradebook.db'}"
    settings = {
        "issuer": platform.issuer,
        "client_id_file": str(client_id_file),
        "deployment_id": platform.deployment_id,
        "token_url": platform.token_url,
        "platform_jwks_url": platform.jwks_url,
        "lineitems_url": platform.lineitems_url(CONTEXT),
        "memberships_url": platform.memberships_url(CONTEXT),
        "private_key_file": str(key_file),
        "state": str(root / "state"),
        "backoff": 0.05,
        "retries": 3,
        **lti,
    }
    lines = [
        "c = get_config()  # noqa: F821",
        'c.CourseDirectory.course_id = "introdl"',
        f"c.CourseDirectory.root = {str(root)!r}",
        f"c.CourseDirectory.db_url = {db_url!r}",
        *(f"c.LTI.{name} = {value!r}" for name, value in settings.items()),
    ]
    (root / "nbgrader_config.py").write_text("\n".join(lines) + "\n")
    (root / "gradebook.db").write_bytes(template_gradebook())
    return Course(root=root, key_file=key_file, client_id_file=client_id_file, db_url=db_url)

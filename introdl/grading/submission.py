"""Finding submissions, reading them safely, and preparing the working copy a sandbox sees.

A submission is whatever `nbgrader collect` put under `submitted/<student>/<lab>/`. Nothing in it is
trusted: the notebook may be broken JSON, empty, another lab's notebook, or have its locked cells
deleted or retagged; the folder may hold symlinks pointing anywhere or huge files.
"""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import nbformat
from nbformat import NotebookNode

from introdl.grading.errors import BadInput

MAX_FILE_BYTES = 200 * 1024 * 1024  # a file larger than this is not copied into the sandbox
MAX_NOTEBOOK_BYTES = 50 * 1024 * 1024


class SubmissionError(Exception):
    """The submission cannot be graded as it is; graded as zero with this message (not exit 2)."""


@dataclass(frozen=True)
class Submission:
    student: str
    lab: str
    folder: Path
    notebook: Path
    timestamp: str | None  # as written by `nbgrader collect` (timestamp.txt), if present

    def fingerprint(self) -> str:
        """A hash of the submitted files: a resumed batch regrades only what changed."""
        digest = hashlib.sha256()
        for path in sorted(p for p in self.folder.rglob("*") if p.is_file() and not p.is_symlink()):
            digest.update(str(path.relative_to(self.folder)).encode())
            with path.open("rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(block)
        return digest.hexdigest()


def find_submissions(root: Path, lab: str, students: tuple[str, ...] = ()) -> list[Submission]:
    """Submissions of LAB under submitted/ (all students, or those named)."""
    base = root / "submitted"
    if students:
        folders = [base / s / lab for s in students]
        missing = [f for f in folders if not f.is_dir()]
        if missing:
            raise BadInput(
                f"no submission at {missing[0]}: run `nbgrader collect {lab}` first, or check the student id"
            )
    else:
        folders = sorted(p for p in base.glob(f"*/{lab}") if p.is_dir()) if base.is_dir() else []
    return [submission_at(folder, lab) for folder in folders]


def submission_at(folder: Path, lab: str, student: str | None = None) -> Submission:
    stamp = folder / "timestamp.txt"
    timestamp = stamp.read_text().strip() if stamp.is_file() and not stamp.is_symlink() else None
    return Submission(
        student=student or folder.parent.name,
        lab=lab,
        folder=folder,
        notebook=folder / f"{lab}.ipynb",
        timestamp=timestamp,
    )


def undated(sub: Submission) -> str | None:
    """Why SUB cannot be graded for want of its time stamp, or None when it has one.

    Without `timestamp.txt` nbgrader's gradebook records no hand-in time, so a late hand-in
    would count as on time (0 s late): such a submission is refused, never graded as on time.
    """
    again = f"`nbgrader collect {sub.lab} --update --student {sub.student}`"
    if sub.timestamp is None:
        return (
            f"{sub.folder} has no timestamp.txt, so when it was handed in is unknown and its "
            f"lateness cannot be judged: not graded. Collect it again with {again}, then grade."
        )
    if parse_timestamp(sub.timestamp) is None:
        return (
            f"{sub.folder / 'timestamp.txt'} holds {sub.timestamp[:60]!r}, not a time: not "
            f"graded. Collect it again with {again}, then grade."
        )
    return None


def parse_timestamp(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace(" UTC", "+00:00").replace("Z", "+00:00"))
    except ValueError:
        return None


def read_notebook(path: Path) -> NotebookNode:
    """The submitted notebook, or SubmissionError saying what is wrong with it."""
    if path.is_symlink():
        raise SubmissionError(
            f"{path.name} is a symbolic link, not a notebook; submit the notebook file itself"
        )
    if not path.is_file():
        raise SubmissionError(
            f"no {path.name} in the submission; submit the lab's notebook under that name"
        )
    if path.stat().st_size > MAX_NOTEBOOK_BYTES:
        raise SubmissionError(
            f"{path.name} is larger than {MAX_NOTEBOOK_BYTES // 2**20} MB; clear its outputs and resubmit"
        )
    try:
        text = path.read_text(encoding="utf-8")
        json.loads(text)  # a clear JSON error first
        # nbformat.reads joins multi-line sources and upgrades old formats to v4.
        nb: NotebookNode = nbformat.reads(text, as_version=4)
        nbformat.validate(nb)
    except (ValueError, UnicodeDecodeError, TypeError, KeyError, AttributeError) as err:
        # nbformat's upgraders raise all of these on JSON that is not shaped like a notebook
        raise SubmissionError(
            f"{path.name} is not a valid notebook ({type(err).__name__}: {str(err)[:200]}); restore it from the release and resubmit"
        ) from err
    except nbformat.ValidationError as err:
        raise SubmissionError(
            f"{path.name} is not a valid notebook ({err.message[:200]}); restore it from the release and resubmit"
        ) from err
    if not nb.cells:
        raise SubmissionError(f"{path.name} has no cells; restore it from the release and resubmit")
    return nb


def grade_id(cell: NotebookNode) -> str | None:
    meta: dict[str, Any] = cell.get("metadata", {}).get("nbgrader", {})
    gid = meta.get("grade_id")
    return gid if isinstance(gid, str) else None


def is_locked(cell: NotebookNode) -> bool:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return bool(meta.get("locked") or meta.get("grade")) and not meta.get("solution")


def grade_points(nb: NotebookNode) -> dict[str, float]:
    """{grade_id: points} of the autograded grade cells (code cells that are graded, not answers).

    The same cells nbgrader scores automatically; kept here so grading workers need not import
    nbgrader (whose import costs seconds).
    """
    points: dict[str, float] = {}
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        gid = grade_id(cell)
        if cell.cell_type == "code" and meta.get("grade") and not meta.get("solution") and gid:
            points[gid] = float(meta.get("points", 0))
    return points


def check_lab(nb: NotebookNode, release: NotebookNode, lab: str) -> None:
    """Reject the notebook of another lab (none of this lab's cells, or another lab's stamp)."""
    stamped = nb.metadata.get("introdl", {}).get("generated_from", "")
    if stamped and f"/{lab}/" not in stamped:
        raise SubmissionError(
            f"this notebook was generated from {stamped}, not the {lab} release; submit the {lab} notebook"
        )
    ours = {grade_id(c) for c in release.cells} - {None}
    theirs = {grade_id(c) for c in nb.cells} - {None}
    if ours and not ours & theirs:
        raise SubmissionError(
            f"this notebook has none of {lab}'s exercise cells; it looks like another lab's notebook: submit the {lab} notebook"
        )


def restore_locked_cells(nb: NotebookNode, release: NotebookNode) -> tuple[NotebookNode, list[str]]:
    """Put back every locked cell of the release as released, in release order.

    Locked cells (instructions, public checks, set-up code) are taken from the release whatever the
    student did to them; solution cells keep the student's code with the release's metadata. Cells
    whose nbgrader metadata claims an id the release does not have lose that metadata. Returns the
    repaired notebook and a list of what was repaired (shown in the results).
    """
    notes: list[str] = []
    released = {gid: c for c in release.cells if (gid := grade_id(c)) is not None}
    student_by_id: dict[str, NotebookNode] = {}
    for cell in nb.cells:
        gid = grade_id(cell)
        if gid is None:
            continue
        if gid not in released:
            notes.append(f"cell tagged {gid!r} is not a cell of this lab; its tag was removed")
            cell.metadata.pop("nbgrader", None)
        elif gid in student_by_id:
            notes.append(f"cell {gid!r} appears twice; the second copy's tag was removed")
            cell.metadata.pop("nbgrader", None)
        else:
            student_by_id[gid] = cell
    out: list[NotebookNode] = []
    seen: set[str] = set()
    # Walk the student's cells, inserting any missing released cells where they belong.
    release_order = [gid for gid in (grade_id(c) for c in release.cells) if gid is not None]
    position = {gid: i for i, gid in enumerate(release_order)}
    next_expected = 0

    def flush_until(limit: int) -> None:
        nonlocal next_expected
        while next_expected < limit:
            gid = release_order[next_expected]
            if gid not in student_by_id and gid not in seen:
                notes.append(f"cell {gid!r} was missing and was restored from the release")
                out.append(copy.deepcopy(released[gid]))
                seen.add(gid)
            next_expected += 1

    for cell in nb.cells:
        gid = grade_id(cell)
        if gid is None:
            out.append(cell)
            continue
        flush_until(position[gid])
        original = released[gid]
        if is_locked(original):
            if cell.source != original.source or cell.cell_type != original.cell_type:
                notes.append(f"locked cell {gid!r} was edited; it was restored from the release")
            repaired = copy.deepcopy(original)
            repaired.outputs = cell.get("outputs", []) if repaired.cell_type == "code" else []
            out.append(repaired)
        else:
            cell.metadata["nbgrader"] = copy.deepcopy(original.metadata["nbgrader"])
            if cell.cell_type != original.cell_type:
                notes.append(f"cell {gid!r} changed type; it was restored to {original.cell_type}")
                cell.cell_type = original.cell_type
                if cell.cell_type == "code":
                    cell.outputs, cell.execution_count = [], None
                else:
                    cell.pop("outputs", None)
                    cell.pop("execution_count", None)
            out.append(cell)
        seen.add(gid)
        next_expected = max(next_expected, position[gid] + 1)
    flush_until(len(release_order))
    nb.cells = out
    return nb, notes


def prepare_workdir(
    submission: Submission, nb: NotebookNode, dest: Path, *, quota: int | None = None
) -> list[str]:
    """Copy the submission's regular files into DEST (the sandbox's only writable view).

    Symbolic links, oversized files and files past the working copy's `quota` (bytes in total,
    after room for the notebook) are left out and reported; the notebook written is the repaired
    one, without outputs.
    """
    notes: list[str] = []
    dest.mkdir(parents=True, exist_ok=True)
    room = None if quota is None else quota - MAX_NOTEBOOK_BYTES
    quota_mb = (quota or 0) // 2**20
    for path in sorted(submission.folder.rglob("*")):
        rel = path.relative_to(submission.folder)
        if path.is_symlink():
            notes.append(f"{rel} is a symbolic link; it was not copied")
            continue
        if path.is_dir() or path == submission.notebook or rel.name == "timestamp.txt":
            continue
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            notes.append(f"{rel} is larger than {MAX_FILE_BYTES // 2**20} MB; it was not copied")
            continue
        if room is not None:
            if size > room:
                notes.append(
                    f"{rel} would pass the working copy's {quota_mb} MB; it was not copied"
                )
                continue
            room -= size
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    clean = copy.deepcopy(nb)
    for cell in clean.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nbformat.write(clean, dest / submission.notebook.name)
    return notes

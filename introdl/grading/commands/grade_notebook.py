"""`introdl grade-notebook PATH --lab LAB`: grade one notebook file and print its tests."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from introdl.grading.commands.grade import NO_WORKDIR_QUOTA, NOT_SANDBOXED, check_backend
from introdl.grading.course import course_root, resolve_labs
from introdl.grading.errors import BadInput
from introdl.grading.grade import GradeOptions, grade_submission
from introdl.grading.submission import submission_at


@dataclass(frozen=True)
class NotebookResult:
    lab: str
    path: str
    results: dict[str, Any]

    def summary(self) -> str:
        r = self.results
        lines = [f"{self.path} ({self.lab}): {r['score']:g} / {r['max_score']:g}"]
        if not r["sandbox"]["sandboxed"]:
            lines.append(NOT_SANDBOXED)
        elif r["sandbox"].get("workdir_quota") is None:
            lines.append(NO_WORKDIR_QUOTA)
        lines += [
            f"  {t['status'].upper():<7} {t['name']}: {t['output']}".rstrip(": ")
            for t in r["tests"]
        ]
        lines += [f"  error: {e}" for e in r["errors"]]
        lines += [
            f"  event: {e['kind']}: {e['message']}" for e in r["events"] if e["kind"] != "repaired"
        ]
        return "\n".join(lines)


def grade_notebook(
    *,
    path: str | None = None,
    lab: str | None = None,
    backend: str | None = None,
    seed: int | None = None,
    only: tuple[str, ...] = (),
) -> NotebookResult:
    """Grade one notebook file against LAB's hidden tests (no gradebook; prints the results)."""
    if not path or not lab:
        raise BadInput("usage: introdl grade-notebook PATH --lab LAB")
    check_backend(backend)
    root = course_root()
    resolve_labs(root, lab)
    source = Path(path).resolve()
    if not source.is_file():
        raise BadInput(f"no notebook at {source}")
    with tempfile.TemporaryDirectory(prefix="introdl-one-") as tmp:
        folder = Path(tmp) / "notebook" / lab
        folder.mkdir(parents=True)
        shutil.copyfile(source, folder / f"{lab}.ipynb")
        sub = submission_at(folder, lab, student="notebook")
        options = GradeOptions(backend=backend, seed=seed, only=only)
        graded = grade_submission(root, sub, options)
    return NotebookResult(lab, str(source), graded.results.to_json())

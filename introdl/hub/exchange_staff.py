"""The staff's side of the course exchange: release a lab, collect hand-ins, release feedback.

nbgrader's `release_assignment`, `collect` and `release_feedback` call these classes once
`configure(c)` (exchange_client.py) is in the staff's nbgrader config; the caller must be course
staff by the hub's groups, which the exchange service checks. `collect` checks each hand-in before
unpacking it into a temporary folder beside its place, writes the time stamp there, and only then
swaps it in, so a folder without its `timestamp.txt` never exists, and one student's bad archive
is reported and skipped while everyone else is collected.
"""

from __future__ import annotations

import glob
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

from nbgrader.exchange import abc
from nbgrader.exchange.abc.exchange import ExchangeError
from nbgrader.utils import parse_utc

from introdl.hub.archive import ArchiveError, Limits, pack, unpack
from introdl.hub.exchange_client import HubExchange


class ReleaseAssignment(HubExchange, abc.ExchangeReleaseAssignment):  # type: ignore[misc]
    def copy_files(self) -> None:
        lab = self.lab()
        src = Path(self.coursedir.format_path(self.coursedir.release_directory, ".", lab))
        if not src.is_dir():
            self.fail(f"no release folder {src}: run nbgrader generate_assignment {lab} first")
        blob = pack(src, ignore=tuple(self.coursedir.ignore))
        if self.force:
            self.call("DELETE", f"assignments/{lab}")
        info = self.call("POST", f"assignments/{lab}", data=blob).json()
        self.log.info(
            "Released as: %s %s (%d files)", self.coursedir.course_id, lab, len(info["files"])
        )


class Collect(HubExchange, abc.ExchangeCollect):  # type: ignore[misc]
    def copy_files(self) -> None:
        lab = self.lab()
        limits = self.course_limits()
        subs = self.call("GET", f"collect/{lab}").json()
        wanted = self.coursedir.student_id
        newest: dict[str, dict[str, Any]] = {}
        for sub in subs:  # oldest first
            if wanted not in ("", "*") and sub["student"] != wanted:
                continue
            newest[sub["student"]] = sub
        if not newest:
            self.log.warning("No submissions of '%s' to collect", lab)
        failed: list[str] = []
        for student, sub in sorted(newest.items()):
            dest = Path(
                self.coursedir.format_path(self.coursedir.submitted_directory, student, lab)
            )
            try:
                self.collect_one(lab, student, sub, dest, limits)
            except (ArchiveError, ExchangeError, OSError) as error:
                failed.append(student)
                kept = self.kept_stamp(dest)
                where = (
                    f"{dest} keeps the hand-in collected before (handed in {kept})"
                    if kept
                    else f"Nothing was written to {dest}"
                )
                self.log.error(
                    "Could not collect %s's %s handed in at %s: %s. %s. Ask %s to fix what is "
                    "named (rename, move out or delete it) and submit again, then collect again; "
                    "the other students are collected.",
                    student,
                    lab,
                    sub["timestamp"],
                    error,
                    where,
                    student,
                )
        if failed:
            self.fail(
                f"{len(failed)} of {len(newest)} hand-in(s) of {lab} could not be collected: "
                f"{', '.join(failed)} (why is said above). Every other one was collected with "
                "its time stamp."
            )

    def kept_stamp(self, dest: Path) -> str | None:
        """The time stamp of what DEST holds now, as collect wrote it, if any."""
        stamp = dest / "timestamp.txt"
        return stamp.read_text().strip() or None if stamp.is_file() else None

    def collect_one(
        self, lab: str, student: str, sub: dict[str, Any], dest: Path, limits: Limits
    ) -> None:
        """Unpack one hand-in beside DEST with its timestamp.txt, then swap it in whole."""
        for pattern in (f".{lab}.collect-*", f".{lab}.old-*"):  # left by a killed collect
            for stale in dest.parent.glob(pattern):
                shutil.rmtree(stale, ignore_errors=True)
        if dest.is_dir():
            existing = self.coursedir.get_existing_timestamp(str(dest))
            if existing is None:
                self.log.warning(
                    "%s has no timestamp.txt (an interrupted collect?): collecting it again", dest
                )
            elif not self.update:
                self.log.info(
                    "Submission already exists, use --update to update: %s %s", student, lab
                )
                return
            elif parse_utc(sub["timestamp"]) <= existing:
                self.log.info("No newer submission to collect: %s %s", student, lab)
                return
        response = self.call(
            "GET", f"collect/{lab}/{student}", params={"timestamp": sub["timestamp"]}
        )
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.parent / f".{lab}.collect-{uuid.uuid4().hex[:12]}"
        try:
            unpack(response.content, tmp, limits)
            (tmp / "timestamp.txt").write_text(sub["timestamp"])
            swap_in(tmp, dest)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        self.log.info("Collected submission: %s %s %s", student, lab, sub["timestamp"])


def swap_in(new: Path, dest: Path) -> None:
    """Put the complete folder NEW at DEST; an older DEST is moved aside first, then removed."""
    old = None
    if dest.exists():
        old = dest.with_name(f".{dest.name}.old-{uuid.uuid4().hex[:12]}")
        os.rename(dest, old)
    os.rename(new, dest)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


class ReleaseFeedback(HubExchange, abc.ExchangeReleaseFeedback):  # type: ignore[misc]
    def copy_files(self) -> None:
        lab = self.lab()
        wanted = self.coursedir.student_id or "*"
        pattern = self.coursedir.format_path(self.coursedir.feedback_directory, wanted, lab)
        for folder in sorted(glob.glob(pattern)):
            path = Path(folder)
            student = path.parent.name
            stamp_file = path / "timestamp.txt"
            if not stamp_file.is_file():
                self.log.warning("No timestamp.txt in %s: generate feedback again", path)
                continue
            stamp = stamp_file.read_text().strip()
            blob = pack(path)
            self.call("POST", f"feedback/{lab}/{student}", data=blob, params={"timestamp": stamp})
            self.log.info("Released feedback: %s %s %s", student, lab, stamp)

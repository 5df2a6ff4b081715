"""nbgrader's exchange, spoken over HTTP to the course's exchange service with the caller's hub token.

nbgrader's assignment list (fetch, submit, feedback; here) and the staff's `nbgrader
release_assignment`, `collect` and `release_feedback` (exchange_staff.py) call these classes once
`configure(c)` is in an nbgrader config.
The caller is whoever owns `$JUPYTERHUB_API_TOKEN` (set by the hub in every user server); the
service asks the hub whose token it is. Names given here (`--student`) are only passed along so
that the service can refuse a mismatch loudly, instead of nbgrader's filing the work under them.

Archives follow the course's limits (`c.ExchangeService.*`, archive.Limits): `submit` leaves out
what the course leaves out (`CourseDirectory.ignore`, `max_file_size`, names no file system holds)
and says so, file by file; `collect` checks each hand-in before unpacking it into a temporary
folder beside its place, writes the time stamp there, and only then swaps it in, so a folder
without its `timestamp.txt` never exists, and one student's bad archive is reported and skipped
while everyone else is collected.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import Any

import requests
from nbgrader.exchange import abc
from nbgrader.exchange.abc.exchange import ExchangeError
from traitlets import Unicode, default
from traitlets.config import Config

from introdl.hub.archive import MIB, ArchiveError, Limits, pack_files, select, show, unpack

TIMEOUT = 60


def configure(c: Config, url: str | None = None) -> None:
    """Point nbgrader's exchange at the course's exchange service (call from nbgrader_config.py)."""
    for name in (
        "exchange",
        "fetch_assignment",
        "fetch_feedback",
        "release_assignment",
        "release_feedback",
        "list",
        "submit",
        "collect",
    ):
        setattr(c.ExchangeFactory, name, _CLASSES[name])
    if url:
        c.HubExchange.service_url = url


class HubExchange(abc.Exchange):  # type: ignore[misc]
    """Shared by every exchange command: the service's address and the caller's token."""

    service_url = Unicode(
        help="The exchange service's API root, e.g. http://127.0.0.1:10101/services/exchange/"
    ).tag(config=True)

    @default("service_url")
    def _default_url(self) -> str:
        return os.environ.get("INTRODL_EXCHANGE_URL", "http://127.0.0.1:10101/services/exchange/")

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        token = os.environ.get("JUPYTERHUB_API_TOKEN")
        if not token:
            self.fail(
                "no hub token ($JUPYTERHUB_API_TOKEN): run nbgrader from a terminal or notebook "
                "of your JupyterHub server, where the hub sets it"
            )
        url = self.service_url.rstrip("/") + "/api/" + path.lstrip("/")
        try:
            response = requests.request(
                method, url, headers={"Authorization": f"token {token}"}, timeout=TIMEOUT, **kwargs
            )
        except requests.RequestException as error:
            self.fail(f"the course exchange at {url} did not answer: {error}")
        if response.status_code >= 400:
            try:
                message = response.json().get("message") or response.reason
            except ValueError:
                message = response.text[:300] or response.reason
            self.fail(f"the course exchange refused: {message}")
        return response

    def init_src(self) -> None:
        pass

    def init_dest(self) -> None:
        pass

    def copy_files(self) -> None:
        pass

    def local_dir(self, lab: str) -> Path:
        course = self.coursedir.course_id
        if getattr(self, "path_includes_course", False):
            return Path(self.assignment_dir, course, lab)
        return Path(self.assignment_dir, lab)

    def fail(self, msg: str) -> None:  # nbgrader's own, typed as never returning normally
        self.log.fatal(msg)
        raise ExchangeError(msg)

    def lab(self) -> str:
        lab = str(self.coursedir.assignment_id or "")
        if not lab:
            self.fail("no assignment given: name the lab, e.g. lab1_tensorflow")
        return lab

    def course_limits(self) -> Limits:
        """The course's archive limits: `c.ExchangeService.*` of the nbgrader config in force."""
        section = self.config.get("ExchangeService", {})
        try:
            return Limits.from_config(dict(section))
        except ArchiveError as error:
            self.fail(f"the course's nbgrader config: {error}")
            raise


class FetchAssignment(HubExchange, abc.ExchangeFetchAssignment):  # type: ignore[misc]
    def copy_files(self) -> None:
        lab = self.lab()
        dest = self.local_dir(lab)
        blob = self.call("GET", f"assignments/{lab}").content
        if dest.exists() and not self.replace_missing_files:
            self.fail(
                f"you already have a copy of {lab} in {dest}: rename or remove it to fetch again"
            )
        if dest.exists():
            tmp = dest.with_name(f".{lab}.fetch")
            shutil.rmtree(tmp, ignore_errors=True)
            for path in unpack(blob, tmp, self.course_limits()):
                target = dest / path.relative_to(tmp)
                if not target.exists():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.move(path, target)
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            unpack(blob, dest, self.course_limits())
        self.log.info("Fetched as: %s %s", self.coursedir.course_id, lab)


class Submit(HubExchange, abc.ExchangeSubmit):  # type: ignore[misc]
    def copy_files(self) -> None:
        lab = self.lab()
        src = self.local_dir(lab)
        if not src.is_dir():
            self.fail(f"no folder {src} to submit: fetch {lab} first")
        blob = self.packed(src, lab)
        # Whoever the caller says they are goes along, so that a mismatch with the hub's name for
        # the token is refused loudly (nbgrader's own exchange would file the work under it).
        claimed = str(self.coursedir.student_id or "")
        if claimed in ("", "*"):
            claimed = os.environ.get("JUPYTERHUB_USER", "")
        params = {"student": claimed} if claimed else {}
        sub = self.call("POST", f"submissions/{lab}", data=blob, params=params).json()
        self.timestamp = sub["timestamp"]
        self.log.info(
            "Submitted as: %s %s %s (by the hub's name for your login: %s)",
            self.coursedir.course_id,
            lab,
            sub["timestamp"],
            sub["student"],
        )

    def service_limits(self) -> Limits:
        """The limits the exchange enforces (it says), else the course's config here."""
        token = os.environ.get("JUPYTERHUB_API_TOKEN", "")
        url = self.service_url.rstrip("/") + "/api/limits"
        try:  # quietly: an exchange older than `api/limits` answers 404
            answer = requests.get(url, headers={"Authorization": f"token {token}"}, timeout=TIMEOUT)
            if answer.status_code == 200:
                return Limits.from_config(answer.json())
        except (requests.RequestException, ArchiveError, ValueError):
            pass
        return self.course_limits()

    def packed(self, src: Path, lab: str) -> bytes:
        """The hand-in's archive; every file left out is named with the reason, in the log."""
        limits = self.service_limits()
        max_file = int(self.coursedir.max_file_size) * 1000  # nbgrader's kB
        chosen, left_out = select(
            src, ignore=tuple(self.coursedir.ignore), max_file_bytes=max_file, limits=limits
        )
        for name, why in left_out:
            self.log.warning("Left out of your submission: %s: %s", show(name), why)
        notebook = f"{lab}.ipynb"
        if any(name == notebook for name, _ in left_out):
            self.fail(
                f"your notebook {notebook} itself was left out (said above): fix that, then submit"
            )
        total = sum(path.stat().st_size for path in chosen)
        biggest = sorted(chosen, key=lambda p: p.stat().st_size, reverse=True)[:3]
        largest = ", ".join(
            f"{show(p.relative_to(src).as_posix())} ({p.stat().st_size / 1e6:.1f} MB)"
            for p in biggest
        )
        if total > limits.max_unpacked_bytes:
            self.fail(
                f"your files add up to {total / 1e6:.1f} MB; the course takes at most "
                f"{limits.max_unpacked_bytes // MIB} MiB per hand-in. Largest: {largest}. Move "
                "data and checkpoints out of the lab's folder, then submit again"
            )
        blob = pack_files(src, chosen)
        if len(blob) > limits.max_archive_bytes:
            self.fail(
                f"your hand-in packs to {len(blob) / 1e6:.1f} MB; the course takes at most "
                f"{limits.max_archive_bytes // MIB} MiB. Largest: {largest}. Move data and "
                "checkpoints out of the lab's folder, then submit again"
            )
        self.log.info("Submitting %d file(s), %.1f MB packed", len(chosen), len(blob) / 1e6)
        return blob


class FetchFeedback(HubExchange, abc.ExchangeFetchFeedback):  # type: ignore[misc]
    def copy_files(self) -> None:
        lab = self.lab()
        subs = self.call("GET", "submissions", params={"lab": lab}).json()
        with_feedback = [s for s in subs if s["has_feedback"]]
        if not with_feedback:
            self.log.warning("No feedback available for %s yet", lab)
        for sub in with_feedback:
            response = self.call("GET", f"feedback/{lab}", params={"timestamp": sub["timestamp"]})
            dest = self.local_dir(lab) / "feedback" / sub["timestamp"]
            unpack(response.content, dest, self.course_limits())
            self.log.info("Fetched feedback: %s %s", lab, sub["timestamp"])


def _checksum(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class List(HubExchange, abc.ExchangeList):  # type: ignore[misc]
    """What nbgrader's assignment list shows: releases, or (cached) the caller's own hand-ins."""

    def start(self) -> list[dict[str, Any]]:
        if self.inbound and self.cached:
            self.fail("Options --inbound and --cached are incompatible.")
        if self.remove:
            return self.remove_release()
        if self.cached:
            return self.list_submitted(self.call("GET", "submissions").json())
        if self.inbound:
            lab = self.coursedir.assignment_id or ""
            if not lab:
                self.fail("--inbound lists the hand-ins of one lab: name it")
            return self.list_submitted(self.call("GET", f"collect/{lab}").json())
        return self.list_released()

    def remove_release(self) -> list[dict[str, Any]]:
        lab = self.lab()
        self.call("DELETE", f"assignments/{lab}")
        return [{"course_id": self.coursedir.course_id, "assignment_id": lab, "status": "removed"}]

    def list_released(self) -> list[dict[str, Any]]:
        course = self.coursedir.course_id
        wanted = self.coursedir.assignment_id
        out = []
        for rel in self.call("GET", "assignments").json():
            lab = rel["assignment_id"]
            if wanted and lab != wanted:
                continue
            local = self.local_dir(lab)
            fetched = local.is_dir()
            notebooks = [f for f in rel["files"] if f.endswith(".ipynb") and "/" not in f]
            info = {
                "course_id": course,
                "assignment_id": lab,
                "status": "fetched" if fetched else "released",
                "path": str(local.resolve()) if fetched else lab,
                "notebooks": [
                    {
                        "notebook_id": nb[: -len(".ipynb")],
                        "path": str((local / nb).resolve()) if fetched else nb,
                    }
                    for nb in sorted(notebooks)
                ],
            }
            self.log.info("%s %s%s", course, lab, " (already downloaded)" if fetched else "")
            out.append(info)
        return out

    def list_submitted(self, subs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        course = self.coursedir.course_id
        groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for sub in subs:
            groups.setdefault((sub["student"], sub["lab"]), []).append(self.submission_info(sub))
        out = []
        for (student, lab), infos in sorted(groups.items()):
            for info in infos:
                self.log.info("%s %s %s %s", course, student, lab, info["timestamp"])
            out.append(
                {
                    "course_id": course,
                    "student_id": student,
                    "assignment_id": lab,
                    "status": "submitted",
                    "submissions": sorted(infos, key=lambda i: i["timestamp"]),
                }
            )
        return out

    def submission_info(self, sub: dict[str, Any]) -> dict[str, Any]:
        lab = sub["lab"]
        feedback_dir = self.local_dir(lab) / "feedback" / sub["timestamp"]
        notebooks = []
        for name in sorted(f for f in sub["files"] if f.endswith(".ipynb") and "/" not in f):
            nb_id = name[: -len(".ipynb")]
            local = feedback_dir / f"{nb_id}.html"
            has_local = local.is_file()
            notebooks.append(
                {
                    "notebook_id": nb_id,
                    "path": str(self.local_dir(lab) / name),
                    "has_local_feedback": has_local,
                    "has_exchange_feedback": bool(sub["has_feedback"]),
                    "local_feedback_path": str(local) if has_local else None,
                    "feedback_updated": False,
                }
            )
        has_local = bool(notebooks) and all(nb["has_local_feedback"] for nb in notebooks)
        return {
            "course_id": self.coursedir.course_id,
            "student_id": sub["student"],
            "assignment_id": lab,
            "timestamp": sub["timestamp"],
            "status": "submitted",
            "path": str(self.local_dir(lab)),
            "notebooks": notebooks,
            "has_local_feedback": has_local,
            "has_exchange_feedback": bool(sub["has_feedback"]),
            "feedback_updated": False,
            "local_feedback_path": str(feedback_dir) if has_local else None,
        }


STAFF = "introdl.hub.exchange_staff"
_CLASSES = {
    "exchange": f"{__name__}.HubExchange",
    "fetch_assignment": f"{__name__}.FetchAssignment",
    "fetch_feedback": f"{__name__}.FetchFeedback",
    "release_assignment": f"{STAFF}.ReleaseAssignment",
    "release_feedback": f"{STAFF}.ReleaseFeedback",
    "list": f"{__name__}.List",
    "submit": f"{__name__}.Submit",
    "collect": f"{STAFF}.Collect",
}

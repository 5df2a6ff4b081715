"""`introdl lms push LAB` and `introdl lms status LAB`: final scores to the LMS's line item.

A push reads the NRPS roster and every student's final score (finals.py), finds the line item
whose resourceId is the lab id (or creates it), and POSTs a score for each student whose score
changed since the LMS last accepted one; unchanged scores are not sent again. Each request's
outcome is recorded (records.py) as the LMS answers it. When the LMS stays unreachable or
overloaded after the retries (429, 5xx, no answer), the push stops there and lists the students
not tried: the next push sends them. `--dry-run` reads the roster and the line item and sends
nothing.
"""

from __future__ import annotations

import os
import pwd
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from introdl.grading.api import BadInput
from introdl.lms.ags import RETRIED, Client, LMSError, answer_of
from introdl.lms.finals import Final, lab_finals
from introdl.lms.keys import load_private_key
from introdl.lms.records import Push, Records
from introdl.lms.settings import load, state_dir

MEMBERSHIP = "http://purl.imsglobal.org/vocab/lis/v2/membership"


@dataclass(frozen=True)
class Sent:
    student: str
    lms_user_id: str
    score: float
    max_score: float


@dataclass(frozen=True)
class Failed:
    student: str
    lms_user_id: str
    score: float
    http_status: int | None
    answer: str


@dataclass(frozen=True)
class PushResult:
    lab: str
    dry_run: bool
    line_item: str
    max_score: float
    sent: tuple[Sent, ...]  # with --dry-run: what would be sent
    unchanged: tuple[str, ...]
    failed: tuple[Failed, ...]
    not_tried: tuple[str, ...]  # after the LMS stopped answering
    not_submitted: tuple[str, ...]
    no_lms_user_id: tuple[str, ...]
    not_in_lms: tuple[str, ...]  # gradebook students the LMS roster does not list
    not_in_gradebook: tuple[str, ...]  # LMS learners with no gradebook student
    records: str

    @property
    def exit_code(self) -> int:
        return 1 if self.failed or self.not_tried else 0

    def summary(self) -> str:
        verb = "would send" if self.dry_run else "sent"
        lines = [f"{self.lab} -> {self.line_item} (out of {self.max_score:g})"]
        lines += [f"  {verb}: {s.student} ({s.lms_user_id}) {s.score:g}" for s in self.sent]
        lines += [
            f"  FAILED: {f.student} ({f.lms_user_id}) {f.score:g}: {f.answer}" for f in self.failed
        ]
        for label, names in (
            ("unchanged since the last push, not sent", self.unchanged),
            ("not tried (the LMS stopped answering; push again)", self.not_tried),
            ("no submission, nothing sent", self.not_submitted),
            ("no lms_user_id in the gradebook", self.no_lms_user_id),
            ("in the gradebook but not in the LMS course", self.not_in_lms),
            ("in the LMS course but not in the gradebook", self.not_in_gradebook),
        ):
            if names:
                lines.append(f"  {label}: {', '.join(names)}")
        total = (
            f"{len(self.sent)} {verb}, {len(self.unchanged)} unchanged, {len(self.failed)} failed"
        )
        lines.append(f"{total}; records: {self.records}")
        return "\n".join(lines)


def who_runs() -> str:
    """The Unix user running the push, from the process's uid (not $USER, which anyone sets);
    sudo's SUDO_USER is added as a hint when running as root."""
    try:
        user = pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        user = f"uid {os.geteuid()}"
    sudo = os.environ.get("SUDO_USER")
    return f"{user} (sudo by {sudo})" if os.geteuid() == 0 and sudo and sudo != user else user


def is_learner(member: dict[str, Any]) -> bool:
    """An active member with a Learner role (full URI or short name, as NRPS allows both)."""
    roles = member.get("roles")
    active = member.get("status", "Active") == "Active"
    return (
        active
        and isinstance(roles, list)
        and any(
            r == "Learner" or (str(r).startswith(MEMBERSHIP) and str(r).endswith("#Learner"))
            for r in roles
        )
    )


def push(course: Path, lab: str, *, dry_run: bool = False) -> PushResult:
    settings = load(course)
    finals = lab_finals(course, lab)
    key = load_private_key(settings.private_key_file)
    records = Records.beside(settings.state)
    client = Client(settings, key)
    try:
        try:
            learners = {
                str(m["user_id"]): m for m in client.members() if is_learner(m) and m.get("user_id")
            }
            item = client.find_line_item(lab)
            if item is None and not dry_run:
                item = client.create_line_item(lab, lab, finals.max_score)
        except LMSError as err:
            raise BadInput(f"{err}; nothing was sent") from err
        line_item = str(item["id"]) if item else "(a new line item, created on the first push)"
        last = records.last_sent(lab)
        to_send: list[Final] = []
        unchanged, not_submitted, no_id, not_in_lms = [], [], [], []
        for final in finals.students:
            if not final.lms_user_id:
                no_id.append(final.student)
            elif final.lms_user_id not in learners:
                not_in_lms.append(f"{final.student} ({final.lms_user_id})")
            elif not final.submitted:
                not_submitted.append(final.student)
            elif _same(last.get(final.student), final, finals.max_score, line_item):
                unchanged.append(final.student)
            else:
                to_send.append(final)
        known = {f.lms_user_id for f in finals.students}
        strangers = [_name(uid, m) for uid, m in sorted(learners.items()) if uid not in known]
        sent, failed, not_tried = _send(
            client, records, to_send, lab, line_item, finals.max_score, dry_run
        )
    finally:
        records.close()
        client.session.close()
    return PushResult(
        lab=lab,
        dry_run=dry_run,
        line_item=line_item,
        max_score=finals.max_score,
        sent=tuple(sent),
        unchanged=tuple(unchanged),
        failed=tuple(failed),
        not_tried=tuple(not_tried),
        not_submitted=tuple(not_submitted),
        no_lms_user_id=tuple(no_id),
        not_in_lms=tuple(not_in_lms),
        not_in_gradebook=tuple(strangers),
        records=str(records.path),
    )


def _send(
    client: Client,
    records: Records,
    finals: list[Final],
    lab: str,
    line_item: str,
    max_score: float,
    dry_run: bool,
) -> tuple[list[Sent], list[Failed], list[str]]:
    sent: list[Sent] = []
    failed: list[Failed] = []
    who = who_runs()
    for index, final in enumerate(finals):
        if dry_run:
            sent.append(Sent(final.student, final.lms_user_id, final.score, max_score))
            continue
        try:
            resp = client.post_score(
                line_item, final.lms_user_id, final.score, max_score, datetime.now(UTC)
            )
            status: int | None = resp.status_code
            answer = answer_of(resp)
        except LMSError as err:
            status, answer = err.status, str(err)
        ok = status is not None and 200 <= status < 300
        records.record(
            who=who,
            lab=lab,
            student=final.student,
            lms_user_id=final.lms_user_id,
            line_item=line_item,
            score=final.score,
            max_score=max_score,
            outcome="sent" if ok else "failed",
            http_status=status,
            answer=answer,
        )
        if ok:
            sent.append(Sent(final.student, final.lms_user_id, final.score, max_score))
            continue
        failed.append(Failed(final.student, final.lms_user_id, final.score, status, answer))
        if status is None or status in RETRIED or status == 401:
            # The LMS is down, overloaded or refusing the tool: the rest would fail the same way.
            return sent, failed, [f.student for f in finals[index + 1 :]]
    return sent, failed, []


def _same(last: Push | None, final: Final, max_score: float, line_item: str) -> bool:
    return (
        last is not None
        and last.line_item == line_item
        and last.lms_user_id == final.lms_user_id
        and abs(last.score - final.score) < 1e-9
        and abs(last.max_score - max_score) < 1e-9
    )


def _name(user_id: str, member: dict[str, Any]) -> str:
    name = member.get("name") or member.get("email") or ""
    return f"{user_id} ({name})" if name else user_id


@dataclass(frozen=True)
class StatusRow:
    student: str
    lms_user_id: str
    score: float
    outcome: str
    at: str
    who: str
    http_status: int | None
    answer: str
    gradebook_now: float | None  # the final score today; differs: the next push sends it


@dataclass(frozen=True)
class StatusResult:
    lab: str
    records: str
    pushes: int
    latest: tuple[StatusRow, ...]

    def summary(self) -> str:
        lines = [f"{self.lab}: {self.pushes} recorded pushes in {self.records}"]
        for r in self.latest:
            pending = (
                ""
                if r.gradebook_now is None or abs(r.gradebook_now - r.score) < 1e-9
                else (f"  (gradebook now {r.gradebook_now:g}: the next push sends it)")
            )
            lines.append(
                f"  {r.student} ({r.lms_user_id}): {r.score:g} {r.outcome} {r.at} by {r.who}"
                f" [{r.http_status}]{'' if r.outcome == 'sent' else ' ' + r.answer}{pending}"
            )
        return "\n".join(lines)


def status(course: Path, lab: str) -> StatusResult:
    """The newest recorded push of LAB per student, beside the gradebook's final score today."""
    path = state_dir(course)
    records = Records.beside(path)
    try:
        history = records.history(lab)
    finally:
        records.close()
    try:
        now = {f.student: f.score for f in lab_finals(course, lab).students if f.submitted}
    except BadInput:
        now = {}
    latest = {p.student: p for p in history}
    rows = tuple(
        StatusRow(
            student=p.student,
            lms_user_id=p.lms_user_id,
            score=p.score,
            outcome=p.outcome,
            at=datetime.fromtimestamp(p.at, UTC).isoformat(timespec="seconds"),
            who=p.who,
            http_status=p.http_status,
            answer=p.answer,
            gradebook_now=now.get(p.student),
        )
        for p in sorted(latest.values(), key=lambda p: p.student)
    )
    return StatusResult(lab=lab, records=str(records.path), pushes=len(history), latest=rows)

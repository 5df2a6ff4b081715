"""Regrade requests: filed by a student after feedback, answered by staff, with an audit trail.

States: open -> answered -> closed. A student files one request per item (a hidden test or a
hand-graded cell of their own graded lab, regrade_items.py) with a reason, inside the course's
window after their feedback was released (regrade_settings.py, regrade_feedback.py). Staff answer
an open request with a comment, keeping or changing the score (it lands in nbgrader's gradebook),
or by re-running the autograder on the student's submission with the current hidden tests (the
old and new scores are kept). The student accepts an answer (closed) or escalates it to the
instructor (open again, escalated; only instructors answer or close escalated requests). When the
window ends, answered requests close. Every change is one `StaffStore.change`, with its audit line.

The desk takes the student's name from its caller (the hub's identity, in the handlers) and never
from a request's fields.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from introdl.grading.api import GradeOptions, give_back, grade_submission, land, submission_at
from introdl.staff.regrade_feedback import FeedbackReleases
from introdl.staff.regrade_items import (
    Item,
    clear_manual,
    items_of,
    read_results,
    set_score,
    test_items,
)
from introdl.staff.regrade_settings import Window
from introdl.staff.store import StaffStore

RERUN_SLOT = 300  # the sandbox slot a rerun prefers (claimed machine-wide; checks use 100+)
PAST = {"accept": "accepted", "escalate": "escalated", "close": "closed"}


class RegradeError(Exception):
    """A request the desk will not carry out; `status` is the HTTP answer, the message says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Request:
    id: int
    student: str
    lab: str
    item: str
    kind: str
    reason: str
    state: str
    escalated: bool
    filed_at: float
    answered_by: str | None
    answered_at: float | None
    answer: str | None
    old_score: float | None
    new_score: float | None

    @classmethod
    def of(cls, row: Any) -> Request:
        return cls(
            **{k: row[k] for k in cls.__dataclass_fields__ if k != "escalated"},
            escalated=bool(row["escalated"]),
        )


class RegradeDesk:
    """The course's regrade requests (the check service holds one)."""

    def __init__(
        self,
        store: StaffStore,
        course: Path,
        window: Window,
        releases: FeedbackReleases,
        *,
        options: GradeOptions | None = None,
    ) -> None:
        self.store, self.course, self.window, self.releases = store, course, window, releases
        self.options = options or GradeOptions()

    # --- reading ---------------------------------------------------------------------------
    def get(self, request_id: int) -> Request | None:
        rows = self.store.read("SELECT * FROM regrades WHERE id = ?", (request_id,))
        return Request.of(rows[0]) if rows else None

    def mine(self, student: str) -> list[Request]:
        rows = self.store.read(
            "SELECT * FROM regrades WHERE student = ? ORDER BY filed_at DESC, id DESC", (student,)
        )
        return [Request.of(r) for r in rows]

    def queue(self) -> list[Request]:
        """Open first (oldest first), then answered, then closed (newest first)."""
        rows = self.store.read(
            "SELECT * FROM regrades ORDER BY CASE state WHEN 'open' THEN 0 "
            "WHEN 'answered' THEN 1 ELSE 2 END, "
            "CASE state WHEN 'closed' THEN -filed_at ELSE filed_at END, id"
        )
        return [Request.of(r) for r in rows]

    def window_of(self, student: str, lab: str) -> tuple[float, float] | None:
        """(opens, closes) of STUDENT's window for LAB; None before their feedback is released."""
        released = self.releases.released_at(student, lab)
        if released is None:
            return None
        return self.window.opens(released), self.window.closes(released)

    def items(self, student: str, lab: str) -> dict[str, Item]:
        return items_of(self.course, student, lab)

    # --- the student's side ----------------------------------------------------------------
    def file(
        self, student: str, lab: str, key: str, reason: str, *, now: float | None = None
    ) -> Request:
        """STUDENT asks for ITEM of LAB to be regraded, for REASON."""
        now = time.time() if now is None else now
        window = self.window_of(student, lab)
        if window is None:
            raise RegradeError(403, f"your feedback for {lab} has not been released yet")
        opens, closes = window
        if now < opens:
            raise RegradeError(403, f"regrade requests for {lab} open at {stamp(opens)}")
        if now >= closes:
            raise RegradeError(403, f"regrade requests for {lab} closed at {stamp(closes)}")
        reason = reason.strip()
        if not reason:
            raise RegradeError(400, "say why the item should be regraded (the reason is empty)")
        if len(reason) > self.window.max_reason_chars:
            raise RegradeError(
                400,
                f"the reason is {len(reason)} characters long; the course allows "
                f"{self.window.max_reason_chars}: shorten it",
            )
        item = self.items(student, lab).get(key)
        if item is None:
            raise RegradeError(404, f"{lab} has no graded item {key[:200]!r} in your results")
        if self.store.read(
            "SELECT id FROM regrades WHERE student = ? AND lab = ? AND item = ?",
            (student, lab, key),
        ):
            raise RegradeError(409, f"you have already asked for {key!r} of {lab} to be regraded")
        detail: dict[str, Any] = {"item": key, "kind": item.kind, "reason": reason}
        with self.store.change(
            who=student, action="regrade.file", student=student, lab=lab, request=detail
        ) as db:
            cursor = db.execute(
                "INSERT INTO regrades (student, lab, item, kind, reason, filed_at, old_score) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (student, lab, key, item.kind, reason, now, item.score),
            )
            detail["id"] = cursor.lastrowid
        return self._req(int(cursor.lastrowid or 0))

    def accept(self, request_id: int, student: str, *, now: float | None = None) -> Request:
        """The student accepts the answer: closed."""
        req = self._owned(request_id, student)
        return self._move(req, student, "accept", frm=("answered",), to="closed")

    def escalate(
        self, request_id: int, who: str, *, by_student: bool, now: float | None = None
    ) -> Request:
        """To the instructor: a student escalates an answer (open again); staff, an open one."""
        now = time.time() if now is None else now
        req = self._owned(request_id, who) if by_student else self._req(request_id)
        if req.escalated:
            raise RegradeError(409, f"request {req.id} is already with the instructor")
        if by_student:
            window = self.window_of(req.student, req.lab)
            if window is None or now >= window[1]:
                raise RegradeError(403, f"regrade requests for {req.lab} are closed")
        frm = ("answered",) if by_student else ("open", "answered")
        return self._move(req, who, "escalate", frm=frm, to="open", escalate=True)

    # --- the staff's side ------------------------------------------------------------------
    def answer(
        self, request_id: int, who: str, *, instructor: bool, comment: str, score: float | None
    ) -> Request:
        """Answer an open request: the score kept (SCORE None) or changed (in the gradebook)."""
        req = self._answerable(request_id, instructor)
        comment = comment.strip()
        if not comment:
            raise RegradeError(400, "write a comment for the student")
        detail: dict[str, Any] = {"id": req.id, "item": req.item, "comment": comment}
        old = req.new_score if req.new_score is not None else req.old_score
        new = old
        if score is not None:
            item = self.items(req.student, req.lab).get(req.item)
            if item is None:
                raise RegradeError(409, f"{req.item!r} is no longer in {req.student}'s results")
            if not 0 <= score <= item.max_score:
                raise RegradeError(400, f"the score must be between 0 and {item.max_score:g}")
            cell = set_score(self.course, req.student, req.lab, item, old or 0.0, score)
            detail["cell_score"] = {"grade_id": item.grade_id, "old": cell[0], "new": cell[1]}
            new = score
        detail.update(old_score=old, new_score=new)
        return self._answered(req, who, "answer", comment, old, new, detail)

    def rerun(self, request_id: int, who: str, *, instructor: bool, comment: str = "") -> Request:
        """Answer by grading the student's submission again with the current hidden tests (in
        the sandbox, as batch grading does) and landing it; slow: call it off the event loop."""
        req = self._answerable(request_id, instructor)
        folder = self.course / "submitted" / req.student / req.lab
        if not folder.is_dir():
            raise RegradeError(409, f"no submission of {req.lab} by {req.student} at {folder}")
        before = read_results(self.course, req.student, req.lab)
        sub = submission_at(folder, req.lab, req.student)
        graded = grade_submission(self.course, sub, self.options, slot=RERUN_SLOT)
        land(self.course, sub, graded)
        give_back(self.course, self.course / "autograded" / req.student / req.lab)
        after = {i.key: i for i in test_items(graded.results)}
        cleared = None
        if req.kind == "test" and req.item in after:  # the new automatic score counts
            cleared = clear_manual(self.course, req.student, req.lab, after[req.item].grade_id)
        after.update((i.key, i) for i in self.items(req.student, req.lab).values())
        old = req.new_score if req.new_score is not None else req.old_score
        new = after[req.item].score if req.item in after else None
        detail: dict[str, Any] = {
            "id": req.id,
            "item": req.item,
            "old_score": old,
            "new_score": new,
            "old_total": before.score if before else None,
            "new_total": graded.results.score,
            "seed": graded.results.seed,
            "errors": list(graded.results.errors),
            "cleared_manual_score": cleared,
        }
        words = (
            f"Re-ran the autograder with the current hidden tests: {req.item} scores "
            + (f"{new:g}" if new is not None else "nothing (the test is gone)")
            + (f" (was {old:g})" if old is not None else "")
            + f"; the lab scores {graded.results.score:g} / {graded.results.max_score:g}."
        )
        text = f"{words} {comment.strip()}".strip()
        detail["comment"] = text
        return self._answered(self._req(req.id), who, "rerun", text, old, new, detail)

    def close(self, request_id: int, who: str, *, instructor: bool, comment: str = "") -> Request:
        req = self._req(request_id)
        if req.escalated and not instructor:
            raise RegradeError(403, f"request {req.id} is escalated: only the instructor closes it")
        return self._move(
            req, who, "close", frm=("open", "answered"), to="closed", comment=comment.strip()
        )

    def sweep(self, now: float | None = None) -> int:
        """Close the answered requests whose window has ended; how many were closed."""
        now = time.time() if now is None else now
        done = 0
        for req in [r for r in self.queue() if r.state == "answered"]:
            window = self.window_of(req.student, req.lab)
            if window is not None and now >= window[1]:
                self._move(req, "window", "close", frm=("answered",), to="closed")
                done += 1
        return done

    # --- helpers ---------------------------------------------------------------------------
    def _req(self, request_id: int) -> Request:
        req = self.get(request_id)
        if req is None:
            raise RegradeError(404, f"there is no regrade request {request_id}")
        return req

    def _owned(self, request_id: int, student: str) -> Request:
        req = self.get(request_id)
        if req is None or req.student != student:
            raise RegradeError(404, f"you have no regrade request {request_id}")
        return req

    def _answerable(self, request_id: int, instructor: bool) -> Request:
        req = self._req(request_id)
        if req.state != "open":
            raise RegradeError(409, f"request {req.id} is {req.state}, not open")
        if req.escalated and not instructor:
            raise RegradeError(
                403, f"request {req.id} is escalated: only the instructor answers it"
            )
        return req

    def _answered(
        self,
        req: Request,
        who: str,
        verb: str,
        text: str,
        old: float | None,
        new: float | None,
        detail: dict[str, Any],
    ) -> Request:
        with self.store.change(
            who=who, action=f"regrade.{verb}", student=req.student, lab=req.lab, **detail
        ) as db:
            moved = db.execute(
                "UPDATE regrades SET state = 'answered', answered_by = ?, answered_at = ?, "
                "answer = ?, old_score = ?, new_score = ? WHERE id = ? AND state = 'open'",
                (who, time.time(), text, old, new, req.id),
            ).rowcount
            if not moved:
                raise RegradeError(409, f"request {req.id} was answered or closed meanwhile")
        return self._req(req.id)

    def _move(
        self,
        req: Request,
        who: str,
        verb: str,
        *,
        frm: tuple[str, ...],
        to: str,
        escalate: bool = False,
        comment: str = "",
    ) -> Request:
        if req.state not in frm:
            raise RegradeError(
                409, f"request {req.id} is {req.state}: it cannot be {PAST[verb]} now"
            )
        detail: dict[str, Any] = {"id": req.id, "item": req.item, "from": req.state, "to": to}
        if comment:
            detail["comment"] = comment
        with self.store.change(
            who=who, action=f"regrade.{verb}", student=req.student, lab=req.lab, **detail
        ) as db:
            moved = db.execute(
                "UPDATE regrades SET state = ?, escalated = MAX(escalated, ?) "
                "WHERE id = ? AND state = ?",
                (to, int(escalate), req.id, req.state),
            ).rowcount
            if not moved:
                raise RegradeError(409, f"request {req.id} changed meanwhile; reload the page")
        return self._req(req.id)


def stamp(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(t))

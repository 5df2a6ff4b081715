"""The staff records' SQLite file: migrations, restarts, and an audit line for every change."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

import pytest

from introdl.grading.errors import BadInput
from introdl.staff import store as store_module
from introdl.staff.store import MIGRATIONS, StaffStore


def test_a_new_file_is_private_and_at_the_newest_schema(tmp_path: Path) -> None:
    """Is a fresh store created mode 0600 with every migration applied?"""
    store = StaffStore.beside(tmp_path / "state")
    assert store.version == len(MIGRATIONS)
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    tables = {r[0] for r in store.read("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"extensions", "regrades", "audit"} <= tables


def test_a_change_and_its_audit_line_land_together_and_survive_a_restart(tmp_path: Path) -> None:
    """Does a restart keep a change and its audit line, and does a failed change leave neither?"""
    store = StaffStore.beside(tmp_path)
    with store.change(who="ta1", action="extension.grant", student="s1", lab="lab1", days=3) as db:
        db.execute(
            "INSERT INTO extensions (student, lab, until, granted_by, granted_at) "
            "VALUES ('s1', 'lab1', '2026-12-20T17:00:00+00:00', 'ta1', 0)"
        )
    # The same key twice: the whole change is undone, audit line included.
    with (
        pytest.raises(sqlite3.IntegrityError),
        store.change(who="ta2", action="extension.grant", student="s1", lab="lab1") as db,
    ):
        db.execute(
            "INSERT INTO extensions (student, lab, until, granted_by, granted_at) "
            "VALUES ('s1', 'lab1', 'x', 'ta2', 0)"
        )
    store.close()
    again = StaffStore.beside(tmp_path)
    assert [r["granted_by"] for r in again.read("SELECT * FROM extensions")] == ["ta1"]
    trail = again.audit_trail(student="s1")
    assert [(a.who, a.action, a.detail) for a in trail] == [("ta1", "extension.grant", {"days": 3})]


def test_an_old_file_is_migrated_and_a_newer_one_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Is a file of an older schema brought up to date (keeping rows), and a newer one refused?"""
    path = tmp_path / "staff.sqlite"
    monkeypatch.setattr(store_module, "MIGRATIONS", MIGRATIONS[:1])
    old = StaffStore(path)
    with old.change(who="ta", action="note", student="s1"):
        pass
    old.close()
    later = (*MIGRATIONS, "ALTER TABLE audit ADD COLUMN via TEXT NOT NULL DEFAULT 'page';")
    monkeypatch.setattr(store_module, "MIGRATIONS", later)
    new = StaffStore(path)
    assert new.version == len(later)
    assert [r["via"] for r in new.read("SELECT via FROM audit")] == ["page"]
    new.close()
    monkeypatch.setattr(store_module, "MIGRATIONS", MIGRATIONS[:1])
    with pytest.raises(BadInput, match="newer introdl"):
        StaffStore(path)

"""Archives through the course exchange: every hostile shape is refused, by name, before a byte
is written; a legal archive goes through; a student's quota and hand-in rate hold.

Issue 21 case 3: a name over 255 bytes stopped `nbgrader collect` at one student and left a
folder without `timestamp.txt`; a 7 MB upload unpacked to 1.5 GiB. The end-to-end cases, through
the real hub, exchange service and `nbgrader collect`, are in tests/test_hub_archives.py.
"""

from __future__ import annotations

import io
import os
import tarfile
import time
from pathlib import Path

import pytest

from introdl.hub.archive import (
    MIB,
    ArchiveError,
    Limits,
    check,
    pack_files,
    select,
    unpack,
)
from introdl.hub.exchange_store import ExchangeStore, OverLimit

SMALL = Limits(max_unpacked_bytes=4 * MIB, max_files=50, max_depth=6, max_path_bytes=200)


class Zeros(io.RawIOBase):
    """N zero bytes, streamed: a bomb's content without holding it in memory."""

    def __init__(self, n: int) -> None:
        self.n = n

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        k = min(len(buffer), self.n)
        buffer[:k] = bytes(k)
        self.n -= k
        return k


def tgz(*members: tarfile.TarInfo | tuple[str, bytes], level: int = 9) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=level) as tar:
        for member in members:
            if isinstance(member, tarfile.TarInfo):
                tar.addfile(member, Zeros(member.size) if member.isfile() else None)
            else:
                info = tarfile.TarInfo(member[0])
                info.size = len(member[1])
                tar.addfile(info, io.BytesIO(member[1]))
    return buffer.getvalue()


def info(name: str, size: int = 0, kind: bytes = tarfile.REGTYPE) -> tarfile.TarInfo:
    member = tarfile.TarInfo(name)
    member.size, member.type = size, kind
    if kind == tarfile.SYMTYPE:
        member.linkname = "/etc/passwd"
    return member


NOTEBOOK = ("lab1_tensorflow.ipynb", b'{"cells": []}')
HOSTILE = {
    "a name part over 255 bytes": (tgz(NOTEBOOK, ("a" * 300 + ".txt", b"x")), "304 bytes long"),
    "a whole name over the bound": (
        tgz(NOTEBOOK, ("/".join(["abcdefghij"] * 5) + "/" + "x" * 200, b"x")),
        "the limit is 200 bytes",
    ),
    "a deep tree": (tgz(NOTEBOOK, ("/".join("d" * 10) + "/leaf", b"x")), "the limit is 6"),
    "too many files": (tgz(*[(f"f{i}", b"") for i in range(60)]), "more than 50 files"),
    "a bomb by size": (tgz(NOTEBOOK, info("weights.h5", 64 * MIB), level=1), "more than 4 MiB"),
    "a link": (tgz(NOTEBOOK, info("passwd", kind=tarfile.SYMTYPE)), "not a plain file"),
    "a device": (tgz(info("tty", kind=tarfile.CHRTYPE)), "not a plain file"),
    "a name outside the folder": (tgz(("../../etc/cron.d/x", b"x")), "outside the folder"),
    "an absolute name": (tgz(("/etc/cron.d/x", b"x")), "outside the folder"),
    "a terminal escape in a name": (tgz(("a\x1b]0;pwned\x07.txt", b"x")), "control character"),
    "a file that is also a folder": (tgz(("a", b"x"), ("a/b", b"y")), "both as a file and"),
    "not an archive at all": (b"\x1f\x8b not really gzip", "not a gzip'd tar archive"),
}


@pytest.mark.parametrize("shape", list(HOSTILE))
def test_a_hostile_archive_is_refused_by_name_before_anything_is_written(
    shape: str, tmp_path: Path
) -> None:
    """Does each hostile shape get refused with the limit it breaks, leaving no file behind?"""
    blob, said = HOSTILE[shape]
    with pytest.raises(ArchiveError, match=said.replace("(", r"\(")):
        check(blob, SMALL)
    dest = tmp_path / "dest"
    with pytest.raises(ArchiveError):
        unpack(blob, dest, SMALL)
    assert not dest.exists(), f"{shape}: unpack wrote {list(dest.rglob('*'))}"


def test_the_refusal_names_the_file_it_refuses() -> None:
    """Does the message name the offending file (cut short and escaped, fit for a log line)?"""
    with pytest.raises(ArchiveError) as refused:
        check(tgz(NOTEBOOK, ("model_" + "b" * 290 + ".h5", b"x")), SMALL)
    message = str(refused.value)
    assert "'model_bbbb" in message
    assert "bbb.h5' (299 bytes)" in message
    assert "255 bytes" in message
    with pytest.raises(ArchiveError) as escaped:
        check(tgz(("a\x1b[2Jb", b"x")), SMALL)
    assert "\x1b" not in str(escaped.value)
    assert "a\\x1b[2Jb" in str(escaped.value)


def test_a_legal_archive_goes_through_whole(tmp_path: Path) -> None:
    """Does an ordinary hand-in (notebook, a folder, a 2 MB weights file) pass and unpack?"""
    weights = os.urandom(2 * MIB)
    blob = tgz(NOTEBOOK, ("models/small.weights.h5", weights), ("notes/é.md", "ü".encode()))
    assert check(blob, SMALL) == ["lab1_tensorflow.ipynb", "models/small.weights.h5", "notes/é.md"]
    unpack(blob, tmp_path / "dest", SMALL)
    assert (tmp_path / "dest" / "models" / "small.weights.h5").read_bytes() == weights


def test_a_bomb_costs_the_bound_not_what_it_unpacks_to() -> None:
    """Is a 1.5 GiB bomb, 7 MB packed (the issue's), refused at once, without unpacking it?"""
    blob = tgz(NOTEBOOK, info("model.weights.h5", 1536 * MIB), level=1)
    assert len(blob) < 8 * MIB
    started = time.monotonic()
    with pytest.raises(ArchiveError, match="more than 500 MiB"):
        check(blob, Limits())
    assert time.monotonic() - started < 0.5


def test_a_bomb_under_the_size_bound_is_refused_by_its_ratio() -> None:
    """Is 20 MiB of zeros packed into a few kB refused as a bomb, though under 500 MiB?"""
    blob = tgz(NOTEBOOK, info("zeros.bin", 20 * MIB))
    with pytest.raises(ArchiveError, match="times its size"):
        check(blob, Limits())


def test_a_huge_metadata_header_is_refused_before_tarfile_reads_it() -> None:
    """Can a 200 MiB pax header (which tarfile would read into memory whole) cost the service?"""
    member = tarfile.TarInfo("x")
    member.pax_headers = {"comment": "z" * (200 * MIB)}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(member, io.BytesIO(b""))
    started = time.monotonic()
    with pytest.raises(ArchiveError, match="attribute header of"):
        check(buffer.getvalue(), Limits())
    assert time.monotonic() - started < 0.5


def test_the_course_limits_come_from_its_config_section() -> None:
    """Does c.ExchangeService set the bounds, and is a misspelt key refused rather than ignored?"""
    limits = Limits.from_config({"max_upload_mb": 50, "max_depth": 3, "max_name_bytes": 999})
    assert limits.max_archive_bytes == 50 * MIB
    assert limits.max_depth == 3
    assert limits.max_name_bytes == 255  # no file system holds more
    assert Limits.from_config(limits.to_config()) == limits
    with pytest.raises(ArchiveError, match="max_uplod_mb is not an exchange limit"):
        Limits.from_config({"max_uplod_mb": 50})


def test_submit_names_each_file_it_leaves_out_and_why(tmp_path: Path) -> None:
    """Does the student's packing say which files are left out (ignored, too big, a link)?"""
    lab = tmp_path / "lab1_tensorflow"
    (lab / "data").mkdir(parents=True)
    (lab / "lab1_tensorflow.ipynb").write_text("{}")
    (lab / "data" / "mnist.npz").write_bytes(b"x" * 10)
    (lab / "big.weights.h5").write_bytes(b"x" * 3000)
    (lab / "link").symlink_to("/etc/passwd")
    (lab / "timestamp.txt").write_text("2020-01-01 00:00:00.000000 UTC")
    chosen, left_out = select(lab, ignore=("data",), max_file_bytes=2000)
    assert [p.name for p in chosen] == ["lab1_tensorflow.ipynb"]
    why = dict(left_out)
    assert set(why) == {"data", "big.weights.h5", "link"}
    assert "ignore list" in why["data"]
    assert "0.0 MB; the course takes files up to 0.0 MB" in why["big.weights.h5"]
    assert "symbolic link" in why["link"]
    assert check(pack_files(lab, chosen)) == ["lab1_tensorflow.ipynb"]


def test_a_students_hand_in_rate_and_quota_hold(tmp_path: Path) -> None:
    """Past the hand-ins per hour, or the bytes stored per student, is a hand-in refused in words?"""
    store = ExchangeStore(tmp_path / "exchange")
    store.release("lab1_tensorflow", tgz(NOTEBOOK), ["lab1_tensorflow.ipynb"], "teacher")
    blob = tgz(NOTEBOOK)
    rate = Limits(submissions_per_hour=3)
    for _ in range(3):
        store.submit("ada", "lab1_tensorflow", blob, [], rate)
    with pytest.raises(OverLimit, match="3 times in the last hour") as refused:
        store.submit("ada", "lab1_tensorflow", blob, [], rate)
    assert refused.value.status == 429
    store.submit("ben", "lab1_tensorflow", blob, [], rate)  # another student is not held back
    quota = Limits(quota_bytes=len(blob) * 5)
    for _ in range(2):
        store.submit("ben", "lab1_tensorflow", blob, [], quota)
    with pytest.raises(OverLimit, match="quota per student") as over:
        store.submit("ben", "lab1_tensorflow", tgz(NOTEBOOK, ("x", os.urandom(4096))), [], quota)
    assert over.value.status == 413
    assert len(store.submissions(student="ada")) == 3
    assert not list((tmp_path / "exchange" / "incoming").iterdir()), "a refused upload stayed"

"""Pairs of documents ranked by the fraction of fingerprints they share.

A pair's score is the shared fingerprints over the smaller of the two sets (the part of the smaller
submission found in the other), with a floor of MIN_FINGERPRINTS so that a few common lines in a
nearly empty submission cannot score high. Students are compared with each other; a reference
corpus file is compared with each student only (one way: the share of the student's code found
in it), never with another corpus file.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations

from introdl.similarity.fingerprint import Fingerprints

MIN_FINGERPRINTS = 10


@dataclass(frozen=True)
class Pair:
    kind: str  # "students" or "corpus"
    a: str  # a student
    b: str  # another student, or a corpus file
    score: float  # 0..1, rounded to 4 places
    shared: int
    fingerprints_a: int
    fingerprints_b: int


def _score(shared: int, a: int, b: int | None) -> float:
    base = a if b is None else min(a, b)
    return round(shared / max(base, MIN_FINGERPRINTS), 4)


def rank(pairs: list[Pair]) -> list[Pair]:
    return sorted(pairs, key=lambda p: (-p.score, -p.shared, p.kind, p.a, p.b))


def compare(students: Sequence[Fingerprints], corpus: Sequence[Fingerprints] = ()) -> list[Pair]:
    """Every pair with a shared fingerprint, best first (ties by names: the order is stable)."""
    index: dict[int, list[int]] = {}
    for i, fp in enumerate(students):
        for h in fp.selected:
            index.setdefault(h, []).append(i)
    shared: Counter[tuple[int, int]] = Counter()
    for holders in index.values():
        if len(holders) > 1:
            shared.update(combinations(holders, 2))
    pairs = []
    for (i, j), n in shared.items():
        a, b = sorted((students[i], students[j]), key=lambda f: f.document.name)
        pairs.append(
            Pair(
                "students",
                a.document.name,
                b.document.name,
                _score(n, len(a.selected), len(b.selected)),
                n,
                len(a.selected),
                len(b.selected),
            )
        )
    for ref in corpus:
        for student in students:
            n = len(student.selected & ref.selected)
            if n:
                pairs.append(
                    Pair(
                        "corpus",
                        student.document.name,
                        ref.document.name,
                        _score(n, len(student.selected), None),
                        n,
                        len(student.selected),
                        len(ref.selected),
                    )
                )
    return rank(pairs)

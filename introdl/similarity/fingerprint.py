"""Winnowing (Schleimer, Wilkerson and Aiken, SIGMOD 2003) over normalised tokens.

Every run of K tokens inside one unit is hashed with BLAKE2b (stable across processes, unlike
Python's `hash`); in every window of W consecutive hashes the smallest is kept (the rightmost on a
tie), so any passage of K + W - 1 tokens shared by two documents shares a fingerprint. Hashes that
occur anywhere in the release (its whole text, normalised alike) are dropped: template never counts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from introdl.similarity.extract import Document, Region
from introdl.similarity.normalise import Token, units

K = 12  # tokens per fingerprinted passage: short enough for a renamed loop, long enough to be rare
WINDOW = 6  # any shared passage of K + WINDOW - 1 = 17 tokens is certain to be found


@dataclass(frozen=True)
class Passage:
    region: int  # index of the region in its document
    start: int  # character offsets in that region's source
    end: int


@dataclass(frozen=True)
class Fingerprints:
    """A document's winnowed fingerprints, and where every K-gram hash occurs (for highlighting)."""

    document: Document
    selected: frozenset[int]
    occurrences: dict[int, tuple[Passage, ...]]


def kgram_hashes(tokens: Sequence[Token], k: int = K) -> list[int]:
    texts = [t.text for t in tokens]
    return [
        int.from_bytes(
            hashlib.blake2b("\x1f".join(texts[i : i + k]).encode(), digest_size=8).digest(), "big"
        )
        for i in range(len(texts) - k + 1)
    ]


def winnow(hashes: Sequence[int], window: int = WINDOW) -> set[int]:
    """The robust-winnowing selection of HASHES (all of them when fewer than a window)."""
    if len(hashes) <= window:
        return set(hashes[:1]) if hashes else set()
    chosen: set[int] = set()
    last = -1
    for left in range(len(hashes) - window + 1):
        block = hashes[left : left + window]
        low = min(block)
        at = left + max(i for i, h in enumerate(block) if h == low)
        if at != last:
            chosen.add(hashes[at])
            last = at
    return chosen


def template_hashes(sources: Iterable[str], known: frozenset[str]) -> frozenset[int]:
    """Every K-gram hash of the release's code cells, normalised like a submission."""
    found: set[int] = set()
    for source in sources:
        region = Region("release", source, frozenset())
        for unit in units(region, known, all_lines=True):
            found.update(kgram_hashes(unit))
    return frozenset(found)


def fingerprint(
    document: Document, known: frozenset[str], template: frozenset[int]
) -> Fingerprints:
    selected: set[int] = set()
    occurrences: dict[int, list[Passage]] = {}
    for r, region in enumerate(document.regions):
        for unit in units(region, known):
            hashes = kgram_hashes(unit)
            selected |= winnow(hashes)
            for i, h in enumerate(hashes):
                if h not in template:
                    occurrences.setdefault(h, []).append(
                        Passage(r, unit[i].start, unit[i + K - 1].end)
                    )
    return Fingerprints(
        document,
        frozenset(selected - template),
        {h: tuple(p) for h, p in occurrences.items()},
    )

"""Reading the notes of a Standard MIDI File, and drawing them as a piano roll.

Only what the music lab needs: note on/off events of every track and channel, with times in
beats (quarter notes), so that no tempo map is needed. The format is the one abc2midi writes
(SMF format 0 or 1, ticks per quarter note).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Note", "parse_midi", "plot_piano_roll", "read_notes"]

NOTE_NAMES = ("C", "C♯", "D", "E♭", "E", "F", "F♯", "G", "A♭", "A", "B♭", "B")
BLACK_KEYS = {1, 3, 6, 8, 10}  # pitch classes of the black keys
# Data bytes that follow each channel-message status (high nibble).
_DATA_BYTES = {0x8: 2, 0x9: 2, 0xA: 2, 0xB: 2, 0xC: 1, 0xD: 1, 0xE: 2}


@dataclass(frozen=True)
class Note:
    pitch: int  # MIDI note number: 60 is middle C
    start: float  # beats (quarter notes) from the start of the file
    end: float
    channel: int = 0
    velocity: int = 64

    @property
    def name(self) -> str:
        """Scientific pitch name, e.g. "C4" for 60."""
        return f"{NOTE_NAMES[self.pitch % 12]}{self.pitch // 12 - 1}"


def read_notes(path: str | Path) -> list[Note]:
    """The notes of the MIDI file at PATH, sorted by start time."""
    return parse_midi(Path(path).read_bytes())


def parse_midi(data: bytes) -> list[Note]:
    """The notes of a Standard MIDI File given as bytes; ValueError if it is not one."""
    if data[:4] != b"MThd" or len(data) < 14:
        raise ValueError("not a Standard MIDI File (no MThd header)")
    header_len = struct.unpack(">I", data[4:8])[0]
    _, tracks, division = struct.unpack(">HHH", data[8:14])
    if division & 0x8000:
        raise ValueError("SMPTE time division is not supported (only ticks per quarter note)")
    pos = 8 + header_len
    notes: list[Note] = []
    for _ in range(tracks):
        if data[pos : pos + 4] != b"MTrk":
            raise ValueError(f"expected a track chunk (MTrk) at byte {pos}")
        length = struct.unpack(">I", data[pos + 4 : pos + 8])[0]
        notes.extend(_track_notes(data[pos + 8 : pos + 8 + length], division))
        pos += 8 + length
    return sorted(notes, key=lambda n: (n.start, n.pitch))


def _varlen(data: bytes, pos: int) -> tuple[int, int]:
    value = 0
    while True:
        byte = data[pos]
        pos += 1
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            return value, pos


def _track_notes(track: bytes, division: int) -> list[Note]:
    notes: list[Note] = []
    sounding: dict[tuple[int, int], list[tuple[int, int]]] = {}  # (channel, pitch) -> starts
    tick, pos, status = 0, 0, 0
    while pos < len(track):
        delta, pos = _varlen(track, pos)
        tick += delta
        if track[pos] & 0x80:
            status = track[pos]
            pos += 1
        # else: running status, the previous status byte applies
        if status == 0xFF:  # meta event: type, length, data
            length, pos = _varlen(track, pos + 1)
            pos += length
            continue
        if status in (0xF0, 0xF7):  # system exclusive: length, data
            length, pos = _varlen(track, pos)
            pos += length
            continue
        kind, channel = status >> 4, status & 0x0F
        if kind not in _DATA_BYTES:
            raise ValueError(f"unexpected MIDI status byte 0x{status:02X}")
        args = track[pos : pos + _DATA_BYTES[kind]]
        pos += _DATA_BYTES[kind]
        if kind == 0x9 and args[1] > 0:
            sounding.setdefault((channel, args[0]), []).append((tick, args[1]))
        elif kind == 0x8 or kind == 0x9:  # note off, or note on with velocity 0
            starts = sounding.get((channel, args[0]))
            if starts:
                start, velocity = starts.pop(0)
                notes.append(Note(args[0], start / division, tick / division, channel, velocity))
    return notes


def plot_piano_roll(
    notes: list[Note], ax: Any = None, title: str | None = None, max_beats: float | None = None
) -> Any:
    """Draw NOTES as horizontal bars (time in beats across, pitch up); returns the Axes.

    MAX_BEATS keeps only the notes that start in the first MAX_BEATS beats.
    """
    import matplotlib.pyplot as plt

    if max_beats is not None:
        notes = [n for n in notes if n.start < max_beats]

    if ax is None:
        _, ax = plt.subplots(figsize=(10, 3.5), layout="constrained")
    if not notes:
        ax.text(0.5, 0.5, "no notes", ha="center", va="center", transform=ax.transAxes)
    channels = sorted({n.channel for n in notes})
    colours = plt.get_cmap("tab10")
    # One bar per note, drawn with one call per channel and pitch (a call per note took ~0.1-0.3 s
    # for a tune of 130 notes, in every check of the notebook).
    rows: dict[tuple[int, int], list[tuple[float, float]]] = {}
    for note in notes:
        bar = (note.start, max(note.end - note.start, 1e-3))
        rows.setdefault((note.channel, note.pitch), []).append(bar)
    for (channel, pitch), bars in rows.items():
        colour = colours(channels.index(channel) % 10)
        ax.broken_barh(bars, (pitch - 0.4, 0.8), facecolors=colour)
    if notes:
        low, high = min(n.pitch for n in notes), max(n.pitch for n in notes)
        # Shade the black keys' rows, as on a piano roll; name the white keys (or only the Cs
        # when the tune spans more than two octaves).
        for pitch in range(low - 1, high + 2):
            if pitch % 12 in BLACK_KEYS:
                ax.axhspan(pitch - 0.5, pitch + 0.5, color="0.92", zorder=0)
        named = [p for p in range(low, high + 1) if p % 12 not in BLACK_KEYS]
        if high - low > 24:
            named = [p for p in named if p % 12 == 0] or [low]
        ax.set_yticks(named, [Note(p, 0, 0).name for p in named])
        ax.set_ylim(low - 1.5, high + 1.5)
        ax.set_xlim(0, max(n.end for n in notes))
    ax.set_xlabel("time (beats)")
    ax.set_ylabel("pitch")
    if title:
        ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    return ax

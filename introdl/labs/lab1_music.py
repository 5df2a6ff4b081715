"""Music for the RNN lab: the tunes, finding tunes in generated text, listening, a piano roll.

The tunes are Irish folk music in ABC notation, a plain-text score format: a header of
``field:value`` lines (``X:`` reference number, ``T:`` title, ``M:`` metre, ``L:`` unit note
length, ``K:`` key, which closes the header) and then the notes, one bar after another::

    X:1
    T:Alexander's
    M:C|
    L:1/8
    K:D Major
    (3ABc|dAFA DFAd|fdcd FAdf|...

To listen, a tune goes ABC -> MIDI (``abc2midi``, Debian package abcmidi) -> WAV (``timidity``)
-> `IPython.display.Audio`. Without those programs the lab still works: the helpers print how to
install them and return None instead of raising.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from introdl.data import load_songs
from introdl.data.loaders import split_songs
from introdl.labs.lab1_music_midi import Note, plot_piano_roll, read_notes

__all__ = [
    "Note",
    "extract_songs",
    "is_tune",
    "load_songs",
    "missing_tools",
    "play_song",
    "show_piano_roll",
    "song_to_midi",
    "song_to_wav",
]

TOOLS = {"abc2midi": "abcmidi", "timidity": "timidity"}  # program -> Debian package
INSTALL_HINT = (
    "Install them with `sudo apt-get install abcmidi timidity` (Debian/Ubuntu; on macOS "
    "`brew install abcmidi timidity`); the rest of the lab works without them."
)
TUNES_DIR = Path("tunes")  # where play_song writes its .abc, .mid and .wav files
WAV_RATE = 22050  # Hz, mono: a 1-minute tune is ~2.6 MB once embedded in the notebook
TOOL_TIMEOUT = 60  # seconds; timidity renders a minute of music in about one second

_FIELD = re.compile(r"^[A-Za-z]:")
_NOTE = re.compile(r"[A-Ga-g]")


def is_tune(song: str) -> bool:
    """Whether SONG parses as a complete ABC tune.

    That is: it starts with an ``X:<number>`` line (abc2midi ignores text before one), it has a
    ``K:`` line (which ends the header), and at least one line after it holds notes.
    """
    lines = [line.strip() for line in song.strip().splitlines()]
    if not lines or re.fullmatch(r"X:\s*\d+\s*", lines[0]) is None:
        return False
    keys = [i for i, line in enumerate(lines) if line.startswith("K:")]
    if not keys:
        return False
    body = lines[keys[0] + 1 :]
    return any(_NOTE.search(line) and not _FIELD.match(line) for line in body)


def extract_songs(text: str) -> list[str]:
    """The complete tunes in TEXT (for instance what the RNN generated).

    Tunes are separated by a blank line, as in the training data; a snippet counts when it
    parses as a tune (`is_tune`). A tune cut off by the end of TEXT has no closing blank line
    and is left out.
    """
    return [song.strip() for song in split_songs(text) if is_tune(song)]


def missing_tools() -> list[str]:
    """The programs for listening (abc2midi, timidity) that are not on PATH."""
    return [tool for tool in TOOLS if shutil.which(tool) is None]


def _tools_message(missing: list[str]) -> str:
    return f"Cannot play music: {' and '.join(missing)} not installed. {INSTALL_HINT}"


def song_to_midi(song: str, midi_path: str | Path) -> Path | None:
    """Write SONG as a MIDI file at MIDI_PATH with abc2midi; None (and a printed reason) if not."""
    if "abc2midi" in missing_tools():
        print(_tools_message(["abc2midi"]))
        return None
    midi_path = Path(midi_path)
    midi_path.parent.mkdir(parents=True, exist_ok=True)
    abc_path = midi_path.with_suffix(".abc")
    abc_path.write_text(song.strip() + "\n", encoding="utf-8")
    midi_path.unlink(missing_ok=True)
    # abc2midi exits 0 even when it finds no tune: success is the MIDI file existing.
    result = subprocess.run(
        ["abc2midi", str(abc_path), "-o", str(midi_path), "-silent"],
        capture_output=True,
        text=True,
        timeout=TOOL_TIMEOUT,
        check=False,
    )
    if not midi_path.is_file() or midi_path.stat().st_size == 0:
        reason = _last_line(result.stdout + result.stderr) or "no tune found"
        print(f"abc2midi could not turn this song into MIDI ({reason}).")
        return None
    return midi_path


def midi_to_wav(midi_path: str | Path, wav_path: str | Path) -> Path | None:
    """Render a MIDI file as a mono WAV file with timidity; None (and a printed reason) if not."""
    if "timidity" in missing_tools():
        print(_tools_message(["timidity"]))
        return None
    wav_path = Path(wav_path)
    wav_path.unlink(missing_ok=True)
    result = subprocess.run(
        ["timidity", "-OwM", "-s", str(WAV_RATE), "-o", str(wav_path), str(midi_path)],
        capture_output=True,
        text=True,
        timeout=TOOL_TIMEOUT,
        check=False,
    )
    if result.returncode != 0 or not wav_path.is_file() or wav_path.stat().st_size <= 44:
        reason = _last_line(result.stderr + result.stdout) or f"exit code {result.returncode}"
        print(f"timidity could not render {midi_path} ({reason}).")
        return None
    return wav_path


def song_to_wav(song: str, name: str = "tune", directory: str | Path = TUNES_DIR) -> Path | None:
    """Write DIRECTORY/NAME.abc, .mid and .wav for SONG; the WAV's path, or None if it failed."""
    missing = missing_tools()
    if missing:
        print(_tools_message(missing))
        return None
    midi = song_to_midi(song, Path(directory) / f"{name}.mid")
    return None if midi is None else midi_to_wav(midi, midi.with_suffix(".wav"))


def play_song(song: str, name: str = "tune", directory: str | Path = TUNES_DIR) -> Any:
    """An audio player for SONG (an `IPython.display.Audio`), or None when it cannot be played.

    The files are kept in DIRECTORY (``tunes/`` by default) as NAME.abc, NAME.mid and NAME.wav.
    """
    wav = song_to_wav(song, name, directory)
    if wav is None:
        return None
    from IPython.display import Audio

    return Audio(filename=str(wav))


def show_piano_roll(song: str, title: str | None = None, max_beats: float | None = 64) -> None:
    """Draw SONG as a piano roll (pitch over time, the first MAX_BEATS beats; None: all).

    Prints why, and draws nothing, when the song cannot be turned into MIDI.
    """
    with tempfile.TemporaryDirectory(prefix="introdl-roll-") as tmp:
        midi = song_to_midi(song, Path(tmp) / "song.mid")
        if midi is None:
            return
        notes = read_notes(midi)
    if title is None:
        titles = [line[2:].strip() for line in song.splitlines() if line.startswith("T:")]
        title = titles[0] if titles else "generated tune"
    import matplotlib
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=(10, 3.5), layout="constrained")
    plot_piano_roll(notes, ax=ax, title=title, max_beats=max_beats)
    # Show now, so that a loop over tunes keeps each picture next to its player. A
    # non-interactive backend (scripts, tests) would only warn on stderr.
    if matplotlib.get_backend().lower() != "agg":
        plt.show()


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""

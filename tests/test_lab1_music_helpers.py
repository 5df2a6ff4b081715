"""Do the music lab's helpers find tunes, make real MIDI and WAV files, read MIDI back, draw it, and
say clearly (without crashing) when abc2midi or timidity is missing?"""

from __future__ import annotations

import os
import shutil
import struct
import wave
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")

from introdl.labs import lab1_music as music
from introdl.labs.lab1_music_midi import Note, parse_midi, plot_piano_roll, read_notes
from introdl.liveplot import LossPlot

TUNE = """X:1
T:Alexander's
M:C|
L:1/8
K:D Major
(3ABc|dAFA DFAd|fdcd FAdf|gfge fefd|(3efe (3dcB A2 (3ABc|!"""
needs_tools = pytest.mark.skipif(
    bool(music.missing_tools()),
    reason="needs abc2midi and timidity (apt-get install abcmidi timidity)",
)


@pytest.fixture(scope="module")
def songs() -> list[str]:
    return music.load_songs()


# --- Finding tunes ----------------------------------------------------------------------------------


def test_the_tunes_of_the_data_set_are_found_in_its_text(songs: list[str]) -> None:
    """Does the extractor accept the training tunes themselves (all but 4 headless fragments of
    the upstream split), and find every one of them in the joined text the model learns from?"""
    assert len(songs) == 817
    tunes = [s for s in songs if music.is_tune(s)]
    assert len(tunes) == 813
    found = set(music.extract_songs("\n\n".join(songs) + "\n\n"))
    assert {t.strip() for t in tunes} <= found


@pytest.mark.parametrize(
    ("snippet", "why"),
    [
        ("T:No number\nK:G\nGABc|", "no X: line"),
        ("X:3\nT:No key\nM:6/8\nGAB|", "no K: line"),
        ("X:4\nT:Header only\nK:D Major", "no notes after the key"),
        ("X:5\nK:D\nT:Fields only\nZ: id:x", "only fields after the key"),
        ("some words\nX:6\nK:D\nABc|", "text before the X: line"),
        ("X:\nK:D\nABc|", "X: without a number"),
    ],
)
def test_snippets_that_are_not_tunes_are_left_out(snippet: str, why: str) -> None:
    """Is a snippet without the parts abc2midi needs rejected?"""
    assert not music.is_tune(snippet), why
    assert music.extract_songs(f"{snippet}\n\n{TUNE}\n\n") == [TUNE]


def test_generated_text_yields_complete_tunes_only() -> None:
    """From generated text, are the complete tunes kept, and the one cut off by the end left out?"""
    text = f"XK:|zz\n\n{TUNE}\n\n{TUNE.replace('X:1', 'X:2')}\n\nX:3\nT:Cut\nK:G\nGA"
    assert music.extract_songs(text) == [TUNE, TUNE.replace("X:1", "X:2")]
    assert music.extract_songs("") == []


# --- Listening ---------------------------------------------------------------------------------------


@needs_tools
def test_a_tune_becomes_midi_whose_notes_are_the_tune(tmp_path: Path) -> None:
    """Does abc2midi's file, read back, start with the tune's notes (A B c♯ d A F♯ A D in D major)?"""
    midi = music.song_to_midi(TUNE, tmp_path / "tune.mid")
    assert midi is not None
    notes = read_notes(midi)
    assert [n.pitch for n in notes[:8]] == [69, 71, 73, 74, 69, 66, 69, 62]
    assert [n.name for n in notes[:4]] == ["A4", "B4", "C♯5", "D5"]
    starts = [n.start for n in notes]
    assert starts == sorted(starts)
    # times in beats (quarter notes): the triplet (3ABc fills one, each eighth of dAFA half of one
    assert notes[3].start == pytest.approx(1.0, abs=0.01)
    assert notes[7].start == pytest.approx(3.0, abs=0.01)


@needs_tools
def test_play_song_writes_a_wav_and_returns_a_player(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Does play_song leave tunes/NAME.abc, .mid and a mono WAV of the tune, and return an Audio?"""
    player = music.play_song(TUNE, name="alexander", directory=tmp_path / "tunes")
    assert type(player).__name__ == "Audio"
    wav = tmp_path / "tunes" / "alexander.wav"
    assert (tmp_path / "tunes" / "alexander.abc").read_text().startswith("X:1")
    assert (tmp_path / "tunes" / "alexander.mid").is_file()
    with wave.open(str(wav)) as audio:
        assert audio.getnchannels() == 1
        assert audio.getframerate() == music.WAV_RATE
        assert audio.getnframes() / audio.getframerate() > 3  # 4.5 bars of a hornpipe
    assert player.data[:4] == b"RIFF"
    assert capsys.readouterr().err == ""


@needs_tools
def test_text_that_is_not_a_tune_gives_none_and_a_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Does a snippet abc2midi cannot read give None and a printed reason, not an exception?"""
    assert music.play_song("hello world", directory=tmp_path) is None
    out = capsys.readouterr()
    assert "abc2midi could not" in out.out
    assert out.err == ""


def test_missing_tools_give_a_clear_message_not_a_crash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """With abc2midi and timidity off PATH, do the helpers return None and print how to install?"""
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory: no programs at all
    assert music.missing_tools() == ["abc2midi", "timidity"]
    assert music.play_song(TUNE, directory=tmp_path / "tunes") is None
    assert music.song_to_midi(TUNE, tmp_path / "t.mid") is None
    music.show_piano_roll(TUNE)
    out = capsys.readouterr()
    assert "abc2midi and timidity not installed" in out.out
    assert "apt-get install abcmidi timidity" in out.out
    assert out.err == ""
    assert not (tmp_path / "tunes").exists()


def test_only_timidity_missing_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """When only timidity is missing, does the message name timidity alone?"""
    abc2midi = shutil.which("abc2midi")
    if abc2midi is None:
        pytest.skip("needs abc2midi")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    os.symlink(abc2midi, bin_dir / "abc2midi")
    monkeypatch.setenv("PATH", str(bin_dir))
    assert music.play_song(TUNE, directory=tmp_path / "tunes") is None
    assert "Cannot play music: timidity not installed" in capsys.readouterr().out


# --- Reading MIDI ------------------------------------------------------------------------------------


def smf(*tracks: bytes, division: int = 96) -> bytes:
    header = b"MThd" + struct.pack(">IHHH", 6, 1, len(tracks), division)
    return header + b"".join(b"MTrk" + struct.pack(">I", len(t)) + t for t in tracks)


def test_midi_reader_handles_running_status_and_zero_velocity_note_offs() -> None:
    """Are notes paired on and off per channel, with running status, velocity-0 note-offs, meta
    and sysex events skipped, times in beats, and several tracks merged by time?"""
    track1 = bytes(
        [
            *(0x00, 0xFF, 0x51, 0x03, 0x07, 0xA1, 0x20),  # tempo (meta, ignored)
            *(0x00, 0x90, 60, 100),  # C4 on at 0
            *(0x60, 62, 90),  # running status: D4 on at 1 beat
            *(0x30, 60, 0),  # C4 off (velocity 0) at 1.5 beats
            *(0x00, 0xF0, 0x02, 0x01, 0xF7),  # sysex (ignored)
            *(0x81, 0x00, 0x80, 62, 0),  # D4 off at 1.5 + 128/96 beats
            *(0x00, 0xFF, 0x2F, 0x00),
        ]
    )
    track2 = bytes([0x30, 0x91, 67, 80, 0x30, 0x81, 67, 0, 0x00, 0xFF, 0x2F, 0x00])
    notes = parse_midi(smf(track1, track2))
    assert notes == [
        Note(60, 0.0, 1.5, 0, 100),
        Note(67, 0.5, 1.0, 1, 80),
        Note(62, 1.0, pytest.approx(1.5 + 128 / 96), 0, 90),
    ]


def test_midi_reader_rejects_what_is_not_midi() -> None:
    """Is a file that is not a Standard MIDI File a ValueError that says so?"""
    with pytest.raises(ValueError, match="not a Standard MIDI File"):
        parse_midi(b"RIFF....WAVEfmt ")
    with pytest.raises(ValueError, match="SMPTE"):
        parse_midi(b"MThd" + struct.pack(">IHHH", 6, 0, 1, 0xE728))


def test_piano_roll_draws_one_bar_per_note() -> None:
    """Does the piano roll draw each note as a bar at its pitch and time, and say when empty?"""
    notes = [Note(60, 0, 1), Note(64, 1, 2), Note(67, 2, 4), Note(72, 8, 9)]
    ax = plot_piano_roll(notes, title="chord", max_beats=5)
    bars = [c for c in ax.collections if c.get_paths()]
    assert len(bars) == 3  # the note starting at beat 8 is past max_beats
    assert ax.get_title() == "chord"
    assert ax.get_xlim() == (0, 4)
    assert "C4" in [t.get_text() for t in ax.get_yticklabels()]
    empty = plot_piano_roll([])
    assert [t.get_text() for t in empty.texts] == ["no notes"]
    matplotlib.pyplot.close("all")


# --- The live loss plot ------------------------------------------------------------------------------


def test_loss_plot_renders_png_and_stays_quiet_outside_a_notebook(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Does the live plot render a PNG of the curve, and do nothing (no error) outside IPython?"""
    plot = LossPlot(total=10, every=0)
    png = plot.render([4.4, 3.0, 2.1])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert plot.render([])[:4] == b"\x89PNG"
    plot.update([4.4, 3.0], final=True)
    assert capsys.readouterr() == ("", "")

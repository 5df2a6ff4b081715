"""The command line: a thin layer that parses flags and calls a command function."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

import pytest

from introdl.cli import _commands, build_parser
from introdl.cli.demo import quiet


def test_a_flag_not_given_reaches_the_command_as_none() -> None:
    """Is "not given" None (not a placeholder such as seed=-1 or backend=""), and a given flag typed?"""
    parser = build_parser(_commands())
    given = vars(parser.parse_args(["grade", "lab1_tensorflow", "--seed", "7", "--workers", "2"]))
    assert (given["seed"], given["workers"], given["backend"], given["scheduler"]) == (
        7,
        2,
        None,
        None,
    )
    bare = vars(parser.parse_args(["grade-notebook"]))
    assert (bare["path"], bare["lab"], bare["backend"], bare["seed"]) == (None, None, None, None)
    with pytest.raises(SystemExit):
        parser.parse_args(["grade", "lab1_tensorflow", "--seed", "seven"])


def test_every_command_takes_keyword_only_arguments_with_a_docstring() -> None:
    """Does every command keep otter's shape, so the parser can read its defaults?"""
    for name, (func, _) in _commands().items():
        assert inspect.getdoc(func), name
        kinds = {p.kind for p in inspect.signature(func).parameters.values()}
        assert kinds <= {inspect.Parameter.KEYWORD_ONLY}, name


def test_the_demo_sends_child_process_noise_to_its_log(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """During `introdl demo`, does what a child process prints (a kernel's TensorFlow start-up
    lines) land in the log file, while the progress lines reach the terminal?"""
    log = tmp_path / "logs" / "demo.log"
    with quiet(log) as say:
        say("[1/4] step one")
        subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys; print('I0000 oneDNN custom operations', file=sys.stderr)",
            ],
            check=True,
        )
        print("Kernel is running over TCP without encryption")
    out, err = capfd.readouterr()
    assert out == "[1/4] step one\n"
    assert err == ""
    assert log.read_text().splitlines() == [
        "I0000 oneDNN custom operations",
        "Kernel is running over TCP without encryption",
    ]
    print("after")  # the terminal is back
    assert capfd.readouterr().out == "after\n"

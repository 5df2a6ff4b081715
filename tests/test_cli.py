"""The command line: a thin layer that parses flags and calls a command function."""

from __future__ import annotations

import inspect

import pytest

from introdl.grading.cli import _commands, build_parser


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

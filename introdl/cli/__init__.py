"""The `introdl` command line: a thin layer over plain functions.

The front door, above everything it calls: the engine's own commands (`grade`, `grade-notebook`
in introdl/grading/commands/), the commands that grade nothing (one module each here: release,
data, demo, hub), the similarity report, the staff tools and the LMS. Nothing below imports it.
Each command is a function with keyword-only arguments and a docstring; this module only parses
arguments (defaults are read from the function, so they cannot drift) and prints the frozen
dataclass the function returns. Exit codes: 0 done (a graded submission with failing tests is
still 0), 2 bad input, 130 stopped by Ctrl-C (what was done is kept; the shell's code for SIGINT);
a result with an `exit_code` says its own (`introdl lms push`: 1 when the LMS refused a score).
With `--json`, standard output holds the JSON alone: what a command prints while it runs
(`introdl grade`'s progress) goes to standard error.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import inspect
import json
import sys
import typing
from collections.abc import Callable, Sequence
from typing import Any

from introdl.grading.errors import BadInput, Stopped

Command = Callable[..., Any]
STOPPED = 130  # exit code after Ctrl-C, as a shell reports a command killed by SIGINT


def _commands() -> dict[str, tuple[Command, dict[str, str]]]:
    """Command name -> (function, {parameter: help}). Imported lazily: TensorFlow is slow to load."""
    from introdl.cli import data, demo, release
    from introdl.cli.hub import hub
    from introdl.grading.commands import grade, grade_notebook
    from introdl.grading.sandbox.docker import DEFAULT_IMAGE
    from introdl.lms.command import lms
    from introdl.similarity.command import similarity
    from introdl.staff.extension_command import extension
    from introdl.staff.report import report

    return {
        "release": (release.release, {"lab": "a lab id, or `all`"}),
        "data": (
            data.data,
            {"action": "`list` or `fetch`", "name": "a data set name, or `all`"},
        ),
        "grade": (
            grade.grade,
            {
                "lab": "the lab to grade",
                "student": "grade only this student (repeatable)",
                "backend": "sandbox: bwrap, docker or none (default: docker where it runs, else bwrap)",
                "workers": "local worker processes (default: one per two cores)",
                "scheduler": "a Dask scheduler address (tcp://host:8786) to grade on a cluster",
                "seed": "seed for the hidden tests' random inputs (default: fresh per submission)",
                "force": "regrade submissions that are already graded and unchanged",
                "feedback": "run nbgrader generate_feedback for each graded student",
                "export": "write the gradebook as CSV to this path (nbgrader export)",
                "warm": "warm sandboxes each worker keeps ready (default: $INTRODL_WARM, else 1)",
                "no_warm": "start every sandbox cold (the same as --warm 0)",
                "image": f"the course image the docker backend runs (default: {DEFAULT_IMAGE})",
                "gpus": "GPUs for each kernel's container: `all` or a count N, as `docker run "
                "--gpus` (docker backend; default: none)",
            },
        ),
        "grade-notebook": (
            grade_notebook.grade_notebook,
            {
                "path": "the notebook file",
                "lab": "the lab whose hidden tests judge it",
                "backend": "sandbox: bwrap, docker or none",
                "seed": "seed for the hidden tests' random inputs",
                "only": "run only these grade ids or test names (repeatable)",
            },
        ),
        "hub": (
            hub,
            {
                "port": "the hub's port on 127.0.0.1",
                "state": "the hub's state folder (root only: database, accounts, exchange)",
            },
        ),
        "similarity": (
            similarity,
            {
                "lab": "the lab whose submissions to compare",
                "against": "a folder of .ipynb or .py files to compare each student with (repeatable)",
                "html": "where to write the HTML report; empty: build/similarity/LAB.html",
                "csv": "where to write every pair as CSV; empty: build/similarity/LAB.csv",
                "top": "how many pairs the report shows side by side",
            },
        ),
        "extension": (
            extension,
            {
                "lab": "the lab",
                "student": "the student's hub name",
                "until": "the student's own due date, ISO 8601 (UTC unless a zone is given), "
                "e.g. 2026-12-24T17:00",
                "reason": "why (kept in the audit trail; the student sees it)",
                "revoke": "take the student's extension back",
                "state": "the check service's state folder (default: c.LatePolicy.check_state)",
            },
        ),
        "lms": (
            lms,
            {
                "action": "push, status, csv or jwks",
                "lab": "the lab whose grades go to the LMS",
                "dry_run": "push: show what would be sent and send nothing",
                "lms": "csv: canvas or moodle (the gradebook import format)",
                "out": "csv: where to write the file",
                "name": "csv: the assignment's name in the LMS (default: the lab id)",
                "assignment_id": "csv, canvas: the Canvas assignment id (empty: Canvas creates it)",
            },
        ),
        "report": (
            report,
            {
                "lab": "the lab to report on, or `all`",
                "html": "where to write the HTML (CSV files beside it); empty: build/report/LAB.html",
                "state": "the check service's state folder (its checks.sqlite); empty: no checks",
            },
        ),
        "demo": (
            demo.demo,
            {"workdir": "where to build the demo course (default: a fresh temporary folder)"},
        ),
    }


POSITIONAL = {
    "release": ["lab"],
    "data": ["action", "name"],
    "grade": ["lab"],
    "grade-notebook": ["path"],
    "similarity": ["lab"],
    "extension": ["lab", "student"],
    "lms": ["action", "lab"],
    "report": ["lab"],
}


def value_type(hint: Any, default: Any) -> Callable[[str], Any]:
    """What argparse turns a flag's text into: the default's type, or X of an `X | None` hint."""
    if default is not None:
        return type(default)
    given = [a for a in typing.get_args(hint) if a is not type(None)]
    return given[0] if len(given) == 1 and given[0] in (int, float, str) else str


def build_parser(commands: dict[str, tuple[Command, dict[str, str]]]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="introdl", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (func, helps) in commands.items():
        doc = inspect.getdoc(func) or ""
        p = sub.add_parser(name, help=doc.splitlines()[0] if doc else None, description=doc)
        p.add_argument("--json", action="store_true", help="print the result as JSON")
        try:
            hints = typing.get_type_hints(func)
        except NameError:  # an annotation naming a TYPE_CHECKING-only type: flags stay str
            hints = {}
        for param in inspect.signature(func).parameters.values():
            default = param.default  # None: not given (the function decides what that means)
            flag = param.name.replace("_", "-")
            help_text = helps.get(param.name, "")
            shown = help_text if default is None else f"{help_text} (default: {default})"
            if param.name in POSITIONAL.get(name, []):
                p.add_argument(param.name, nargs="?", default=default, help=shown)
            elif isinstance(default, bool):
                p.add_argument(
                    f"--{flag}",
                    dest=param.name,
                    action="store_true",
                    default=default,
                    help=help_text,
                )
            elif isinstance(default, tuple | list):
                p.add_argument(
                    f"--{flag}", dest=param.name, action="append", default=None, help=help_text
                )
            else:
                p.add_argument(
                    f"--{flag}",
                    dest=param.name,
                    default=default,
                    type=value_type(hints.get(param.name), default),
                    help=shown,
                )
    return parser


def render(result: Any) -> str:
    if hasattr(result, "summary"):
        return str(result.summary())
    if dataclasses.is_dataclass(result) and not isinstance(result, type):
        return "\n".join(f"{k}: {v}" for k, v in dataclasses.asdict(result).items())
    return str(result)


def main(argv: Sequence[str] | None = None) -> int:
    commands = _commands()
    args = vars(build_parser(commands).parse_args(argv))
    name = args.pop("command")
    as_json = args.pop("json")
    func, _ = commands[name]
    args = {k: (tuple(v) if isinstance(v, list) else v) for k, v in args.items() if v is not None}
    try:
        with contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext():
            result = func(**args)
    except BadInput as err:
        print(f"introdl {name}: {err}", file=sys.stderr)
        return 2
    except Stopped as err:
        print(f"introdl {name}: {err}", file=sys.stderr)
        return STOPPED
    except KeyboardInterrupt:
        print(f"introdl {name}: stopped (Ctrl-C)", file=sys.stderr)
        return STOPPED
    if as_json:
        payload = (
            dataclasses.asdict(result)
            if dataclasses.is_dataclass(result) and not isinstance(result, type)
            else result
        )
        print(json.dumps(payload, indent=2, default=str))
    else:
        print(render(result))
    return int(getattr(result, "exit_code", 0))

"""The demo class: five students' notebooks for lab1_tensorflow, made from the source and release.

- `ada` answers every exercise correctly;
- `ben` answers some, leaves three TODOs and forgets the bias in the dense layer;
- `cy` hands in a notebook that is not valid JSON;
- `dee` is hostile: reads the hidden tests and the gradebook, writes outside her copy, forges a
  results.json, returns an always-equal object, monkeypatches numpy, and loops forever;
- `eve` submits the release untouched.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from introdl.grading.submission import grade_id

new: Callable[[str], NotebookNode] = nbformat.v4.new_code_cell
SOLUTION_MARKERS = re.compile(r"^\s*### (BEGIN|END) SOLUTION\s*\n", re.M)


def answered(
    source: NotebookNode, release: NotebookNode, skip: tuple[str, ...] = ()
) -> NotebookNode:
    """The release with the instructor's answers filled in (except the grade ids in SKIP)."""
    answers = {
        grade_id(c): SOLUTION_MARKERS.sub("", c.source)
        for c in source.cells
        if c.get("metadata", {}).get("nbgrader", {}).get("solution")
    }
    nb = copy.deepcopy(release)
    for cell in nb.cells:
        gid = grade_id(cell)
        if gid in answers and gid not in skip:
            cell.source = answers[gid]
    return nb


def hostile_cells(course: Path) -> list[NotebookNode]:
    return [
        new(
            "import os, pathlib\n"
            f"COURSE = {str(course)!r}\n"
            "stolen = {}\n"
            "for target in [COURSE + '/grader_tests', COURSE + '/gradebook.db', COURSE + '/source', '/etc/shadow', '/root']:\n"
            "    try:\n"
            "        stolen[target] = os.listdir(target) if os.path.isdir(target) else open(target, 'rb').read(64)\n"
            "    except OSError as err:\n"
            "        stolen[target] = type(err).__name__\n"
            "print(stolen)"
        ),
        new(
            "import json\n"
            "forged = {'score': 11, 'max_score': 11, 'tests': []}\n"
            "for path in [COURSE + '/autograded/dee/lab1_tensorflow/results.json', 'results.json', COURSE + '/nbgrader_config.py']:\n"
            "    try:\n"
            "        pathlib.Path(path).parent.mkdir(parents=True, exist_ok=True)\n"
            "        pathlib.Path(path).write_text(json.dumps(forged))\n"
            "        print('wrote', path)\n"
            "    except OSError as err:\n"
            "        print('could not write', path, type(err).__name__)"
        ),
        new(
            "import numpy as np\n"
            "np.allclose = lambda *a, **k: True  # the grader compares in its own process\n"
            "class AlwaysEqual:\n"
            "    def __eq__(self, other):\n"
            "        return True\n"
            "def func(a, b):\n"
            "    return AlwaysEqual()"
        ),
        new("while True:  # never finishes: the cell's time budget stops it\n    pass"),
    ]


def demo_notebooks(
    source: NotebookNode, release: NotebookNode, course: Path
) -> dict[str, NotebookNode | bytes]:
    """Student id -> notebook (or raw bytes for the broken one)."""
    ben = answered(source, release, skip=("func", "gradient_of_square", "minimize_loss"))
    for cell in ben.cells:
        if grade_id(cell) == "our_dense_layer":
            cell.source = cell.source.replace("+ self.b", "")  # forgets the bias
    dee = answered(source, release)
    dee.cells.extend(hostile_cells(course))
    broken = nbformat.writes(answered(source, release)).encode()[:5000]  # cut off mid-file
    return {
        "ada": answered(source, release),
        "ben": ben,
        "cy": broken,
        "dee": dee,
        "eve": copy.deepcopy(release),
    }

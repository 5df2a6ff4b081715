"""The lab author's kit: everything a hidden test, `in_kernel.py`'s caller or `calibrate.py` may
import from the grading engine (docs/hidden-tests.md). grader_tests/ imports nothing else of
introdl.grading (tests/test_imports.py keeps it so).

For hidden tests: the comparisons of `expect`, the door's types (`Student`, `StudentError`) and
`HostTooSlow` (raised by a test whose wall-clock safety net ran out: an error, not a failure).
For calibrate.py and the project's variant tests: `Lab` (a lab's files), `Variant` and `variants`
(tests/fixtures/<lab>/), `lean_notebook` and `namespace` (a variant without the notebook's
training, graded or run in process), `DefinitionsKernel` (one sandboxed kernel holding the lab's definitions),
`grade_file` (a whole grading), `Calibration`, `suite_mode` and `run_calibration` (the one runner
behind `make calibrate`).
"""

from introdl.grading.authoring.calibrate import Calibration, run_calibration, suite_mode
from introdl.grading.authoring.definitions import DefinitionsKernel, grade_file
from introdl.grading.authoring.lab import REQUIRED_FILES, Lab
from introdl.grading.authoring.lean import lean_notebook, namespace
from introdl.grading.authoring.variants import (
    Variant,
    submission_notebook,
    variant_named,
    variants,
)
from introdl.grading.door.student import Student, StudentError
from introdl.grading.hidden.expect import (
    ATOL,
    RTOL,
    as_array,
    assert_close,
    assert_shape,
    assert_true,
    close,
)
from introdl.grading.hidden.marks import HostTooSlow

__all__ = [
    "ATOL",
    "REQUIRED_FILES",
    "RTOL",
    "Calibration",
    "DefinitionsKernel",
    "HostTooSlow",
    "Lab",
    "Student",
    "StudentError",
    "Variant",
    "as_array",
    "assert_close",
    "assert_shape",
    "assert_true",
    "close",
    "grade_file",
    "lean_notebook",
    "namespace",
    "run_calibration",
    "submission_notebook",
    "suite_mode",
    "variant_named",
    "variants",
]

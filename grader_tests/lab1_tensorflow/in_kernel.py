"""Grader code that runs INSIDE the student's kernel for lab1_tensorflow's hidden tests: none.

Every test of this lab calls the notebook's functions through the door (`student.call`) and
compares what comes back, so nothing of the grader's needs to run beside the student's code. The
file is kept so that every lab's grading folder has the same shape (docs/hidden-tests.md); a test
that needs a loop in the kernel adds its functions here and installs the module with
`student.install(IN_KERNEL)`.
"""

from __future__ import annotations

from typing import Any

NOTEBOOK: dict[str, Any] = {}  # the notebook's namespace, bound by the door

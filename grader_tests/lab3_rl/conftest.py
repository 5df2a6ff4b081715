"""Fixtures shared by the files of lab3_rl's hidden suite (test_lab3_rl*.py)."""

from __future__ import annotations

from typing import Any

import pytest

from grader_tests.lab3_rl import curves


@pytest.fixture(scope="module")
def kernel(student: Any) -> Any:
    """The student's kernel with the grader's in-kernel helpers installed."""
    assert student.install(curves.IN_KERNEL) == curves.RL
    return student

"""Shared fixtures for the project's own tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from introdl.grading.course import labs_with_source

ROOT = Path(__file__).resolve().parents[1]
LABS = labs_with_source(ROOT)


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT

"""Errors the CLI turns into exit code 2 with a message that names the file and the remedy."""

from __future__ import annotations


class BadInput(Exception):
    """Input the platform cannot use (a missing file, an unknown lab, a broken notebook)."""

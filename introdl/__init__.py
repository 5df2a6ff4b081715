"""introdl: helpers for the introdl labs (data, checks, plots) and, in `introdl.grading`, the grader.

Lab helpers never import `introdl.grading` and never contain solutions.
"""

from introdl.budget import budget

__all__ = ["budget"]
__version__ = "0.1.0"

"""The test phase: pytest runs a lab's hidden suite in the grader's process (runner.py)."""

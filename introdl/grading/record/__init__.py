"""What grading leaves behind: results.json (results.py) and nbgrader's gradebook (gradebook.py)."""

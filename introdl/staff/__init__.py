"""The course's human loop: deadlines and extensions, regrade requests, the class dashboard.

Records live in `store.py` (SQLite beside the check service's queue); the check service serves
the pages (`routes.py` lists them), and the `introdl` CLI offers the same actions to staff on the
grading host.
"""

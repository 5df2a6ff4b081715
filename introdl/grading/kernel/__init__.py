"""The student's kernel in its sandbox: start it (launch.py), run a notebook (notebook.py)."""

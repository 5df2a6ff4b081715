"""The door into the student's kernel: `Student` (bridge.py), the only way hidden tests reach it."""

"""The door into the student's kernel: `Student` (student.py), the only way hidden tests reach it.

One name for one thing: the folder, its module `student.py` (the `Student` class, which hidden
tests get as the `student` fixture), the helper it installs in the kernel (`__introdl_door__`,
from kernel_side.py) and its errors (`DoorError` and subclasses) all say "door"; transport.py is
the door's data format.
"""

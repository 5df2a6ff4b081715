"""Code similarity of a lab's submissions (`introdl similarity`): a staff tool beside grading.

The steps, in the order data flows: extract.py (answer cells minus the release), normalise.py
(tokens without names, comments, whitespace or order), fingerprint.py (winnowing), compare.py
(ranked pairs), report.py (HTML + CSV), command.py (the command).
"""

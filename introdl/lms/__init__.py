"""Grades to the LMS (issue 25): LTI Advantage grade passback, the roster check, a CSV fallback.

In the order data flows:

- `settings.py`: the course's `c.LTI.*` section of nbgrader_config.py, checked;
- `keys.py`: the tool's private key and other secrets, read from files only their owner can read,
  and the signed client assertion (RFC 7523) that buys an access token;
- `finals.py`: each student's final score for a lab from nbgrader's gradebook (score minus the
  stored late penalty) with the student's `lms_user_id`;
- `ags.py`: the HTTP client for the platform (token, AGS line items and scores, NRPS roster),
  with retries and backoff;
- `records.py`: every push, in SQLite (`<state>/lms.sqlite`);
- `push.py`: `introdl lms push` and `introdl lms status`; `csv_export.py`: `introdl lms csv`;
- `command.py`: the `introdl lms ACTION LAB` entry point the CLI calls.

docs/lms.md says what a Canvas or Moodle admin registers and which settings a course sets.
"""

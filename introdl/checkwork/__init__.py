"""'Check my work' before the deadline (issue 16): a JupyterHub service that grades a student's
own notebook with the batch engine and shows the verdict by each test's visibility.

Staff side, beside the engine (it runs as root on the course host, never in a student's server):
`service` (routes, start, stop), `handlers` (tornado handlers: who asks, from the hub; refusals
in `refusals`), `app` (asking for and describing a check), `workers` (grading processes and their
watchdog), `fair_queue` (SQLite: requests, round-robin
queue, limits, verdicts), `grader` (the one call into the engine, and the student's view),
`notebook` (the student's fetched notebook, read safely; released labs; due dates), `pages`
(HTML), `settings` (c.CheckService.* in the course's nbgrader_config.py).

Named `checkwork`, not `check`, so that it cannot be mistaken for `introdl.checks` (the public
checks students run in their own notebooks, which never import the engine): the two sit on
opposite sides of the trust line. The hub still runs it as the service `check`
(/services/check/), with its state in the `check/` folder.
"""

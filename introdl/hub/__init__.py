"""The student side on JupyterHub: a hub-authenticated exchange and the local demo hub.

- `exchange_store.py`: the exchange's state (SQLite + archives beside it), no web code;
- `exchange_service.py` (routes) and `exchange_handler.py` (who asks): the hub service; who a
  person is comes from their hub token, checked with the hub, never from a name, a flag or a file
  the person sends;
- `archive.py`: what a hand-in archive may hold, checked before anything is unpacked;
- `exchange_client.py` (students: fetch, submit, list, feedback) and `exchange_staff.py` (staff:
  release, collect, release feedback): nbgrader's exchange plugins, which talk to the service with
  the caller's own hub token;
- `request_guard.py`: what both services refuse first (another origin, a repeated `student`), CSPs;
- `accounts.py`, `local.py`, `jupyterhub_config.py`: `make hub`, a real JupyterHub on loopback.

Student servers import only `exchange_client` (and nbgrader); nothing here imports the grading
engine.
"""

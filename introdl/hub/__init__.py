"""The student side on JupyterHub: a hub-authenticated exchange and the local demo hub.

- `exchange_store.py`: the exchange's state (SQLite + archives beside it), no web code;
- `exchange_service.py`: the hub service; who a person is comes from their hub token, checked
  with the hub, never from a name, a flag or a file the person sends;
- `exchange_client.py`: nbgrader's exchange plugins (fetch, submit, list, collect, feedback) that
  talk to the service with the caller's own hub token;
- `accounts.py`, `local.py`, `jupyterhub_config.py`: `make hub`, a real JupyterHub on loopback.

Student servers import only `exchange_client` (and nbgrader); nothing here imports the grading
engine.
"""

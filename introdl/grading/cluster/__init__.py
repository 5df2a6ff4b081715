"""Grading on a Dask cluster whose workers share no disk with the coordinator.

The coordinator packs what a worker needs into content-addressed bundles (`bundles.py`): the
lab's release notebook and hidden suite, and the data sets the lab declares (`shipping.py`); a
worker fetches a bundle only when its own disk cache lacks that sha256, and keeps it there. Each task carries the submission's files as plain bytes. The worker grades from its
local copies and returns plain data; the coordinator alone writes results and the gradebook
(`dask_run.py`).
"""

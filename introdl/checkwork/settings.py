"""The check service's settings for a course, read from the course's nbgrader_config.py.

    c.CheckService.checks_per_day = 5      # per student and lab, in any 24 hours
    c.CheckService.cooldown_seconds = 60   # between two checks of one lab by one student
    c.CheckService.workers = 1             # gradings at once (the grading host's worker count)
    c.CheckService.warm = 1                # warm kernels kept ready per worker (0: start cold)
    c.CheckService.watchdog_margin = 90    # seconds a check may run past its lab's grading limit
    c.CheckService.cluster = ""            # a Dask scheduler (tcp://HOST:8786): grade checks there

nbgrader itself ignores the section: traitlets warns only about sections of classes it knows.
"""

from __future__ import annotations

import os
from pathlib import Path

from traitlets import Float, Int, Unicode
from traitlets.config import Configurable
from traitlets.config.loader import ConfigFileNotFound, PyFileConfigLoader

from introdl.checkwork.fair_queue import Limits


class CheckService(Configurable):
    """Limits and concurrency of the pre-deadline check service (issue 16)."""

    checks_per_day = Int(5, help="checks a student may ask per lab in any 24 hours").tag(
        config=True
    )
    cooldown_seconds = Float(60.0, help="seconds between two checks of one lab").tag(config=True)
    workers = Int(
        max(1, (os.cpu_count() or 2) // 2), help="gradings at once; the rest wait in the queue"
    ).tag(config=True)
    warm = Int(
        1,
        help="warm sandboxed kernels each grading worker keeps ready for the lab it last graded "
        "(each serves one check, then is destroyed; ~0.7 GiB each); 0 starts each sandbox cold",
    ).tag(config=True)
    watchdog_margin = Float(
        90.0,
        help="seconds a check may take beyond its lab's grading limit (grading_timeout in "
        "grader_tests/<lab>/limits.toml) before the watchdog stops it and tells the student: "
        "the sandbox's start (a warm kernel's TensorFlow import: ~5 s on a quiet 2-core machine, "
        "~30 s at load 8, twice that when the previous check was of another lab) and what "
        "grading does around the notebook and the tests",
    ).tag(config=True)
    cluster = Unicode(
        "",
        help="a Dask scheduler's address (tcp://HOST:8786, the cluster that grades batches): "
        "checks are graded on its workers, one per worker thread, instead of `workers` local "
        "processes (docs/cluster.md); empty: on this host",
    ).tag(config=True)


class ConfigError(Exception):
    """The course's check settings are unusable; the message names the file and the setting."""


def course_settings(course: Path) -> CheckService:
    """The course's CheckService settings (defaults when nbgrader_config.py sets none)."""
    path = course / "nbgrader_config.py"
    try:
        config = PyFileConfigLoader(path.name, path=str(course)).load_config()
    except ConfigFileNotFound:
        config = None
    settings = CheckService(config=config) if config is not None else CheckService()
    if settings.checks_per_day < 1:
        raise ConfigError(f"{path}: c.CheckService.checks_per_day must be at least 1")
    if settings.cooldown_seconds < 0:
        raise ConfigError(f"{path}: c.CheckService.cooldown_seconds must be 0 or more")
    if settings.warm < 0:
        raise ConfigError(f"{path}: c.CheckService.warm must be 0 or more")
    if settings.watchdog_margin < 1:
        raise ConfigError(f"{path}: c.CheckService.watchdog_margin must be at least 1 (seconds)")
    if settings.workers < 1:
        raise ConfigError(f"{path}: c.CheckService.workers must be at least 1")
    return settings


def limits_of(settings: CheckService) -> Limits:
    return Limits(
        checks_per_day=int(settings.checks_per_day),
        cooldown_seconds=float(settings.cooldown_seconds),
    )

"""One knob that sizes every training loop in every lab.

`INTRODL_BUDGET` picks the budget:

- ``smoke``: a few steps, so a whole notebook runs in seconds (the project's tests use it);
- ``cpu`` (the default): the documented 2-core CPU budget that still gives a result worth seeing;
- ``gpu``: the upstream lab's full settings, for a GPU.

Notebooks write hyperparameters as ``num_training_iterations = budget(smoke=5, cpu=500, gpu=3000)``.
"""

from __future__ import annotations

import os
from typing import TypeVar

T = TypeVar("T")

BUDGETS = ("smoke", "cpu", "gpu")
ENV_VAR = "INTRODL_BUDGET"


def current_budget() -> str:
    """The budget named by INTRODL_BUDGET (default ``cpu``)."""
    name = os.environ.get(ENV_VAR, "cpu").strip().lower() or "cpu"
    if name not in BUDGETS:
        raise ValueError(
            f"{ENV_VAR}={name!r} is not a budget; use one of {', '.join(BUDGETS)} "
            f"(smoke: seconds, for tests; cpu: the 2-core default; gpu: the lab's full settings)"
        )
    return name


def budget(*, smoke: T, cpu: T, gpu: T) -> T:
    """Pick the value for the current budget."""
    return {"smoke": smoke, "cpu": cpu, "gpu": gpu}[current_budget()]

"""`introdl hub`: the local demo hub; its set-up errors are bad input (exit 2)."""

from __future__ import annotations

import functools
from typing import Any

from introdl.grading.errors import BadInput
from introdl.hub import local
from introdl.hub.accounts import AccountError


@functools.wraps(local.serve)
def hub(**kwargs: Any) -> Any:
    try:
        return local.serve(**kwargs)
    except (local.HubError, AccountError) as err:
        raise BadInput(str(err)) from err

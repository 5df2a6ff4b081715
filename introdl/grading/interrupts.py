"""Ctrl-C in a batch graded in this process: remembered, so that it is never lost."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator


@contextlib.contextmanager
def sigint_remembered() -> Iterator[Callable[[], bool]]:
    """SIGINT raises KeyboardInterrupt as by default, and is also remembered (the yielded check).

    A KeyboardInterrupt raised while a finalizer runs (a ``__del__``, a weakref callback) is
    printed as "Exception ignored" and lost; the batch then checks before each submission. Only
    in the main thread, and only over Python's default handler (a caller's own stays).
    """
    seen: list[int] = []
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        yield lambda: False
        return

    def on_sigint(signum: int, frame: object) -> None:
        seen.append(signum)
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, on_sigint)
    try:
        yield lambda: bool(seen)
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)

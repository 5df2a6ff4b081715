"""Does a Ctrl-C that Python swallows still stop a batch graded in the CLI's own process?

A KeyboardInterrupt raised while a finalizer runs is printed as "Exception ignored" and lost;
`interrupts.sigint_remembered` keeps the signal, and the in-process batch checks it before each
submission (tests/test_batch_progress.py sends the real Ctrl-C to a whole batch).
"""

from __future__ import annotations

import os
import signal
import time

from introdl.grading.interrupts import sigint_remembered


class SendsCtrlCWhenCollected:
    def __del__(self) -> None:
        os.kill(os.getpid(), signal.SIGINT)
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:  # the handler runs here, inside the finalizer
            time.sleep(0.001)


def test_a_ctrl_c_lost_in_a_finalizer_is_remembered() -> None:
    with sigint_remembered() as interrupted:
        assert not interrupted()
        obj = SendsCtrlCWhenCollected()
        del obj  # its KeyboardInterrupt is "Exception ignored": nothing reaches this frame
        assert interrupted()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_callers_own_handler_is_left_alone() -> None:
    def mine(signum: int, frame: object) -> None:
        pass

    previous = signal.signal(signal.SIGINT, mine)
    try:
        with sigint_remembered() as interrupted:
            assert signal.getsignal(signal.SIGINT) is mine
            assert not interrupted()
        assert signal.getsignal(signal.SIGINT) is mine
    finally:
        signal.signal(signal.SIGINT, previous)

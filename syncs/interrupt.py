"""A stop signal becomes an interruption of the running sync, which the engine records before the process goes.

SIGTERM (a deploy, systemd stopping the service, `kill`) and SIGINT (Ctrl-C) raise `SyncInterrupted` in the main
thread; the engine (syncs.engine) catches it, rolls back the page in flight, marks the sync `interrupted` with
the checkpoint of the last committed page and lets it go on up, so the store is free at once and the next sync
carries on from there. `manage.py sync_customers` uses `stop_signals_interrupt()`; the task queue's workers raise
it from their own SIGTERM handler (syncs.cluster). Only SIGKILL leaves a sync for the lease to reap.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class SyncInterrupted(KeyboardInterrupt):
    """A stop signal arrived. A KeyboardInterrupt, so that no error handling on the way (the HTTP layer's retries,
    an `except Exception`) takes it for a failure, and psycopg cancels a query in flight as it does on Ctrl-C."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        self.signal_name = signal.Signals(signum).name
        super().__init__(f"stopped by {self.signal_name}")

    @property
    def exit_code(self) -> int:
        """What a process stopped by this signal exits with (the shell's 128 + N)."""
        return 128 + self.signum


def interruption_name(exc: BaseException) -> str:
    """How a sync's record names what stopped it: the signal, or the exception (a KeyboardInterrupt, SystemExit)."""
    if isinstance(exc, SyncInterrupted):
        return exc.signal_name
    if type(exc) is KeyboardInterrupt:
        return "SIGINT"
    return type(exc).__name__


@contextmanager
def stop_signals_interrupt() -> Iterator[None]:
    """Within the block, the first SIGTERM or SIGINT raises SyncInterrupted in this (main) thread; any later one is
    ignored while the interruption is recorded. The previous handlers come back when the block ends. Outside the
    main thread (where Python cannot install handlers) it changes nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    raised = False

    def handler(signum: int, frame: FrameType | None) -> None:
        nonlocal raised
        if raised:
            return
        raised = True
        raise SyncInterrupted(signum)

    previous: dict[int, Any] = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


__all__ = ["STOP_SIGNALS", "SyncInterrupted", "interruption_name", "stop_signals_interrupt"]

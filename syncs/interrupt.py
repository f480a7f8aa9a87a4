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
from dataclasses import dataclass
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


@dataclass
class _Stop:
    raised: bool = False  # SyncInterrupted was raised: later signals are ignored while it is recorded
    pending: int | None = None  # a signal that came inside a deferred block
    deferred: int = 0  # depth of stop_signals_deferred() blocks


_stop = _Stop()


def deliver(signum: int) -> None:
    """What a stop signal's handler calls (in the main thread): raise SyncInterrupted now, or at the end of the
    stop_signals_deferred() block the thread is in; nothing if it was raised already."""
    if _stop.raised:
        return
    if _stop.deferred:
        _stop.pending = signum
        return
    _stop.raised = True
    raise SyncInterrupted(signum)


def reset() -> None:
    """Forget an earlier interruption (a new run of a process that handled one)."""
    _stop.raised, _stop.pending, _stop.deferred = False, None, 0


@contextmanager
def stop_signals_deferred() -> Iterator[None]:
    """A stop signal inside the block takes effect when it ends (if it ends without an error): what must not be
    cut in two (the writer's transaction of a page, begun and ended by hand) runs inside one. The pages are short."""
    _stop.deferred += 1
    try:
        yield
    finally:
        _stop.deferred -= 1
    if not _stop.deferred and _stop.pending is not None and not _stop.raised:
        signum, _stop.pending = _stop.pending, None
        _stop.raised = True
        raise SyncInterrupted(signum)


@contextmanager
def stop_signals_interrupt() -> Iterator[None]:
    """Within the block, the first SIGTERM or SIGINT raises SyncInterrupted in this (main) thread (at once, or at the
    end of a stop_signals_deferred() block); any later one is ignored while the interruption is recorded. The
    previous handlers come back when the block ends. Outside the main thread (where Python cannot install
    handlers) it changes nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    reset()

    def handler(signum: int, frame: FrameType | None) -> None:
        deliver(signum)

    previous: dict[int, Any] = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


__all__ = [
    "STOP_SIGNALS",
    "SyncInterrupted",
    "deliver",
    "interruption_name",
    "reset",
    "stop_signals_deferred",
    "stop_signals_interrupt",
]

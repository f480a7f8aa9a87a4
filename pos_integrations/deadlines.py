"""Total deadlines for POS calls: how long one call (a lookup, a create, a sync page...) may take, retries,
backoff, Retry-After waits and token fetches included, so a POS that accepts connections and never answers
holds nothing for longer than its caller can afford."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

# A try needs at least this long to be worth starting: a retry that would have less is not made.
MIN_TRY_SECONDS = 0.2


@dataclass(frozen=True, slots=True)
class Deadlines:
    """The total time each kind of POS call may take (seconds), retries included."""

    lookup: float = 5.0  # a live lookup inside an API request (search, one customer by id)
    connection: float = 10.0  # the admin's connection test
    create: float = 15.0  # a create inside an API request, reading the new customer back included
    page: float = 45.0  # one page of a sync's listing (and any call made outside the kinds above)

    def __post_init__(self) -> None:
        for name in ("lookup", "connection", "create", "page"):
            if not getattr(self, name) > 0:
                raise ValueError(f"the {name} deadline must be positive")


class TryTimeout(tuple[float, float]):
    """One try's (connect, read) timeouts, as requests takes them, and `total`: the seconds its whole answer may
    take (the deadline's time left), which the session's adapter holds every read to (pos_integrations.transport)."""

    total: float

    def __new__(cls, connect: float, read: float, *, total: float) -> TryTimeout:
        timeout = super().__new__(cls, (connect, read))
        timeout.total = total
        return timeout


class Deadline:
    """One call's deadline, on a monotonic clock; `interactive` when someone is waiting for the call (a lookup,
    a create, the connection test), which the rate limiter serves before a sync's pages."""

    __slots__ = ("clock", "expires_at", "interactive", "seconds")

    def __init__(
        self, seconds: float, *, clock: Callable[[], float] = time.monotonic, interactive: bool = False
    ) -> None:
        self.clock = clock
        self.seconds = seconds
        self.expires_at = clock() + seconds
        self.interactive = interactive

    def remaining(self) -> float:
        """Seconds left (0 once passed)."""
        return max(0.0, self.expires_at - self.clock())

    def allows(self, wait: float) -> bool:
        """Whether waiting `wait` seconds still leaves time for a try worth making."""
        return self.remaining() - wait >= MIN_TRY_SECONDS

    def cap(self, timeout: tuple[float, float]) -> TryTimeout:
        """The per-try (connect, read) timeouts, each cut to the time left, with the time left as the total."""
        left = max(self.remaining(), 0.001)
        return TryTimeout(min(timeout[0], left), min(timeout[1], left), total=left)

    def __repr__(self) -> str:
        return f"<Deadline {self.seconds:g} s, {self.remaining():.2f} s left>"


DEFAULT_DEADLINES = Deadlines()

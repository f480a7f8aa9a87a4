"""A client-side rate limiter per POS credential, shared by every process that uses the credential.

One mechanism: a sliding window of request counts per credential (slots of 1/50 of the window), plus
what the POS itself said (a `Retry-After` block; `X-RateLimit-Remaining` until `X-RateLimit-Reset`, once under
half of `X-RateLimit-Limit`) and an AIMD limit learnt from 429s (halved on a 429, growing back a tenth a window), for
vendors that publish no limit (Treez) and for a published limit that turns out too high. The decisions are
pure functions of one small JSON state per credential (`admit`, `observe`); a `BucketStore` runs them as one
atomic read-modify-write: in this process (`MemoryBucketStore`), on Redis (`RedisBucketStore`), or in the
database (stores.ratelimit, with its own connection).

Calls have a priority. Interactive ones (a live lookup, a create, the connection test) may use the whole
window; background ones (a sync's pages) leave a reserve (`reserve_share`, at least one request) for them, so a
lookup is never queued behind a running sync. Every wait counts inside the call's deadline: a call whose budget
cannot be had in time is refused at once (`BudgetUnavailable`), without sleeping for nothing.

A store that fails (Redis down, a database lock held too long) lets the request through, logged: the POS's own
429s and the HTTP layer's retries still hold, and a broken limiter must not stop every POS call.

Counted by the wall clock (time.time), which every process on the machines sharing a store must agree on
(NTP); the window is padded by `WINDOW_MARGIN` against clock and network jitter.
"""

from __future__ import annotations

import email.utils
import functools
import hashlib
import json
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from .deadlines import Deadline

logger = logging.getLogger("pos_integrations.ratelimit")

T = TypeVar("T")
State = dict[str, Any]

# The window is counted this much longer than published (a fraction of it, at least MIN_MARGIN seconds): requests
# reach the POS a little later or earlier than they left, and the POS's window does not start where ours does.
WINDOW_MARGIN = 0.02
MIN_MARGIN = 0.05
# A window is counted in this many slots (a request counts as if sent at its slot's end: a window may hold up to a
# slot's worth of time less than allowed); a state holds at most this many slots, fewer with fewer requests.
MAX_SLOTS = 50
# With no known limit, requests are still counted over this window, so a 429 says at what rate it came.
ADAPTIVE_WINDOW = 1.0
ADAPTIVE_SLOTS = 20
DECREASE = 0.5  # a 429 halves the rate...
INCREASE = 0.1  # ...which then grows by a tenth of the halved limit (at least one request) per window


class BudgetUnavailable(Exception):
    """The rate budget cannot be had within the call's deadline: `wait` seconds would be needed."""

    def __init__(self, wait: float) -> None:
        super().__init__(f"no rate budget for {wait:.2f} s")
        self.wait = wait


class BucketStoreError(Exception):
    """The store could not be read or written (the limiter then lets the request through). `busy`: it answered,
    but another process held the budget's lock past the store's timeout; worth asking again."""

    def __init__(self, message: str, *, busy: bool = False) -> None:
        super().__init__(message)
        self.busy = busy


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most `requests` per `seconds`."""

    requests: int
    seconds: float

    def __post_init__(self) -> None:
        if self.requests < 1 or not (self.seconds > 0 and math.isfinite(self.seconds)):
            raise ValueError("a rate limit needs at least one request per a positive number of seconds")

    _UNITS = {"": 1.0, "s": 1.0, "sec": 1.0, "second": 1.0, "m": 60.0, "min": 60.0, "minute": 60.0, "h": 3600.0}

    @classmethod
    def parse(cls, text: str) -> RateLimit:
        """`120/min`, `59/s`, `5/1s`, `10000/5min`, `1000/60` (seconds)."""
        match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+(?:\.\d+)?)?\s*([a-z]*)\s*", text.lower())
        unit = cls._UNITS.get(match.group(3)) if match else None
        if match is None or unit is None or (match.group(2) is None and not match.group(3)):
            raise ValueError(f"{text!r} is not a rate such as 120/min, 59/s or 10000/5min")
        return cls(int(match.group(1)), float(match.group(2) or 1) * unit)

    def __str__(self) -> str:
        return f"{self.requests}/{self.seconds:g}s"


def parse_overrides(text: str, vendors: tuple[str, ...]) -> dict[str, RateLimit | None]:
    """`leaflogix=100/min,treez=20/s,blaze=off` -> {vendor: limit, or None for no fixed limit (429s only)}."""
    result: dict[str, RateLimit | None] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        vendor, sep, value = (s.strip() for s in part.partition("="))
        if not sep or vendor not in vendors:
            raise ValueError(f"{part!r}: expected VENDOR=RATE with VENDOR one of {', '.join(vendors)}")
        result[vendor] = None if value.lower() in ("off", "none") else RateLimit.parse(value)
    return result


def credential_key(vendor: str, base_url: str, values: list[str]) -> str:
    """Who shares a budget: a hash of the vendor, its root URL and the credential values naming the budget
    (never the values themselves, in keys, rows or logs)."""
    payload = json.dumps([vendor, base_url.rstrip("/").lower(), values], separators=(",", ":"))
    return f"{vendor}:{hashlib.sha256(payload.encode()).hexdigest()[:40]}"


@dataclass(frozen=True, slots=True)
class Rule:
    """How one credential is limited: its fixed limit (None: none known) and the share kept for interactive calls."""

    limit: RateLimit | None
    reserve_share: float = 0.1

    @property
    def window(self) -> float:
        return self.limit.seconds if self.limit else ADAPTIVE_WINDOW

    @property
    def slot(self) -> float:
        """The length of one counting slot."""
        return self.window / (MAX_SLOTS if self.limit else ADAPTIVE_SLOTS)

    @property
    def counted(self) -> float:
        """The window as counted: padded by the margin."""
        return self.window + max(MIN_MARGIN, self.window * WINDOW_MARGIN)

    def reserve(self, limit: int) -> int:
        """Requests of a window that background calls leave to interactive ones."""
        if limit < 2 or self.reserve_share <= 0:
            return 0
        return min(limit - 1, max(1, math.ceil(limit * self.reserve_share)))


@dataclass(slots=True)
class Bucket:
    """One credential's state: counted slots, a block, the POS's own count, the learnt limit."""

    slots: dict[float, int] = field(default_factory=dict)  # slot start (epoch seconds) -> requests
    blocked_until: float = 0.0
    server: tuple[int, float, int] | None = None  # (remaining, reset at, sent since)
    learnt: tuple[int, float] | None = None  # (limit after the last 429, when)

    @classmethod
    def load(cls, state: State | None) -> Bucket:
        if not state:
            return cls()
        server = state.get("r")
        learnt = state.get("a")
        return cls(
            slots={float(start): int(count) for start, count in state.get("s", [])},
            blocked_until=float(state.get("b", 0.0)),
            server=(int(server[0]), float(server[1]), int(server[2])) if server else None,
            learnt=(int(learnt[0]), float(learnt[1])) if learnt else None,
        )

    def dump(self) -> State:
        state: State = {"s": [[start, count] for start, count in sorted(self.slots.items())]}
        if self.blocked_until:
            state["b"] = self.blocked_until
        if self.server:
            state["r"] = list(self.server)
        if self.learnt:
            state["a"] = list(self.learnt)
        return state

    def prune(self, now: float, rule: Rule) -> None:
        slot = rule.slot
        oldest = now - rule.counted - slot
        self.slots = {start: count for start, count in self.slots.items() if start > oldest}
        if self.blocked_until <= now:
            self.blocked_until = 0.0
        if self.server and self.server[1] <= now:
            self.server = None
        if self.learnt and rule.limit and self.limit(now, rule) == rule.limit.requests:
            self.learnt = None  # grown back to the published limit

    def in_window(self, now: float, rule: Rule) -> int:
        since = now - rule.counted
        return sum(count for start, count in self.slots.items() if start + rule.slot > since)

    def limit(self, now: float, rule: Rule) -> int | None:
        """Requests allowed per window now (None: no limit)."""
        limits = [rule.limit.requests] if rule.limit else []
        if self.learnt:
            base, since = self.learnt
            grown = base + math.floor(max(1.0, base * INCREASE) * max(0.0, now - since) / rule.window)
            limits.append(grown)
        return min(limits) if limits else None

    def wait_for_slot(self, now: float, rule: Rule, threshold: int) -> float:
        """Seconds until fewer than `threshold` requests are counted in the window (0: now)."""
        since = now - rule.counted
        live = sorted((start, count) for start, count in self.slots.items() if start + rule.slot > since)
        left = sum(count for _, count in live)
        if left < threshold:
            return 0.0
        for start, count in live:
            left -= count
            if left < threshold:
                return start + rule.slot + rule.counted - now
        return rule.counted  # threshold 0: cannot happen (reserve < limit); a window is a safe answer

    def count(self, now: float, rule: Rule) -> None:
        start = math.floor(now / rule.slot) * rule.slot
        self.slots[start] = self.slots.get(start, 0) + 1
        if self.server:
            remaining, reset_at, sent = self.server
            self.server = (remaining, reset_at, sent + 1)


def admit(state: State | None, now: float, rule: Rule, *, interactive: bool) -> tuple[State, float]:
    """Count one request if the budget allows it now: (new state, 0.0); else (state, seconds to wait)."""
    bucket = Bucket.load(state)
    bucket.prune(now, rule)
    waits = [bucket.blocked_until - now] if bucket.blocked_until else []
    limit = bucket.limit(now, rule)
    if limit is not None:
        threshold = limit if interactive else limit - rule.reserve(limit)
        waits.append(bucket.wait_for_slot(now, rule, threshold))
    if bucket.server:
        remaining, reset_at, sent = bucket.server
        allowed = remaining if interactive else remaining - rule.reserve(limit or remaining)
        if sent >= allowed:
            waits.append(reset_at - now)
    wait = max(waits, default=0.0)
    if wait <= 0:
        bucket.count(now, rule)
    return bucket.dump(), max(0.0, wait)


@dataclass(frozen=True, slots=True)
class Signal:
    """What one answer said about the budget."""

    status: int
    retry_after: float | None = None
    limit: int | None = None
    remaining: int | None = None
    reset_in: float | None = None

    @property
    def worth_recording(self) -> bool:
        if self.status == 429 or self.retry_after is not None:
            return True
        # Plenty of requests left says nothing our own count does not (the POS's limit is the published one).
        if self.remaining is None or self.reset_in is None:
            return False
        return self.remaining == 0 or self.limit is None or self.remaining < self.limit / 2


def observe(state: State | None, now: float, rule: Rule, signal: Signal) -> State:
    """Record what an answer said: a Retry-After blocks everyone until then; a 429 halves the limit (once a
    window); X-RateLimit-Remaining holds until its reset (whoever else spends the key's budget)."""
    bucket = Bucket.load(state)
    bucket.prune(now, rule)
    if signal.retry_after is not None and signal.status in (429, 503):
        bucket.blocked_until = max(bucket.blocked_until, now + signal.retry_after)
    if signal.status == 429 and not (bucket.learnt and now - bucket.learnt[1] < rule.window):
        # Half the limit in force, or with none known, half the rate that met the 429.
        current = bucket.limit(now, rule)
        base = current if current is not None else max(1, bucket.in_window(now, rule))
        bucket.learnt = (max(1, math.floor(base * DECREASE)), now)
    if signal.remaining is not None and signal.reset_in is not None:
        bucket.server = (max(0, signal.remaining), now + signal.reset_in, 0)
    return bucket.dump()


def _number(value: str | None) -> float | None:
    try:
        number = float(value) if value is not None else None
    except ValueError:
        return None
    return number if number is not None and math.isfinite(number) else None


def reset_seconds(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds until the POS's window resets: X-RateLimit-ResetSeconds, or X-RateLimit-Reset as seconds, an
    epoch time or a date (ISO 8601 or HTTP)."""
    seconds = _number(headers.get("X-RateLimit-ResetSeconds"))
    if seconds is not None:
        return max(0.0, seconds)
    text = (headers.get("X-RateLimit-Reset") or "").strip()
    if not text:
        return None
    number = _number(text)
    if number is not None:
        return max(0.0, number - now if number > 1e9 else number)
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        seconds = http_date_seconds(text, now)
        return None if seconds is None else max(0.0, seconds)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)


def http_date_seconds(text: str, now: float) -> float | None:
    """Seconds from `now` (an epoch time) until an HTTP date (RFC 9110: `Wed, 02 Dec 2026 06:00:00 GMT`; a date
    without a zone is UTC); None for text that is not one. Negative for a date passed."""
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp() - now


def signal_from(status: int, headers: Mapping[str, str], now: float, retry_after: float | None) -> Signal:
    """The budget signal in one answer's status and headers (`retry_after` already read by the HTTP layer)."""
    limit = _number(headers.get("X-RateLimit-Limit"))
    remaining = _number(headers.get("X-RateLimit-Remaining"))
    return Signal(
        status=status,
        retry_after=retry_after,
        limit=int(limit) if limit is not None and limit >= 1 else None,
        remaining=int(remaining) if remaining is not None else None,
        reset_in=reset_seconds(headers, now) if remaining is not None else None,
    )


class BucketStore(Protocol):
    """Runs `change` on one key's state atomically (across every process sharing the store)."""

    def update(self, key: str, change: Callable[[State | None], tuple[State, T]], *, ttl: float) -> T: ...

    def thread_done(self) -> None:
        """The calling thread will not use the store again (a store with per-thread connections closes its)."""


class MemoryBucketStore:
    """This process only (tests, and a single process that needs nothing shared)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._states: dict[str, State] = {}

    def thread_done(self) -> None:
        pass

    def update(self, key: str, change: Callable[[State | None], tuple[State, T]], *, ttl: float) -> T:
        with self._lock:
            state, result = change(self._states.get(key))
            self._states[key] = state
            return result


class RedisBucketStore:
    """On a Redis server: WATCH the key, run the change, write it in MULTI/EXEC (again if another client wrote
    meanwhile). Keys expire `ttl` after their last write."""

    PREFIX = "customer-flow:pos-rate:"

    def __init__(self, url: str, *, timeout: float = 2.0) -> None:
        import redis

        self._redis = redis
        self.client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)

    def thread_done(self) -> None:
        pass

    def update(self, key: str, change: Callable[[State | None], tuple[State, T]], *, ttl: float) -> T:
        name = self.PREFIX + key
        try:
            with self.client.pipeline() as pipe:
                for _ in range(50):
                    try:
                        pipe.watch(name)
                        raw = pipe.get(name)
                        state, result = change(json.loads(raw) if raw else None)
                        pipe.multi()
                        pipe.set(name, json.dumps(state, separators=(",", ":")), ex=max(1, math.ceil(ttl)))
                        pipe.execute()
                        return result
                    except self._redis.WatchError:
                        continue
        except self._redis.RedisError as exc:
            raise BucketStoreError(f"Redis: {type(exc).__name__}") from exc
        raise BucketStoreError("Redis: the key kept changing (50 tries)")


@dataclass(frozen=True, slots=True)
class RateLimits:
    """The limiter's configuration for the clients of a process: where budgets are kept, per-vendor overrides of
    the published limits (None: no fixed limit), and the share of a window kept for interactive calls."""

    store: BucketStore
    overrides: Mapping[str, RateLimit | None] = field(default_factory=dict)
    reserve_share: float = 0.1
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.time

    def limiter(self, vendor: str, key: str, published: RateLimit | None) -> RateLimiter:
        limit = self.overrides.get(vendor, published)
        return RateLimiter(
            self.store, key, Rule(limit, self.reserve_share), vendor=vendor, sleep=self.sleep, clock=self.clock
        )


class RateLimiter:
    """One credential's budget; thread-safe (the store serializes), shared through the store."""

    BUSY_TRIES = 4  # pauses of 0.1, 0.2, 0.4 and 0.8 s: 1.5 s more at most, within the call's deadline
    BUSY_PAUSE = 0.1

    def __init__(
        self,
        store: BucketStore,
        key: str,
        rule: Rule,
        *,
        vendor: str = "",
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.key = key
        self.rule = rule
        self.vendor = vendor
        self.sleep = sleep
        self.clock = clock
        # A key unused this long has nothing worth keeping (the longest of a window, a block, a learnt limit).
        self.ttl = max(3600.0, 20 * rule.counted)

    def __repr__(self) -> str:
        return f"<RateLimiter {self.key} {self.rule.limit or 'adaptive'}>"

    def thread_done(self) -> None:
        """The calling thread is done with this budget (a thread that fetched pages ahead, ending)."""
        self.store.thread_done()

    def acquire(self, deadline: Deadline, *, interactive: bool) -> float:
        """Take one request's budget, waiting while the deadline allows; returns the seconds waited.
        Raises BudgetUnavailable (without waiting) when it cannot be had in time."""
        waited = 0.0
        busy_tries = 0
        while True:
            left = deadline.remaining()
            try:
                wait = self.store.update(self.key, functools.partial(self._admit, interactive), ttl=self.ttl)
            except BucketStoreError as exc:
                # A store that is only busy (other processes taking their turns) is asked again, after a short
                # pause, while the deadline leaves time for the pause and another ask as long as this one; one
                # that is down lets the request through at once.
                pause = self.BUSY_PAUSE * 2**busy_tries
                took = left - deadline.remaining()
                if exc.busy and busy_tries < self.BUSY_TRIES and deadline.allows(pause + took):
                    busy_tries += 1
                    self.sleep(pause)
                    waited += pause
                    continue
                self._store_failed(exc)
                return waited
            if wait <= 0:
                return waited
            if not deadline.allows(wait):
                raise BudgetUnavailable(wait)
            self.sleep(wait)
            waited += wait

    def _admit(self, interactive: bool, state: State | None) -> tuple[State, float]:
        # The time is read inside the store's critical section (again on each optimistic retry): a request is
        # counted when it is let go, not when it began to wait for the store.
        return admit(state, self.clock(), self.rule, interactive=interactive)

    def record(self, status: int, headers: Mapping[str, str], retry_after: float | None) -> None:
        """Record what an answer said about the budget (only when it says something)."""
        signal = signal_from(status, headers, self.clock(), retry_after)
        if not signal.worth_recording:
            return
        try:
            self.store.update(self.key, functools.partial(self._observe, signal), ttl=self.ttl)
        except BucketStoreError as exc:
            self._store_failed(exc)

    def _observe(self, signal: Signal, state: State | None) -> tuple[State, None]:
        return observe(state, self.clock(), self.rule, signal), None

    def _store_failed(self, exc: BucketStoreError) -> None:
        logger.warning(
            "%s rate limiter unavailable (%s); request sent unlimited",
            self.vendor,
            exc,
            extra={"pos_vendor": self.vendor},
        )


__all__ = [
    "BucketStore",
    "BucketStoreError",
    "BudgetUnavailable",
    "MemoryBucketStore",
    "RateLimit",
    "RateLimiter",
    "RateLimits",
    "RedisBucketStore",
    "Rule",
    "admit",
    "credential_key",
    "observe",
    "parse_overrides",
]

"""The client-side rate limiter: windows never over the limit, the reserve for interactive calls, what answers
say (Retry-After, X-RateLimit-*), 429s teaching a limit, deadlines, and keys that carry no secret."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import responses
from hypothesis import given
from hypothesis import strategies as st

from pos_integrations import PosRateLimited, PosUnavailable, get_client
from pos_integrations.deadlines import MIN_TRY_SECONDS, Deadline
from pos_integrations.http import HttpClient
from pos_integrations.ratelimit import (
    BucketStoreError,
    BudgetUnavailable,
    MemoryBucketStore,
    RateLimit,
    RateLimiter,
    RateLimits,
    Rule,
    parse_overrides,
)
from pos_integrations.vendors import PUBLISHED_RATE_LIMITS, VENDORS

from .conftest import BASES, CREDENTIALS, SECRET

URL = "https://api.test/thing"


class Clock:
    """A wall clock that sleeping moves on; every sleep is recorded."""

    def __init__(self) -> None:
        self.now = 1_000_000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        self.now += seconds


def limiter(clock: Clock, limit: RateLimit | None, store: Any = None, reserve: float = 0.1) -> RateLimiter:
    return RateLimiter(store or MemoryBucketStore(), "k", Rule(limit, reserve), sleep=clock.sleep, clock=clock)


def deadline(clock: Clock, seconds: float = 600.0, *, interactive: bool = False) -> Deadline:
    return Deadline(seconds, clock=clock, interactive=interactive)


def http(clock: Clock, limiter: RateLimiter) -> HttpClient:
    client = HttpClient(
        vendor="blaze", label="Blaze", base_url="https://api.test", sleep=clock.sleep, wall_clock=clock, clock=clock
    )
    client.limiter = limiter
    return client


def windows_over(times: list[float], limit: RateLimit) -> list[float]:
    """Start times of windows (of the limit's length) holding more requests than it allows."""
    times = sorted(times)
    return [t for i, t in enumerate(times) if sum(1 for u in times[i:] if u < t + limit.seconds) > limit.requests]


def test_rates_and_overrides_parse() -> None:
    assert RateLimit.parse("120/min") == RateLimit(120, 60.0)
    assert RateLimit.parse("59/s") == RateLimit(59, 1.0)
    assert RateLimit.parse("5/1s") == RateLimit(5, 1.0)
    assert RateLimit.parse("10000/5min") == RateLimit(10_000, 300.0)
    assert RateLimit.parse("1000/60") == RateLimit(1000, 60.0)
    assert parse_overrides("leaflogix=100/min, treez=off", VENDORS) == {
        "leaflogix": RateLimit(100, 60.0),
        "treez": None,
    }
    for bad in ("leaflogix=fast", "square=5/s", "treez", "blaze=0/s", "blaze=5/0s"):
        with pytest.raises(ValueError, match=r"VENDOR=RATE|is not a rate|at least one request"):
            parse_overrides(bad, VENDORS)


@given(
    gaps=st.lists(st.floats(min_value=0, max_value=0.4), min_size=1, max_size=60),
    interactive=st.lists(st.booleans(), min_size=60, max_size=60),
    requests=st.integers(min_value=1, max_value=12),
)
def test_no_window_ever_holds_more_requests_than_the_limit(
    gaps: list[float], interactive: list[bool], requests: int
) -> None:
    clock = Clock()
    limit = RateLimit(requests, 1.0)
    budget = limiter(clock, limit)
    sent: list[float] = []
    for gap, urgent in zip(gaps, interactive, strict=False):
        clock.now += gap
        budget.acquire(deadline(clock, interactive=urgent), interactive=urgent)
        sent.append(clock.now)
    assert windows_over(sent, limit) == []


def test_a_sync_leaves_the_reserve_to_interactive_calls() -> None:
    clock = Clock()
    budget = limiter(clock, RateLimit(20, 1.0))
    for _ in range(18):  # a sync may use 18 of 20 (a tenth kept back)
        assert budget.acquire(deadline(clock), interactive=False) == 0.0
    with pytest.raises(Exception, match="no rate budget"):
        budget.acquire(deadline(clock, 0.5), interactive=False)
    for _ in range(2):  # the lookups get theirs at once
        assert budget.acquire(deadline(clock, 5, interactive=True), interactive=True) == 0.0
    # Then even a lookup waits for the window to move on (within its deadline).
    assert budget.acquire(deadline(clock, 5, interactive=True), interactive=True) > 0.9


def test_a_retry_after_stops_every_client_of_the_credential(rsps: responses.RequestsMock) -> None:
    clock = Clock()
    store = MemoryBucketStore()
    first, second = http(clock, limiter(clock, RateLimit(100, 60.0), store)), http(clock, limiter(clock, None, store))
    rsps.add(responses.GET, URL, status=429, headers={"Retry-After": "3"})
    rsps.add(responses.GET, URL, json={"n": 2})
    with pytest.raises(PosRateLimited):
        first.request("GET", "/thing", idempotent=False)  # not retried: it gives up at once
    assert clock.sleeps == []
    # The second client of the credential (another process, say) was told nothing, yet waits out the 3 s too.
    assert second.get_json("/thing") == {"n": 2}
    assert clock.sleeps == [3.0]


def test_a_lookup_that_cannot_get_budget_in_time_fails_at_once_as_a_timeout(rsps: responses.RequestsMock) -> None:
    clock = Clock()
    client = http(clock, limiter(clock, RateLimit(100, 60.0)))
    rsps.add(responses.GET, URL, status=429, headers={"Retry-After": "30"})
    with pytest.raises(PosRateLimited):
        client.request("GET", "/thing", idempotent=False)
    clock.sleeps.clear()
    with client.deadline(5.0, interactive=True), pytest.raises(PosUnavailable) as caught:
        client.get_json("/thing")
    assert caught.value.deadline_passed
    assert clock.sleeps == []  # no sleeping for nothing
    assert len(rsps.calls) == 1  # and nothing sent


def test_a_sync_page_that_cannot_get_budget_in_time_is_told_when_to_come_back(rsps: responses.RequestsMock) -> None:
    clock = Clock()
    client = http(clock, limiter(clock, RateLimit(2, 300.0)))
    rsps.add(responses.GET, URL, json={})
    with client.deadline(45.0):
        client.get_json("/thing")  # the one background request of the window (the other is kept for lookups)
    with client.deadline(45.0), pytest.raises(PosRateLimited) as caught:
        client.get_json("/thing")
    assert caught.value.retry_after is not None
    assert 300 < caught.value.retry_after < 310
    assert len(rsps.calls) == 1


def test_x_ratelimit_remaining_holds_until_its_reset(rsps: responses.RequestsMock) -> None:
    clock = Clock()
    client = http(clock, limiter(clock, RateLimit(1000, 60.0)))
    headers = {"X-RateLimit-Limit": "1000", "X-RateLimit-Remaining": "0", "X-RateLimit-ResetSeconds": "7"}
    rsps.add(responses.GET, URL, json={}, headers=headers)
    rsps.add(responses.GET, URL, json={}, headers={**headers, "X-RateLimit-Remaining": "999"})
    client.get_json("/thing")
    assert clock.sleeps == []
    client.get_json("/thing")  # the POS said none left (other users of the key): wait for its reset
    assert clock.sleeps == [7.0]


def test_x_ratelimit_reset_as_a_utc_time() -> None:
    clock = Clock()
    budget = limiter(clock, None)
    reset = "1970-01-12T13:47:00Z"  # 1,000,020 s after the epoch: 20 s from the clock's now
    budget.record(200, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset}, None)
    assert budget.acquire(deadline(clock), interactive=False) == 20.0


def test_x_ratelimit_remaining_counts_what_others_spend_on_the_key() -> None:
    clock = Clock()
    budget = limiter(clock, RateLimit(1000, 60.0), reserve=0)
    # Our own count is low, but the POS says 3 of 1000 are left for 10 s: someone else uses the key.
    budget.record(200, {"X-RateLimit-Limit": "1000", "X-RateLimit-Remaining": "3", "X-RateLimit-Reset": "10"}, None)
    for _ in range(3):
        assert budget.acquire(deadline(clock), interactive=False) == 0.0
    assert budget.acquire(deadline(clock), interactive=False) == 10.0
    # Plenty left says nothing our count does not: not even written.
    store = MemoryBucketStore()
    quiet = limiter(clock, RateLimit(1000, 60.0), store)
    quiet.record(200, {"X-RateLimit-Limit": "1000", "X-RateLimit-Remaining": "900", "X-RateLimit-Reset": "10"}, None)
    assert store._states == {}


def test_without_a_known_limit_429s_teach_one_that_grows_back() -> None:
    clock = Clock()
    budget = limiter(clock, None, reserve=0)  # Treez: nothing published
    for _ in range(40):  # 40 a second is fine...
        assert budget.acquire(deadline(clock), interactive=False) == 0.0
        clock.now += 0.025
    budget.record(429, {}, None)  # ...until the POS says no: half that rate from now on
    sent = []
    for _ in range(60):
        budget.acquire(deadline(clock), interactive=False)
        sent.append(clock.now)
    # Half the rate, growing back by a tenth of that (2) a second: 60 requests take over 2 s, not 1.5 s.
    assert sent[-1] - sent[0] > 2.0
    assert windows_over(sent, RateLimit(26, 1.0)) == []
    clock.now += 60  # a minute without a 429: grown back well past it
    start = clock.now
    for _ in range(40):
        budget.acquire(deadline(clock), interactive=False)
    assert clock.now - start < 0.5


def test_a_429_under_a_published_limit_halves_it_once_a_window() -> None:
    clock = Clock()
    budget = limiter(clock, RateLimit(10, 1.0), reserve=0)
    budget.record(429, {}, None)
    budget.record(429, {}, None)  # a second 429 of the same window (another request in flight) changes nothing
    sent = []
    for _ in range(15):
        budget.acquire(deadline(clock), interactive=False)
        sent.append(clock.now)
    # 5 a second, growing back by one a second (halved twice, 15 requests would take over 4 s).
    assert windows_over(sent, RateLimit(7, 1.0)) == []
    assert 1.5 < sent[-1] - sent[0] < 3.5


class BrokenStore:
    def thread_done(self) -> None:
        pass

    def update(self, *args: Any, **kwargs: Any) -> Any:
        raise BucketStoreError("Redis: ConnectionError")


def test_a_broken_store_lets_requests_through_with_a_warning(
    rsps: responses.RequestsMock, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    client = http(clock, limiter(clock, RateLimit(1, 60.0), BrokenStore()))
    rsps.add(responses.GET, URL, json={})
    with caplog.at_level(logging.WARNING, logger="pos_integrations.ratelimit"):
        client.get_json("/thing")
        client.get_json("/thing")
    assert len(rsps.calls) == 2
    assert "rate limiter unavailable (Redis: ConnectionError); request sent unlimited" in caplog.text


class BusyStore(MemoryBucketStore):
    """A store whose lock other processes hold for the first `busy` asks (SQLite's "database is locked")."""

    def __init__(self, busy: int) -> None:
        super().__init__()
        self.busy = busy
        self.asks = 0

    def update(self, *args: Any, **kwargs: Any) -> Any:
        self.asks += 1
        if self.asks <= self.busy:
            raise BucketStoreError("database: OperationalError", busy=True)
        return super().update(*args, **kwargs)


def test_a_busy_store_is_asked_again_and_its_budget_kept(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    store = BusyStore(busy=2)
    budget = limiter(clock, RateLimit(1, 60.0), store, reserve=0.0)
    with caplog.at_level(logging.WARNING, logger="pos_integrations.ratelimit"):
        budget.acquire(deadline(clock), interactive=False)
    assert clock.sleeps == [0.1, 0.2]  # two short pauses, then the budget was had from the store
    assert "unavailable" not in caplog.text
    with pytest.raises(BudgetUnavailable):  # and it counts: the next request has to wait for the window
        budget.acquire(deadline(clock, 5.0), interactive=False)


def test_a_store_busy_for_good_lets_the_request_through_within_its_deadline(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    with caplog.at_level(logging.WARNING, logger="pos_integrations.ratelimit"):
        limiter(clock, RateLimit(1, 60.0), BusyStore(busy=100)).acquire(deadline(clock), interactive=False)
    assert sum(clock.sleeps) == pytest.approx(1.5)  # 0.1 + 0.2 + 0.4 + 0.8, then unlimited
    assert "rate limiter unavailable (database: OperationalError); request sent unlimited" in caplog.text
    # A call with little time left keeps enough of it for its request.
    clock = Clock()
    short = deadline(clock, 0.6, interactive=True)
    limiter(clock, RateLimit(1, 60.0), BusyStore(busy=100)).acquire(short, interactive=True)
    assert short.remaining() >= MIN_TRY_SECONDS


def keyed(vendor: str, **changes: str) -> str:
    limiter = get_client(
        vendor,
        base_url=BASES[vendor],
        credentials={**CREDENTIALS[vendor], **changes},
        rate_limits=RateLimits(store=MemoryBucketStore()),
    ).http.limiter
    assert limiter is not None
    return limiter.key


@pytest.mark.parametrize("vendor", VENDORS)
def test_the_budget_is_keyed_by_a_hash_never_the_secret(vendor: str) -> None:
    key = keyed(vendor)
    assert key.startswith(f"{vendor}:")
    assert len(key) <= 64
    assert SECRET not in key
    assert not any(value in key for value in CREDENTIALS[vendor].values() if len(value) > 4)


def test_blaze_shops_of_one_partner_key_share_its_budget() -> None:
    assert keyed("blaze", api_key="another-shop") == keyed("blaze")
    assert keyed("blaze", partner_key="another-partner") != keyed("blaze")
    assert keyed("leaflogix", api_key="another-location") != keyed("leaflogix")


def test_each_vendor_gets_its_published_limit_unless_overridden() -> None:
    limits = RateLimits(store=MemoryBucketStore(), overrides={"treez": RateLimit(5, 1.0), "blaze": None})
    rules = {
        vendor: get_client(
            vendor, base_url=BASES[vendor], credentials=CREDENTIALS[vendor], rate_limits=limits
        ).http.limiter.rule.limit  # type: ignore[union-attr]
        for vendor in VENDORS
    }
    assert rules == {
        "leaflogix": RateLimit(120, 60.0),
        "treez": RateLimit(5, 1.0),
        "flowhub": RateLimit(59, 1.0),
        "covasoft": RateLimit(1000, 60.0),
        "blaze": None,
    }


def test_the_published_limits_are_the_ones_the_sandbox_enforces() -> None:
    from pos_sandbox.vendors import DIALECTS

    for vendor, dialect in DIALECTS.items():
        published = dialect.published_rate_limit
        assert PUBLISHED_RATE_LIMITS[vendor] == (RateLimit(*published) if published else None), vendor

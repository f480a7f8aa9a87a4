"""Faults the sandbox injects, per vendor or for all, from a compact SPEC or the control API.

SPEC grammar (documented in README.md):  GROUP (";" GROUP)*  where  GROUP = [VENDOR ":"] ITEM ("," ITEM)*,
VENDOR is a vendor key or "*" (the default), and ITEM is KEY "=" VALUE, e.g.
"5xx=0.1,429=0.05,retry_after=2;treez:drop=0.02,malformed_record=1/1000;leaflogix:ratelimit=on".
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Collection, Iterable
from dataclasses import asdict, dataclass, fields
from typing import Any

ALL = "*"


class FaultSpecError(ValueError):
    """A fault SPEC or setting that cannot be understood; the message says which part and why."""


@dataclass(frozen=True)
class FaultSettings:
    """What one vendor suffers; every rate is a probability per request (per record for malformed_record)."""

    rate_5xx: float = 0.0
    rate_429: float = 0.0
    retry_after: int = 1  # seconds, sent with injected 429s
    slow: float = 0.0  # seconds added to a response
    slow_rate: float = 1.0  # share of responses that are slowed when `slow` is set
    drop: float = 0.0  # connection closed without an answer
    malformed_page: float = 0.0  # a listing page cut short: invalid JSON
    malformed_record: float = 0.0  # share of records (a stable choice per record) with an unreadable modified time
    token_ttl_requests: int | None = None  # tokens stop working after this many uses...
    token_ttl_seconds: float | None = None  # ...or this many seconds
    ratelimit: bool = False  # enforce the vendor's published rate limit (each vendor module declares it)
    ratelimit_requests: int | None = None  # override the vendor's limit: this many requests...
    ratelimit_window: float | None = None  # ...per this many seconds

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_FIELDS = {f.name: f for f in fields(FaultSettings)}
# SPEC keys -> settings fields; control-API JSON uses the field names directly.
_SPEC_KEYS = {
    "5xx": "rate_5xx",
    "429": "rate_429",
    "retry_after": "retry_after",
    "slow": "slow",
    "slow_rate": "slow_rate",
    "drop": "drop",
    "malformed_page": "malformed_page",
    "malformed_record": "malformed_record",
    "token_ttl": "token_ttl",
    "ratelimit": "ratelimit",
}
_RATE_FIELDS = frozenset({"rate_5xx", "rate_429", "slow_rate", "drop", "malformed_page", "malformed_record"})
RateLimit = tuple[int, float]  # requests per window seconds


def parse_rate(text: str, name: str) -> float:
    """0.1, 10% or 1/1000 -> a probability in [0, 1]."""
    t = text.strip()
    try:
        if t.endswith("%"):
            value = float(t[:-1]) / 100
        elif "/" in t:
            num, den = t.split("/", 1)
            value = float(num) / float(den)
        else:
            value = float(t)
    except (ValueError, ZeroDivisionError):
        raise FaultSpecError(f"{name}: {text!r} is not a rate (use 0.1, 10% or 1/1000)") from None
    if not 0.0 <= value <= 1.0 or math.isnan(value):
        raise FaultSpecError(f"{name}: {text!r} must be between 0 and 1")
    return value


def parse_seconds(text: str, name: str) -> float:
    """2, 2s, 1.5s or 200ms -> seconds."""
    t = text.strip().lower()
    scale = 1.0
    if t.endswith("ms"):
        t, scale = t[:-2], 0.001
    elif t.endswith("s"):
        t = t[:-1]
    elif t.endswith("m"):
        t, scale = t[:-1], 60.0
    try:
        value = float(t) * scale
    except ValueError:
        raise FaultSpecError(f"{name}: {text!r} is not a duration (use 2, 2s, 200ms or 1m)") from None
    if value < 0 or math.isnan(value) or math.isinf(value):
        raise FaultSpecError(f"{name}: {text!r} must be zero or more")
    return value


def _item(key: str, value: str) -> dict[str, Any]:
    """One SPEC item as settings fields."""
    name = _SPEC_KEYS.get(key)
    if name is None:
        raise FaultSpecError(f"unknown fault {key!r}; known: {', '.join(_SPEC_KEYS)}")
    if name in _RATE_FIELDS:
        return {name: parse_rate(value, key)}
    if name == "retry_after":
        return {name: math.ceil(parse_seconds(value, key))}
    if name == "slow":
        return {name: parse_seconds(value, key)}
    if name == "token_ttl":
        v = value.strip().lower()
        if v in ("off", "none", "0"):
            return {"token_ttl_requests": None, "token_ttl_seconds": None}
        if v.isdigit():
            return {"token_ttl_requests": int(v), "token_ttl_seconds": None}
        if v[-1:] in ("s", "m") or v.endswith("ms"):
            return {"token_ttl_requests": None, "token_ttl_seconds": parse_seconds(v, key)}
        raise FaultSpecError(f"token_ttl: {value!r} is a number of requests (50) or a duration (30s)")
    # ratelimit=on | off | N/WINDOW (e.g. 5/1s: five requests per second)
    v = value.strip().lower()
    if v in ("on", "true", "1", "yes"):
        return {"ratelimit": True, "ratelimit_requests": None, "ratelimit_window": None}
    if v in ("off", "false", "0", "no"):
        return {"ratelimit": False, "ratelimit_requests": None, "ratelimit_window": None}
    count, sep, window = v.partition("/")
    if not sep or not count.isdigit() or int(count) < 1:
        raise FaultSpecError(f"ratelimit: {value!r} must be on, off or REQUESTS/WINDOW such as 5/1s")
    seconds = parse_seconds(window, key)
    if seconds <= 0:
        raise FaultSpecError(f"ratelimit: the window in {value!r} must be more than zero")
    return {"ratelimit": True, "ratelimit_requests": int(count), "ratelimit_window": seconds}


def parse_spec(spec: str, vendors: Collection[str]) -> dict[str, dict[str, Any]]:
    """SPEC -> {vendor or "*": {field: value}} for these vendors; raises FaultSpecError naming the bad part."""
    out: dict[str, dict[str, Any]] = {}
    for raw_group in spec.split(";"):
        group = raw_group.strip()
        if not group:
            continue
        vendor = ALL
        head, sep, rest = group.partition(":")
        if sep and "=" not in head:
            vendor = head.strip().lower()
            group = rest
            if vendor != ALL and vendor not in vendors:
                known = ", ".join(vendors)
                raise FaultSpecError(f"unknown vendor {vendor!r} in {raw_group.strip()!r}; use * or one of {known}")
        target = out.setdefault(vendor, {})
        for raw_item in group.split(","):
            item = raw_item.strip()
            if not item:
                continue
            key, eq, value = item.partition("=")
            if not eq or not value.strip():
                raise FaultSpecError(f"{item!r} should be KEY=VALUE")
            target.update(_item(key.strip().lower(), value))
    return out


def coerce_settings(values: dict[str, Any]) -> dict[str, Any]:
    """Validate control-API JSON (settings field names or SPEC keys) into settings fields."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if key in _FIELDS:
            out.update(_coerce_field(key, value))
        elif key in _SPEC_KEYS:
            out.update(_item(key, str(value)))
        else:
            raise FaultSpecError(f"unknown fault setting {key!r}")
    return out


def _coerce_field(name: str, value: Any) -> dict[str, Any]:
    if value is None and name in ("token_ttl_requests", "token_ttl_seconds", "ratelimit_requests", "ratelimit_window"):
        return {name: None}
    if name == "ratelimit":
        if not isinstance(value, bool):
            raise FaultSpecError("ratelimit must be true or false")
        return {name: value}
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise FaultSpecError(f"{name} must be a number")
    if name in _RATE_FIELDS:
        return {name: parse_rate(str(value), name)}
    seconds = parse_seconds(str(value), name)
    if name in ("retry_after",):
        return {name: math.ceil(seconds)}
    if name in ("token_ttl_requests", "ratelimit_requests"):
        if seconds < 1 or seconds != int(seconds):
            raise FaultSpecError(f"{name} must be a whole number of at least 1")
        return {name: int(seconds)}
    return {name: seconds}


@dataclass
class Decision:
    """What happens to one request."""

    drop: bool = False
    status: int | None = None  # an injected 429 or 5xx
    delay: float = 0.0
    malformed_page: bool = False


class Faults:
    """Current fault settings per vendor and the seeded dice that apply them."""

    def __init__(
        self, *, vendors: Iterable[str], seed: int = 0, spec: str | dict[str, dict[str, Any]] | None = None
    ) -> None:
        self.vendors = tuple(vendors)
        self._lock = threading.Lock()
        self._seed = seed
        self._layers: dict[str, dict[str, Any]] = {}
        self._rngs = self._dice()
        self._effective: dict[str, FaultSettings] = {}
        self._windows: dict[str, tuple[float, int]] = {}
        if spec:
            self.apply(parse_spec(spec, self.vendors) if isinstance(spec, str) else spec)

    def _dice(self) -> dict[str, random.Random]:
        return {v: random.Random(f"{self._seed}:faults:{v}") for v in self.vendors}

    def parse(self, spec: str) -> dict[str, dict[str, Any]]:
        """A SPEC for these vendors as settings layers (see parse_spec)."""
        return parse_spec(spec, self.vendors)

    def apply(self, layers: dict[str, dict[str, Any]]) -> None:
        """Merge {vendor or "*": {field: value}} into the current settings."""
        with self._lock:
            for vendor, values in layers.items():
                if vendor != ALL and vendor not in self.vendors:
                    raise FaultSpecError(f"unknown vendor {vendor!r}")
                merged = {**self._layers.get(vendor, {}), **values}
                FaultSettings(**merged)  # type-checks the field names
                self._layers[vendor] = merged
            self._effective.clear()

    def set(self, vendor: str = ALL, **values: Any) -> None:
        """Change settings for one vendor (or "*"), e.g. faults.set("treez", rate_5xx=0.2)."""
        self.apply({vendor: coerce_settings(values)})

    def clear(self, vendor: str | None = None) -> None:
        """Switch every fault off (for one vendor's own layer, or everywhere)."""
        with self._lock:
            if vendor is None:
                self._layers.clear()
                self._rngs = self._dice()
            else:
                self._layers.pop(vendor, None)
            self._effective.clear()
            self._windows.clear()

    def settings(self, vendor: str) -> FaultSettings:
        """The settings in force for a vendor: its own layer over the "*" layer."""
        found = self._effective.get(vendor)
        if found is None:
            with self._lock:
                found = FaultSettings(**{**self._layers.get(ALL, {}), **self._layers.get(vendor, {})})
                self._effective[vendor] = found
        return found

    def state(self) -> dict[str, Any]:
        """Explicit layers and the effective settings per vendor (for GET /_control/state)."""
        with self._lock:
            layers = {k: dict(v) for k, v in self._layers.items()}
        return {"layers": layers, "effective": {v: self.settings(v).as_dict() for v in self.vendors}}

    def decide(self, vendor: str) -> Decision:
        """Roll the dice for one request; draws are made in a fixed order so a seed replays the same run."""
        s = self.settings(vendor)
        d = Decision()
        if not (s.drop or s.rate_5xx or s.rate_429 or s.slow or s.malformed_page):
            return d
        with self._lock:
            rng = self._rngs[vendor]
            r_drop, r_5xx, r_429, r_slow, r_page, r_code = (rng.random() for _ in range(6))
        if r_drop < s.drop:
            d.drop = True
            return d
        if s.slow and r_slow < s.slow_rate:
            d.delay = s.slow
        if r_429 < s.rate_429:
            d.status = 429
        elif r_5xx < s.rate_5xx:
            d.status = (500, 502, 503)[int(r_code * 3)]
        elif r_page < s.malformed_page:  # applied only if the answer turns out to be a page of customers
            d.malformed_page = True
        return d

    def rate_limit(self, vendor: str, published: RateLimit | None) -> tuple[bool, dict[str, str], float]:
        """Count a request against the vendor's limit: (allowed, X-RateLimit headers, seconds until reset).

        The limit is the `ratelimit=N/WINDOW` override, else the vendor's published one (None: no limit).
        """
        s = self.settings(vendor)
        if not s.ratelimit:
            return True, {}, 0.0
        if s.ratelimit_requests is not None and s.ratelimit_window is not None:
            limit, window = s.ratelimit_requests, s.ratelimit_window
        elif published is None:
            return True, {}, 0.0
        else:
            limit, window = published
        now = time.monotonic()
        with self._lock:
            start, used = self._windows.get(vendor, (now, 0))
            if now - start >= window:
                start, used = now, 0
            used += 1
            self._windows[vendor] = (start, used)
        reset_in = max(0.0, start + window - now)
        headers = {
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Remaining": str(max(0, limit - used)),
            "X-RateLimit-Reset": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + reset_in)),
            "X-RateLimit-ResetSeconds": str(math.ceil(reset_in)),
        }
        return used <= limit, headers, reset_in

"""Store.pos_vendor -> client class, and get_client() that builds one from plain values."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import requests

from .base import PosClient
from .blaze import BlazeClient
from .covasoft import CovaClient
from .deadlines import Deadlines
from .flowhub import FlowhubClient
from .http import DEFAULT_MAX_WAIT_SECONDS, DEFAULT_TIMEOUT, Timeout
from .leaflogix import LeafLogixClient
from .ratelimit import RateLimits
from .treez import TreezClient
from .vendors import VENDORS, CredentialsError

CLIENTS: dict[str, type[PosClient]] = {
    cls.vendor: cls for cls in (LeafLogixClient, TreezClient, FlowhubClient, CovaClient, BlazeClient)
}
assert set(CLIENTS) == set(VENDORS)


def get_client(
    vendor: str,
    *,
    base_url: str | None = None,
    credentials: Mapping[str, Any],
    store_label: str | None = None,
    session: requests.Session | None = None,
    sleep: Callable[[float], None] = time.sleep,
    max_wait_seconds: float = DEFAULT_MAX_WAIT_SECONDS,
    timeout: Timeout = DEFAULT_TIMEOUT,
    time_zone: str | None = None,
    deadlines: Deadlines | None = None,
    rate_limits: RateLimits | None = None,
    **options: Any,
) -> PosClient:
    """A client for this vendor; blank base_url means production, no time_zone the default (America/Los_Angeles),
    no deadlines the defaults (Deadlines()), no rate_limits no client-side rate limiter. Raises CredentialsError
    naming what is missing, ValueError for an unknown time zone."""
    try:
        cls = CLIENTS[vendor]
    except KeyError:
        raise CredentialsError(vendor, [], f"Unknown POS vendor {vendor!r}") from None
    return cls(
        credentials=credentials,
        base_url=base_url,
        store_label=store_label,
        session=session,
        sleep=sleep,
        max_wait_seconds=max_wait_seconds,
        timeout=timeout,
        time_zone=time_zone,
        deadlines=deadlines,
        rate_limits=rate_limits,
        **options,
    )


def field_mapping_table() -> str:
    """The README's field-mapping table, generated from each vendor's FIELD_SOURCES."""
    from .mapping import render_table
    from .vendors import VENDOR_LABELS

    return render_table({v: cls.FIELD_SOURCES for v, cls in CLIENTS.items()}, VENDOR_LABELS)

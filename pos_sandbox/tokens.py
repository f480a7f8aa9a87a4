"""Access tokens the sandbox issues (Treez v2, Cova), with lifetimes the `token_ttl` fault can shorten."""

from __future__ import annotations

import secrets
import threading
import time
from typing import Any

from .faults import Faults


class TokenStore:
    """Tokens issued per vendor; a check counts one use and forgets a token once it has expired."""

    def __init__(self, faults: Faults) -> None:
        self._faults = faults
        self._lock = threading.Lock()
        self._tokens: dict[str, list[Any]] = {}  # token -> [vendor, issued monotonic, uses]

    def issue(self, vendor: str) -> str:
        token = secrets.token_urlsafe(24)
        with self._lock:
            if len(self._tokens) > 50_000:  # forget the oldest half; a real server would too, eventually
                for old in list(self._tokens)[:25_000]:
                    del self._tokens[old]
            self._tokens[token] = [vendor, time.monotonic(), 0]
        return token

    def check(self, vendor: str, token: str, lifetime: float) -> bool:
        """True when the token is ours, for this vendor and still alive; counts one use."""
        s = self._faults.settings(vendor)
        with self._lock:
            entry = self._tokens.get(token)
            if entry is None or entry[0] != vendor:
                return False
            entry[2] += 1
            limit = min(lifetime, s.token_ttl_seconds) if s.token_ttl_seconds is not None else lifetime
            expired = time.monotonic() - entry[1] > limit or (
                s.token_ttl_requests is not None and entry[2] > s.token_ttl_requests
            )
            if expired:
                del self._tokens[token]
            return not expired

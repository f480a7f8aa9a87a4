"""JSON written straight to text, and the time formats the vendors use (json.dumps of dicts is 4x slower).

Each vendor module builds its records from these pieces. Every string that may hold user input goes through
`quote` (the C JSON string encoder), so created customers with any text still render valid JSON.
"""

from __future__ import annotations

from datetime import date, timedelta
from json.encoder import encode_basestring_ascii as quote

# Treez and Flowhub speak in the store's local time; the sandbox's stores sit at a fixed UTC-7.
LOCAL_OFFSET_MS = -7 * 3_600_000
LOCAL_OFFSET_TEXT = "-07:00"
DAY_MS = 86_400_000

# A malformed record (the malformed_record fault) keeps its id, so the sync can name it, but its modification
# time cannot be parsed by any reader.
BAD_TIME = '"not-a-date"'

# Day number since 1970 -> "YYYY-MM-DD" (a few tens of thousands of days are ever used). Hot paths look the
# cache up inline (`DAYS.get(d) or day_text(d)`) rather than pay for a call.
DAYS: dict[int, str] = {}


def day_text(days: int) -> str:
    """YYYY-MM-DD of a day number since 1970."""
    s = DAYS.get(days)
    if s is None:
        s = DAYS[days] = (date(1970, 1, 1) + timedelta(days=days)).isoformat()
    return s


_clock: dict[int, str] = {}  # second of the day -> "HH:MM:SS"; at most 86,400 entries


def iso_seconds(ms: int) -> str:
    """YYYY-MM-DDTHH:MM:SS of an epoch-ms time (UTC unless shifted first)."""
    # Three of these per record: two cache lookups are 5x faster than formatting each time.
    d, r = divmod(ms // 1000, 86400)
    clock = _clock.get(r)
    if clock is None:
        hh, rest = divmod(r, 3600)
        clock = _clock[r] = f"{hh:02d}:{rest // 60:02d}:{rest % 60:02d}"
    return f"{DAYS.get(d) or day_text(d)}T{clock}"


def nullable(s: str | None) -> str:
    """A JSON string, or null."""
    return "null" if s is None else quote(s)


def boolean(v: bool) -> str:
    return "true" if v else "false"


def array(items: list[str]) -> str:
    """A JSON array of already-rendered items."""
    return "[" + ",".join(items) + "]"


__all__ = [
    "BAD_TIME",
    "DAYS",
    "DAY_MS",
    "LOCAL_OFFSET_MS",
    "LOCAL_OFFSET_TEXT",
    "array",
    "boolean",
    "day_text",
    "iso_seconds",
    "nullable",
    "quote",
]

"""Tolerant readers for the value formats the five POS vendors send (see shared/pos-apis.md)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, tzinfo
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Vendors write 1900-01-01 (Dutchie) or 0001-01-01 (.NET) where they mean "no date".
_PLACEHOLDER_MAX_YEAR = 1900
_NUMERIC = re.compile(r"^-?\d+(\.\d+)?$")
_US_DATETIME_FORMATS = (
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y %I:%M:%S %p",
    "%m/%d/%Y %I:%M %p",
    "%m/%d/%Y",
)
_ISO_DATE_PREFIX = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:$|[T ])")
_US_DATE_PREFIX = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})(?:$| )")
_NOT_DIGITS = re.compile(r"[^0-9]")  # ASCII digits only (as before): not the digits of other scripts


def clean_str(value: Any) -> str:
    """Return the value as a stripped string; None becomes ""."""
    if type(value) is str:  # the common case first: this runs for every field of every record
        return value.strip()
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float | Decimal):
        return str(value).strip()
    raise ValueError(f"expected text, got {type(value).__name__}")


def optional_str(value: Any) -> str | None:
    """Like clean_str, but empty becomes None."""
    text = clean_str(value)
    return text or None


def require_id(value: Any) -> str:
    """A POS id as a non-empty string (Dutchie sends ints, the others strings)."""
    if isinstance(value, bool) or value is None:
        raise ValueError("missing customer id")
    text = clean_str(value)
    if not text:
        raise ValueError("missing customer id")
    return text


def parse_phone(value: Any) -> str:
    """Digits only; a US number written with its leading country code 1 keeps its 10 digits."""
    if value is None:
        return ""
    digits = _NOT_DIGITS.sub("", clean_str(value))
    if len(digits) == 11 and digits.startswith("1"):
        return digits[1:]
    return digits


def _from_epoch_ms(ms: float) -> datetime:
    try:
        return _EPOCH + timedelta(milliseconds=ms)
    except OverflowError:
        raise ValueError("epoch milliseconds out of range") from None


def _placeholder(year: int) -> bool:
    return year <= _PLACEHOLDER_MAX_YEAR


def parse_datetime(value: Any) -> datetime | None:
    """An aware UTC datetime from ISO 8601 (with or without offset), US M/D/Y, epoch ms; placeholders → None.

    Naive values are taken as UTC. Raises ValueError for anything else.
    """
    if type(value) is str and value[4:5] == "-":  # the common case first: ISO 8601, never a number
        try:
            iso = datetime.fromisoformat(value.strip().replace("z", "Z"))
        except ValueError:
            pass  # US formats and the like: the general path below
        else:
            return _utc_or_none(iso)
    if value is None or isinstance(value, bool):
        if value is None:
            return None
        raise ValueError("expected a date/time, got a boolean")
    if type(value) is int or isinstance(value, int | float):  # epoch ms
        result = _from_epoch_ms(value)
        return None if _placeholder(result.year) else result
    text = clean_str(value)
    if not text:
        return None
    if _NUMERIC.match(text):
        return parse_datetime(float(text) if "." in text else int(text))
    parsed: datetime | None = None
    try:
        parsed = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        for fmt in _US_DATETIME_FORMATS:
            try:
                parsed = datetime.strptime(text, fmt)  # noqa: DTZ007 -- naive times are UTC (_utc_or_none)
                break
            except ValueError:
                continue
    if parsed is None:
        raise ValueError(f"unrecognised date/time format ({len(text)} characters)")
    return _utc_or_none(parsed)


def _utc_or_none(parsed: datetime) -> datetime | None:
    if _placeholder(parsed.year):
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def parse_date(value: Any) -> date | None:
    """A calendar date: the literal date part of a date/time string (no time-zone shift), or epoch ms in UTC."""
    if type(value) is str and len(value) == 10 and value[4:5] == "-":  # the common case first: YYYY-MM-DD
        try:
            calendar_day = date.fromisoformat(value)
        except ValueError:
            pass  # the general path below says why
        else:
            return None if _placeholder(calendar_day.year) else calendar_day
    if value is None:
        return None
    if isinstance(value, datetime):
        return None if _placeholder(value.year) else value.date()
    if isinstance(value, date):
        return None if _placeholder(value.year) else value
    if isinstance(value, int | float) and not isinstance(value, bool):
        moment = parse_datetime(value)
        return moment.date() if moment else None
    text = clean_str(value)
    if not text:
        return None
    iso = _ISO_DATE_PREFIX.match(text)
    us = _US_DATE_PREFIX.match(text)
    if iso or us:
        if iso:
            year, month, day = int(iso[1]), int(iso[2]), int(iso[3])
        else:
            assert us is not None
            year, month, day = int(us[3]), int(us[1]), int(us[2])
        # Validate the rest of the string too: "2020-01-01Tgarbage" is not a date.
        parse_datetime(text)
        result = date(year, month, day)
        return None if _placeholder(result.year) else result
    moment = parse_datetime(text)
    return moment.date() if moment else None


def parse_local_date(value: Any, zone: tzinfo) -> date | None:
    """A calendar date: epoch milliseconds (a number or numeric text) are read as the date they fall on in `zone`
    (an instant at the store's local midnight is that day); anything else as parse_date reads it."""
    if isinstance(value, str) and _NUMERIC.match(value.strip()):
        value = float(value) if "." in value else int(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        moment = parse_datetime(value)
        return moment.astimezone(zone).date() if moment else None
    return parse_date(value)


@lru_cache(maxsize=64)
def time_zone(name: str) -> ZoneInfo:
    """The IANA time zone of this name (e.g. America/Los_Angeles); ValueError when there is none."""
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ValueError(f"unknown time zone {name!r}") from None


def parse_id_list(value: Any) -> tuple[str, ...]:
    """POS ids from a list (ints or strings); null or an empty list is none."""
    if value is None:
        return ()
    if not isinstance(value, list | tuple):
        raise ValueError(f"expected a list of ids, got {type(value).__name__}")
    return tuple(text for text in (clean_str(item) for item in value) if text)


def parse_decimal(value: Any) -> Decimal:
    """A Decimal from an int, float (via its repr, so 10.98 stays 10.98) or numeric string; empty is 0."""
    if value is None or value == "":
        return Decimal(0)
    if isinstance(value, bool):
        raise ValueError("expected a number, got a boolean")
    try:
        result = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError("expected a number") from None
    if not result.is_finite():
        raise ValueError("expected a finite number")
    return result


def parse_bool(value: Any, *, default: bool = True) -> bool:
    """True/false from booleans, 0/1 and the usual words; None is the default."""
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return bool(value)
    text = clean_str(value).lower()
    if text in {"true", "t", "yes", "y", "1"}:
        return True
    if text in {"false", "f", "no", "n", "0"}:
        return False
    raise ValueError("expected a boolean")


_GENDERS = {
    "m": "M",
    "male": "M",
    "man": "M",
    "f": "F",
    "female": "F",
    "woman": "F",
    "x": "X",
    "o": "X",
    "other": "X",
    "nonbinary": "X",
    "non-binary": "X",
    "nb": "X",
}


def normalize_gender(value: Any) -> str:
    """Our gender codes: "M", "F", "X" (other / non-binary) or "" (unknown, unspecified, "U")."""
    if value is None:
        return ""
    return _GENDERS.get(clean_str(value).lower(), "")


def split_full_name(name: Any) -> tuple[str, str]:
    """Split a single full name on its last space: first = all but the last word."""
    words = clean_str(name).split()
    if not words:
        return "", ""
    if len(words) == 1:
        return words[0], ""
    return " ".join(words[:-1]), words[-1]


def join_nonempty(*parts: Any, sep: str = ", ") -> str:
    """Join the non-empty string forms of parts (street line 1 and 2, note messages…)."""
    return sep.join(text for text in (clean_str(p) for p in parts) if text)


def format_iso_utc(moment: datetime, *, millis: bool = False) -> str:
    """`2024-05-01T12:00:00Z` (or with `.000`), in UTC; naive datetimes are taken as UTC."""
    moment = to_utc(moment)
    if millis:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def to_utc(moment: datetime) -> datetime:
    """Aware UTC; naive datetimes are taken as UTC."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def epoch_ms(moment: datetime) -> int:
    """Milliseconds since the epoch (Blaze's format)."""
    return int((to_utc(moment) - _EPOCH) / timedelta(milliseconds=1))

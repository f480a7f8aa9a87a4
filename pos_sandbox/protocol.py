"""What every dialect reads and writes: the parsed request, the answer, and the parameter and field parsers."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import parse_qsl, unquote

JSON = "application/json; charset=utf-8"


class BadRequest(Exception):
    """The request is invalid; the dialect renders `message` in its own error shape."""

    def __init__(self, message: str, status: int = 400, field_name: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.field_name = field_name


@dataclass
class Request:
    """One parsed HTTP request."""

    method: str
    path: str  # as sent, still percent-encoded
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes
    host: str

    def json_object(self) -> dict[str, Any]:
        """The body as a JSON object ({} when empty); BadRequest when it is something else."""
        try:
            body = json.loads(self.body or b"{}")
        except ValueError:
            raise BadRequest("The request body is not valid JSON.") from None
        if not isinstance(body, dict):
            raise BadRequest("The request body must be a JSON object.")
        return body

    def form(self) -> dict[str, str]:
        """A form-urlencoded body merged over the query string (Treez accepts either)."""
        out = dict(self.query)
        out.update(parse_qsl(self.body.decode("utf-8", "replace"), keep_blank_values=True))
        return out


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = JSON
    listing: bool = False  # a page of customers: the malformed-page fault may cut it


def json_response(status: int, payload: Any, **kwargs: Any) -> Response:
    return Response(status, json.dumps(payload, separators=(",", ":")).encode(), **kwargs)


# --- parameters ------------------------------------------------------------------------------------------
def parse_time_ms(text: str, name: str) -> int:
    """ISO 8601 (date or date-time, with or without offset; naive = UTC), M/D/Y H:M:S or epoch ms -> epoch ms.

    The UTC designator may be a lower-case `z` (RFC 3339 allows it; Cova's documented filter writes it so).
    """
    t = unquote(text).strip()
    if t[-1:] == "z":
        t = t[:-1] + "Z"
    if re.fullmatch(r"-?\d{10,}", t):
        return int(t)
    formats = (datetime.fromisoformat, lambda s: datetime.strptime(s, "%m/%d/%Y %H:%M:%S").replace(tzinfo=UTC))
    for parse in formats:
        try:
            moment = parse(t)
        except ValueError:
            continue
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return int(moment.timestamp() * 1000)
    raise BadRequest(f"The value '{t}' is not valid for {name}.", field_name=name)


def int_param(value: str | None, name: str, default: int, low: int, high: int) -> int:
    """A whole-number parameter within [low, high]; `default` when absent or empty."""
    if value is None or value == "":
        return default
    try:
        n = int(value)
    except ValueError:
        raise BadRequest(f"{name} must be a whole number", field_name=name) from None
    if not low <= n <= high:
        raise BadRequest(f"{name} must be between {low} and {high}", field_name=name)
    return n


def parse_day(value: Any, name: str) -> str | None:
    """YYYY-MM-DD of a date or date-time value (None when empty); BadRequest naming the field otherwise."""
    if value in (None, ""):
        return None
    text = str(value).strip()[:10]
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        raise BadRequest(f"{name} must be a date (YYYY-MM-DD)", field_name=name) from None


def parse_text(value: Any, name: str, *, required: bool = False, limit: int = 200) -> str | None:
    """A trimmed text field of at most `limit` characters (None when empty, BadRequest when required)."""
    if value is None or value == "":
        if required:
            raise BadRequest(f"{name} is required", field_name=name)
        return None
    if not isinstance(value, str | int):
        raise BadRequest(f"{name} must be text", field_name=name)
    text = str(value).strip()
    if required and not text:
        raise BadRequest(f"{name} is required", field_name=name)
    if len(text) > limit:
        raise BadRequest(f"{name} is longer than {limit} characters", field_name=name)
    return text or None


def parse_gender(value: Any) -> str:
    """M, F, or U for anything else."""
    text = str(value or "").strip().upper()[:1]
    return text if text in ("M", "F") else "U"


# Person fields that are text, never None: an empty value in a create or update becomes "".
_NOT_NULL_TEXT = frozenset({"first", "last", "notes", "street", "city", "state", "postal_code"})
_REQUIRED_ON_CREATE = ("first", "last")


def read_fields(
    body: dict[str, Any],
    *,
    creating: bool,
    text: Iterable[tuple[str, str]],
    dates: Iterable[tuple[str, str]] = (),
    gender: str | None = None,
) -> dict[str, Any]:
    """A create or update body as Person fields, from (Person field, vendor field) pairs.

    Only the fields the body carries are returned (a sparse update), plus the required names on create.
    """
    out: dict[str, Any] = {}
    for ours, theirs in text:
        required = creating and ours in _REQUIRED_ON_CREATE
        if theirs in body or required:
            value = parse_text(body.get(theirs), theirs, required=required)
            out[ours] = "" if value is None and ours in _NOT_NULL_TEXT else value
    for ours, theirs in dates:
        if theirs in body:
            out[ours] = parse_day(body.get(theirs), theirs)
    if gender is not None and gender in body:
        out["gender"] = parse_gender(body.get(gender))
    return out

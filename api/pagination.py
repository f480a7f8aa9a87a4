"""Keyset (cursor) pagination by id: every page costs the same, however deep."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from urllib.parse import urlencode

from django.http import QueryDict
from drf_spectacular.utils import OpenApiParameter
from rest_framework.request import Request

from api.errors import InvalidParameters

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
CURSOR_PREFIX = "id:"
MAX_ID = 2**63 - 1
PAGE_PARAMS = frozenset({"cursor", "page_size"})

# A cursor is "id:<1 to 18 digits>" in unpadded URL-safe base64 (encode_cursor); this pattern is exactly the set
# of those, so the schema can say which cursors are taken. "id:" is "aWQ6"; then each 3 digits are 4 characters,
# and the last 1 or 2 digits 2 or 3. A digit d's byte 0x3d sets the first character of its group to M, N or O
# (d >> 2) and, with the next byte's high bits, the second; the next digits fix the third and fourth.
_GROUP = "(?:[MN][DTjz]|O[DT])[AEIMQUYcgk][w-z0-5]"
_TWO = "(?:[MN][DTjz]|O[DT])[AEIMQUYcgk]"
_ONE = "(?:[MN][AQgw]|O[AQ])"
CURSOR_PATTERN = f"^aWQ6(?:{_GROUP}){{0,5}}(?:{_GROUP}|{_TWO}|{_ONE})$"
_CURSOR = re.compile(CURSOR_PATTERN)


def pagination_parameters(*, items: str) -> list[OpenApiParameter]:
    """The OpenAPI parameters of a paginated list of `items` ("Customers")."""
    return [
        OpenApiParameter(
            "cursor",
            {"type": "string", "pattern": CURSOR_PATTERN},
            description="Opaque: from the previous page (its `next` link, or a search's `next_cursor`).",
        ),
        OpenApiParameter(
            "page_size",
            {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE},
            description=f"{items} per page, 1 to {MAX_PAGE_SIZE} (default {DEFAULT_PAGE_SIZE}).",
        ),
    ]


@dataclass(frozen=True, slots=True)
class PageRequest:
    """Where a page starts (after this id) and how long it is."""

    after: int | None
    size: int


def encode_cursor(after: int) -> str:
    return base64.urlsafe_b64encode(f"{CURSOR_PREFIX}{after}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The id a cursor points after; ValueError when it is not one of ours (not matching CURSOR_PATTERN)."""
    if not _CURSOR.match(cursor):
        raise ValueError(cursor)
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):  # not reached: the pattern admits only ours
        raise ValueError(cursor) from None
    return int(text[len(CURSOR_PREFIX) :])


def page_request(query: QueryDict) -> PageRequest:
    """The page asked for; InvalidParameters naming a malformed cursor or page_size."""
    errors: dict[str, list[str]] = {}
    after = None
    cursor = query.get("cursor")
    if cursor is not None:
        try:
            after = decode_cursor(cursor)
        except ValueError:
            errors["cursor"] = ["Invalid cursor: use the `next` link of a previous page."]
    size = DEFAULT_PAGE_SIZE
    raw_size = query.get("page_size")
    if raw_size is not None:
        if not raw_size.isascii() or not raw_size.isdigit() or not 1 <= int(raw_size) <= MAX_PAGE_SIZE:
            errors["page_size"] = [f"Enter a whole number from 1 to {MAX_PAGE_SIZE}."]
        else:
            size = int(raw_size)
    if errors:
        raise InvalidParameters(f"Invalid query parameters: {', '.join(sorted(errors))}.", fields=errors)
    return PageRequest(after=after, size=size)


def next_link(request: Request, after: int | None) -> str | None:
    if after is None:
        return None
    # What DRF's replace_query_param(request.build_absolute_uri(), ...) gives (parameters sorted by name), without
    # parsing back the URL just built.
    params = dict(request.query_params.lists())
    params["cursor"] = [encode_cursor(after)]
    return request.build_absolute_uri(f"{request.path}?{urlencode(sorted(params.items()), doseq=True)}")

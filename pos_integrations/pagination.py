"""The one pagination loop: follows a vendor's positions, stops on its stop condition, refuses to loop."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from .errors import PosBadResponse

Position = dict[str, Any]


@dataclass(frozen=True, slots=True)
class RawPage:
    """One page as the vendor sent it: its items and where the next page is (None when this was the last), and
    how many records the whole listing has where the vendor says (for progress bars; None when it does not)."""

    items: list[Any]
    next_position: Position | None
    total: int | None = None


def fingerprint(items: list[Any], id_key: str) -> str:
    """A short digest of a page: its records' ids in order (or the records themselves where ids are missing)."""
    if all(isinstance(item, dict) and item.get(id_key) is not None for item in items):
        material = "\x1f".join(str(item[id_key]) for item in items)
    else:
        material = json.dumps(items, sort_keys=True, default=str)
    return hashlib.blake2b(material.encode(), digest_size=16).hexdigest()


def _key(position: Position) -> str:
    return json.dumps(position, sort_keys=True, default=str)


def paginate(
    fetch: Callable[[Position], RawPage],
    start: Position,
    *,
    vendor: str,
    label: str,
    id_key: str,
    max_pages: int = 1_000_000,
) -> Iterator[tuple[list[Any], Position]]:
    """Yield (items, position after them) until the vendor's stop condition.

    The position yielded with the last page carries `"done": True`, and every position the listing's `"total"`
    where the vendor reported one. A position or a page of
    records seen before means the vendor is ignoring our paging, so we stop with PosBadResponse
    instead of looping forever. A listing made of several queries (Blaze's date windows) names each in its
    positions' `segment`: the same records may rightly come back in another segment, so pages are compared
    within one segment only.
    """
    seen_positions: set[str] = set()
    seen_pages: set[tuple[str, str]] = set()
    position: Position | None = start
    pages = 0
    while position is not None and not position.get("done"):
        key = _key(position)
        if key in seen_positions:
            raise PosBadResponse(f"{label} pagination loop: position {key} repeated", vendor=vendor)
        seen_positions.add(key)
        pages += 1
        if pages > max_pages:
            raise PosBadResponse(f"{label} pagination did not end after {max_pages} pages", vendor=vendor)
        page = fetch(position)
        if page.items:
            seen = (_key({"segment": position.get("segment")}), fingerprint(page.items, id_key))
            if seen in seen_pages:
                raise PosBadResponse(f"{label} pagination loop: the same page came back twice", vendor=vendor)
            seen_pages.add(seen)
        after = page.next_position if page.next_position is not None else {**position, "done": True}
        if page.total is not None:
            after = {**after, "total": page.total}
        yield page.items, after
        position = page.next_position


def list_from(body: Any, *keys: str) -> list[Any] | None:
    """The record list from a bare array or from the first of these envelope keys (dotted paths allowed)."""
    if isinstance(body, list):
        return body
    if not isinstance(body, dict):
        return None
    for path in keys:
        current: Any = body
        for step in path.split("."):
            current = current.get(step) if isinstance(current, dict) else None
        if isinstance(current, list):
            return current
    return None

"""What the quarantine keeps of a POS record the mirror refused: whatever the POS sent, in a form every database
stores, faithful enough for staff to see what came, and bounded.

PostgreSQL's text and jsonb hold neither NUL characters nor lone surrogates (what invalid UTF-8 from a POS decodes
to, see pos_integrations.http.loads, or a JSON "\\ud800"); SQLite's driver cannot encode the latter either. So:

- text: a NUL becomes the visible escape `\\u0000`, a lone surrogate its escape (`\\udcff`: the byte 0xff that
  was not UTF-8); text longer than MAX_TEXT keeps its start and ends with a marker saying how much was cut
  (`…[10,475,760 more characters cut]`);
- nesting: what lies deeper than MAX_DEPTH levels is replaced by a marker;
- size: once MAX_TOTAL characters of a payload are kept, the rest of each list or object is replaced by a marker
  saying how many items were cut;
- numbers JSON or jsonb cannot hold (NaN, infinities, integers of more than MAX_INT_BITS bits) and anything that
  is not JSON become text.

Plain Python (no Django import), so it can be used and tested alone.
"""

from __future__ import annotations

import math
from typing import Any

MAX_TEXT = 10_000  # characters kept of one string
MAX_KEY = 200  # characters kept of one object key
MAX_DEPTH = 20  # levels of lists and objects kept
MAX_TOTAL = 100_000  # characters (about the JSON size) kept of one payload
MAX_INT_BITS = 256
CUT = "…"
# What a list or object holds in place of what was cut (an object: under this key).
CUT_KEY = CUT


def storable_text(value: str, limit: int = MAX_TEXT) -> str:
    """`value` cut to `limit` characters (with a marker saying how many more there were), NUL characters and lone
    surrogates escaped."""
    if len(value) > limit:
        value = f"{value[:limit]}{CUT}[{len(value) - limit:,} more characters cut]"
    if "\x00" in value:
        value = value.replace("\x00", "\\u0000")
    if not value.isascii():
        try:
            value.encode()
        except UnicodeEncodeError:
            value = value.encode("utf-8", "backslashreplace").decode()
    return value


def storable_payload(payload: Any) -> Any:
    """A rejected record's payload as the quarantine keeps it (JSON every database stores, bounded)."""
    return _Keeper().keep(payload, 0)


class _Keeper:
    """One payload's walk; `room` is what is left of its MAX_TOTAL characters."""

    def __init__(self) -> None:
        self.room = MAX_TOTAL

    def keep(self, value: Any, depth: int) -> Any:
        if value is None or isinstance(value, bool):
            self.room -= 4
            return value
        if isinstance(value, int):
            self.room -= 8
            return value if value.bit_length() <= MAX_INT_BITS else f"<an integer of {value.bit_length()} bits>"
        if isinstance(value, float):
            self.room -= 8
            return value if math.isfinite(value) else repr(value)
        if isinstance(value, str):
            return self.text(value, MAX_TEXT)
        if isinstance(value, dict | list | tuple):
            if depth >= MAX_DEPTH:
                return self.text(f"{CUT}[nested deeper than {MAX_DEPTH} levels: cut]", MAX_TEXT)
            if isinstance(value, dict):
                return self.mapping(value, depth)
            return self.sequence(value, depth)
        try:
            shown = repr(value)
        except Exception:  # whatever a payload's repr raises, staff still see its type
            shown = f"<{type(value).__name__}>"
        return self.text(shown, MAX_TEXT)

    def text(self, value: str, limit: int) -> str:
        kept = storable_text(value, max(0, min(limit, self.room)))
        self.room -= len(kept) + 2
        return kept

    def mapping(self, value: dict[Any, Any], depth: int) -> dict[str, Any]:
        kept: dict[str, Any] = {}
        for done, (key, item) in enumerate(value.items()):
            if self.room <= 0:
                kept[CUT_KEY] = f"{len(value) - done:,} more keys cut"
                break
            name = self.text(str(key), MAX_KEY)  # before its value, which may use up the room
            kept[name] = self.keep(item, depth + 1)
        return kept

    def sequence(self, value: list[Any] | tuple[Any, ...], depth: int) -> list[Any]:
        kept: list[Any] = []
        for done, item in enumerate(value):
            if self.room <= 0:
                kept.append(f"{CUT}[{len(value) - done:,} more items cut]")
                break
            kept.append(self.keep(item, depth + 1))
        return kept

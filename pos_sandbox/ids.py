"""Customer id formats: how a vendor writes record `index`, and back (lookups by id cost the same at any size).

The way back only says which index an id can be; the caller re-renders that record's id to confirm it.
"""

from __future__ import annotations

from dataclasses import dataclass

from .data import Generator, Person

_MASK40 = 0xFFFFFFFFFF


@dataclass(frozen=True)
class DecimalIds:
    """Consecutive numbers from `first` (Dutchie's integers, Treez's numeric strings)."""

    first: int

    def of(self, gen: Generator, p: Person) -> str:
        return str(self.first + p.index)

    def index(self, gen: Generator, text: str) -> int | None:
        try:
            i = int(text.strip()) - self.first
        except ValueError:
            return None
        return i if i >= 0 else None


class GuidIds:
    """Version-4-looking GUIDs from the record's hash, the index hidden (masked) in the last 40 bits."""

    def of(self, gen: Generator, p: Person) -> str:
        h = p.h
        tail = (p.index ^ gen.id_mask) & _MASK40
        return (
            f"{(h >> 96) & 0xFFFFFFFF:08x}-{(h >> 80) & 0xFFFF:04x}-4{(h >> 68) & 0xFFF:03x}-"
            f"{0x8000 | ((h >> 52) & 0x3FFF):04x}-{(h >> 40) & 0xFF:02x}{tail:010x}"
        )

    def index(self, gen: Generator, text: str) -> int | None:
        return _masked_tail(gen, text, 36)


class ObjectIds:
    """Mongo ObjectIds (24 hex digits), whose first 4 bytes are the creation time (Blaze)."""

    def of(self, gen: Generator, p: Person) -> str:
        created, tail = (p.created_ms // 1000) & 0xFFFFFFFF, (p.index ^ gen.id_mask) & _MASK40
        return f"{created:08x}{(p.h >> 40) & 0xFFFFFF:06x}{tail:010x}"

    def index(self, gen: Generator, text: str) -> int | None:
        return _masked_tail(gen, text, 24)


def _masked_tail(gen: Generator, text: str, length: int) -> int | None:
    t = text.strip()
    if len(t) != length:
        return None
    try:
        return (int(t[-10:], 16) ^ gen.id_mask) & _MASK40
    except ValueError:
        return None


IdFormat = DecimalIds | GuidIds | ObjectIds

"""Dataclasses that cross the package boundary: records, pages, inputs, capabilities."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from decimal import Decimal
from itertools import repeat
from typing import Any

RECREATIONAL = "recreational"
MEDICAL = "medical"
# A store's time zone when none is set: US west coast, where Blaze's real `dob` values sit at local midnight
# (07:00 or 08:00 UTC). Vendors that send a bare instant for a calendar date are read in the store's zone.
DEFAULT_TIME_ZONE = "America/Los_Angeles"


@dataclass(frozen=True, slots=True)
class CustomerRecord:
    """One customer as the POS knows it, in our canonical fields; `raw` is the vendor JSON as received.

    Strings are "" when empty. `gender` is "M", "F", "X" (other / non-binary) or "" (unknown).
    `phone` holds digits only. Datetimes are aware UTC. `drivers_license_hash` carries a vendor's
    licence hash (Dutchie) — never a licence number, which stays in `drivers_license`. `banned` is the
    vendor's own ban flag (False where it has none). A merge's surviving record lists the POS ids it absorbed
    in `merged_customer_ids`; a merged-away record names its survivor in `merged_into_customer_id`.
    """

    customer_id: str
    first_name: str = ""
    last_name: str = ""
    email: str = ""
    phone: str = ""
    birthday: date | None = None
    gender: str = ""
    drivers_license: str = ""
    drivers_license_expiration: date | None = None
    medical_card_number: str = ""
    medical_card_expiration: date | None = None
    customer_type: str = RECREATIONAL
    active: bool = True
    banned: bool = False
    notes: str = ""
    street: str = ""
    city: str = ""
    state: str = ""
    postal_code: str = ""
    loyalty_points: Decimal = Decimal(0)
    pos_created_at: datetime | None = None
    pos_updated_at: datetime | None = None
    merged_into_customer_id: str | None = None
    merged_customer_ids: tuple[str, ...] = ()
    drivers_license_hash: str = ""
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


# Canonical fields every vendor module maps (FIELD_SOURCES), in README table order.
CANONICAL_FIELDS: tuple[str, ...] = tuple(name for name in CustomerRecord.__dataclass_fields__ if name != "raw")
# Every field of a record, in order (CANONICAL_FIELDS, then `raw`), and its default (`raw`'s: None, never used).
RECORD_FIELDS: tuple[str, ...] = (*CANONICAL_FIELDS, "raw")
RECORD_DEFAULTS: dict[str, Any] = {
    name: None if name == "raw" else CustomerRecord.__dataclass_fields__[name].default for name in RECORD_FIELDS
}
_SLOTS = tuple(CustomerRecord.__dict__[name] for name in RECORD_FIELDS)
_SET_SLOT = type(_SLOTS[0]).__set__


def record_from_values(values: Sequence[Any]) -> CustomerRecord:
    """CustomerRecord(*values), one value per RECORD_FIELDS: the same record, built without the frozen
    dataclass's __init__ (a Python-level object.__setattr__ per field; this sets the slots from C). The vendor
    parsers build every record of every page with it."""
    if len(values) != len(_SLOTS):
        raise ValueError(f"a record has {len(_SLOTS)} fields, not {len(values)}")
    record = object.__new__(CustomerRecord)
    deque(map(_SET_SLOT, _SLOTS, repeat(record), values), maxlen=0)
    return record


@dataclass(frozen=True, slots=True)
class RecordError:
    """A vendor record we could not parse: its POS id where readable, why, and the payload as received."""

    customer_id: str | None
    reason: str
    payload: Any = field(repr=False, default=None)


Parser = Callable[[list[Any]], tuple[list[CustomerRecord], list[RecordError]]]


class CustomerPage:
    """One page of a customer listing; pass `position` as `start=` to resume with the page after it.

    Built from parsed records, or from the vendor's items and the client's parser: then `records` and
    `errors` parse the whole page when first read (by the consumer, not while the client fetches).
    """

    __slots__ = ("_errors", "_items", "_parse", "_records", "position")

    def __init__(
        self,
        records: list[CustomerRecord] | None = None,
        errors: list[RecordError] | None = None,
        position: dict[str, Any] | None = None,
        *,
        items: list[Any] | None = None,
        parse: Parser | None = None,
    ) -> None:
        if (items is None) != (parse is None):
            raise TypeError("items and parse go together")
        if items is not None and (records or errors):
            raise TypeError("a page holds either parsed records or items to parse")
        self._records = list(records or [])
        self._errors = list(errors or [])
        self._items = items
        self._parse = parse
        self.position: dict[str, Any] = position if position is not None else {}

    @property
    def records(self) -> list[CustomerRecord]:
        self._parse_all()
        return self._records

    @property
    def errors(self) -> list[RecordError]:
        self._parse_all()
        return self._errors

    def _parse_all(self) -> None:
        if self._items is not None and self._parse is not None:
            self._records, self._errors = self._parse(self._items)
            self._items = None

    def __len__(self) -> int:
        """Records and errors on the page (parsed or not)."""
        return len(self._items) if self._items is not None else len(self._records) + len(self._errors)

    @property
    def is_last(self) -> bool:
        """True when the listing ended with this page."""
        return bool(self.position.get("done"))

    @property
    def newest_updated_at(self) -> datetime | None:
        """The latest pos_updated_at on the page (pages may come newest first, so don't use the last row)."""
        stamps = [r.pos_updated_at for r in self.records if r.pos_updated_at is not None]
        return max(stamps) if stamps else None

    def __repr__(self) -> str:
        return f"CustomerPage({len(self)} items, position={self.position!r})"


@dataclass(frozen=True, slots=True)
class CustomerInput:
    """What we send to a POS to create a customer."""

    first_name: str
    last_name: str
    gender: str = ""
    birthday: date | None = None
    email: str = ""
    phone: str = ""
    drivers_license: str = ""
    notes: str = ""
    customer_type: str = RECREATIONAL
    medical_card_number: str = ""
    medical_card_expiration: date | None = None
    drivers_license_expiration: date | None = None

    def as_record(self, customer_id: str, *, raw: dict[str, Any] | None = None) -> CustomerRecord:
        """The customer as sent, under the POS's id: what a create shows when the POS's answer cannot be read."""
        sent = {f.name: getattr(self, f.name) for f in fields(self)}
        return CustomerRecord(customer_id=customer_id, raw=dict(raw or {}), **sent)


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a vendor's client can do."""

    can_create: bool
    search_fields: frozenset[str]
    incremental: bool
    # CustomerInput fields the POS refuses a create without; create_customer checks them before calling it.
    create_requires: frozenset[str] = frozenset()

    @property
    def can_search(self) -> bool:
        """True when at least one field can be searched live at the POS."""
        return bool(self.search_fields)

    def missing_for_create(self, data: CustomerInput) -> list[str]:
        """The `create_requires` fields `data` leaves empty, sorted: the POS would refuse the create."""
        return sorted(name for name in self.create_requires if getattr(data, name) in (None, ""))


SEARCH_FIELDS: tuple[str, ...] = ("phone", "email", "drivers_license", "first_name", "last_name", "birthday")

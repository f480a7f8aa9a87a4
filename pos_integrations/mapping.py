"""Declarative field mapping: each vendor declares FIELD_SOURCES (our field -> where it comes from).

The same declarations drive the record parser and the README's field-mapping table.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from . import parsing
from .errors import RecordParseError
from .records import (
    CANONICAL_FIELDS,
    MEDICAL,
    RECORD_DEFAULTS,
    RECORD_FIELDS,
    RECREATIONAL,
    CustomerRecord,
    record_from_values,
)

Getter = Callable[[Mapping[str, Any]], Any]
Converter = Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class Source:
    """Where one canonical field comes from in a vendor record; `doc` is what the README shows."""

    doc: str
    get: Getter
    convert: Converter | None = None
    keys: tuple[str, ...] = ()  # top-level vendor keys, used to translate vendor field errors back


def dig(raw: Any, *path: str | int) -> Any:
    """raw[path[0]][path[1]]…, or None where any step is missing."""
    current = raw
    for step in path:
        if isinstance(step, int):
            if not isinstance(current, list) or len(current) <= step:
                return None
            current = current[step]
        else:
            # A decoded JSON object is a dict: skip the Mapping ABC's (slow) check for it.
            if type(current) is not dict and not isinstance(current, Mapping):
                return None
            current = current.get(step)
    return current


def key(*names: str, convert: Converter | None = None, doc: str | None = None) -> Source:
    """The first non-empty of these top-level keys."""

    if len(names) == 1:  # most sources: one key, read without a loop (this runs for every field of every record)
        only = names[0]

        def get(raw: Mapping[str, Any]) -> Any:
            value = raw.get(only)
            return None if value is None or value == "" else value

    else:

        def get(raw: Mapping[str, Any]) -> Any:
            for name in names:
                value = raw.get(name)
                if value not in (None, ""):
                    return value
            return None

    text = doc or " / ".join(f"`{n}`" for n in names)
    return Source(text, get, convert, names)


def _path(steps: list[str]) -> Getter:
    """dig(raw, *steps) for object keys only, without dig's per-step checks (it runs for every record)."""

    def get(raw: Mapping[str, Any]) -> Any:
        current: Any = raw
        for step in steps:
            if type(current) is not dict and not isinstance(current, Mapping):
                return None
            current = current.get(step)
        return current

    return get


def nested(path: str, *, convert: Converter | None = None) -> Source:
    """A dotted path into nested objects, e.g. `address.city`."""
    return Source(f"`{path}`", _path(path.split(".")), convert)


def first_readable(*names: str, convert: Mapping[str, Converter], doc: str) -> Source:
    """The first of these top-level keys whose value reads (each with its own converter): a malformed value
    falls back to the next key, and only when every present value is malformed is the record rejected."""

    def get(raw: Mapping[str, Any]) -> Any:
        failure: Exception | None = None
        for name in names:
            value = raw.get(name)
            if value in (None, ""):
                continue
            try:
                result = convert[name](value)
            except (ValueError, TypeError, ArithmeticError) as exc:
                failure = failure or exc
                continue
            if result is not None:
                return result
        if failure is not None:
            raise failure
        return None

    return Source(doc, get, lambda value: value, names)


def computed(doc: str, get: Getter, *, convert: Converter | None = None) -> Source:
    """Anything that needs code: the doc says what it reads."""
    return Source(doc, get, convert)


def _nothing(raw: Mapping[str, Any]) -> None:
    return None


def absent(doc: str = "—", value: Any = None) -> Source:
    """The vendor has no such field; the record gets `value` (or the field's default)."""
    return Source(doc, _nothing if value is None else lambda raw: value)


def customer_type_from(is_medical: Callable[[Any], bool]) -> Converter:
    """A converter turning a vendor value into "medical"/"recreational"."""
    return lambda value: MEDICAL if is_medical(value) else RECREATIONAL


def contains_medical(value: Any) -> bool:
    """True for vendor types such as "Medical", "MEDICAL_MMID", "medCustomer"."""
    text = parsing.clean_str(value).lower()
    return text.startswith("med")


# How each canonical field is converted unless the vendor source says otherwise.
CONVERTERS: dict[str, Converter] = {
    "customer_id": parsing.require_id,
    "phone": parsing.parse_phone,
    "birthday": parsing.parse_date,
    "drivers_license_expiration": parsing.parse_date,
    "medical_card_expiration": parsing.parse_date,
    "gender": parsing.normalize_gender,
    "customer_type": customer_type_from(contains_medical),
    "active": parsing.parse_bool,
    "banned": lambda value: parsing.parse_bool(value, default=False),
    "loyalty_points": parsing.parse_decimal,
    "pos_created_at": parsing.parse_datetime,
    "pos_updated_at": parsing.parse_datetime,
    "merged_into_customer_id": parsing.optional_str,
    "merged_customer_ids": parsing.parse_id_list,
}


# Converted even when the vendor sends nothing; the dataclass default stands in for a missing active flag or
# customer type.
_ALWAYS_CONVERTED = frozenset({"customer_id", "active", "customer_type"})
_DEFAULTS: dict[str, Any] = {
    name: CustomerRecord.__dataclass_fields__[name].default for name in ("active", "customer_type")
}
_Plan = tuple[tuple[int, str, Getter, Converter, bool, Any], ...]
_plans: dict[int, tuple[Mapping[str, Source], _Plan, list[Any]]] = {}
_RAW = len(RECORD_FIELDS) - 1  # `raw` is the record's last field


def _plan(sources: Mapping[str, Source]) -> tuple[_Plan, list[Any]]:
    """(index, field, getter, converter, always, default) per canonical field a record must read, and the
    record's values before reading (the dataclass defaults), resolved once per vendor mapping. A field the
    vendor lacks (`absent`) is not read: the default, or what converting nothing gives, is in those values."""
    cached = _plans.get(id(sources))
    if cached is not None and cached[0] is sources:
        return cached[1], cached[2]
    template = [RECORD_DEFAULTS[name] for name in RECORD_FIELDS]
    plan = []
    for index, name in enumerate(CANONICAL_FIELDS):
        source = sources[name]
        convert = source.convert or CONVERTERS.get(name, parsing.clean_str)
        always, default = name in _ALWAYS_CONVERTED, _DEFAULTS.get(name)
        if source.get is _nothing:
            if not always:
                continue
            try:
                value = convert(None)
            except (ValueError, TypeError, ArithmeticError):
                pass  # read for every record, so that each one is refused with the reason
            else:
                template[index] = default if value is None and default is not None else value
                continue
        plan.append((index, name, source.get, convert, always, default))
    _plans[id(sources)] = (sources, tuple(plan), template)
    return tuple(plan), template


def build_record(raw: Any, sources: Mapping[str, Source]) -> CustomerRecord:
    """Turn one vendor record into a CustomerRecord, or raise RecordParseError naming the field."""
    if type(raw) is not dict and not isinstance(raw, Mapping):
        raise RecordParseError(f"expected an object, got {type(raw).__name__}", payload=raw)
    plan, template = _plan(sources)
    values = template.copy()
    for index, name, get, convert, always, default in plan:  # kept lean: it runs for every field of every record
        try:
            value = get(raw)
            if value is None and not always:
                continue
            value = convert(value)
            values[index] = default if value is None and default is not None else value
        except (ValueError, TypeError, ArithmeticError) as exc:
            try:
                customer_id: str | None = parsing.require_id(sources["customer_id"].get(raw))
            except ValueError:
                customer_id = None
            raise RecordParseError(f"{name}: {exc}", customer_id=customer_id, payload=raw) from None
    values[_RAW] = dict(raw)
    return record_from_values(values)


def vendor_keys_to_ours(sources: Mapping[str, Source]) -> dict[str, str]:
    """Vendor top-level key -> our field name, to report vendor field errors in our terms."""
    return {vendor_key: ours for ours, source in sources.items() for vendor_key in source.keys}


def check_sources(vendor: str, sources: Mapping[str, Source]) -> None:
    """Every canonical field must be declared, and nothing else (an import-time guard)."""
    missing = set(CANONICAL_FIELDS) - set(sources)
    extra = set(sources) - set(CANONICAL_FIELDS)
    if missing or extra:
        raise AssertionError(f"{vendor} FIELD_SOURCES: missing {sorted(missing)}, unknown {sorted(extra)}")


def render_table(columns: Mapping[str, Mapping[str, Source]], labels: Mapping[str, str]) -> str:
    """The Markdown field-mapping table: one row per canonical field, one column per vendor."""
    header = "| our field | " + " | ".join(labels[v] for v in columns) + " |"
    rule = "|---" * (len(columns) + 1) + "|"
    rows = [f"| `{name}` | " + " | ".join(columns[v][name].doc for v in columns) + " |" for name in CANONICAL_FIELDS]
    return "\n".join([header, rule, *rows])


def joined(*paths: str, sep: str = ", ") -> Source:
    """Several (dotted) fields joined, e.g. street line 1 and line 2."""
    getters = [_path(p.split(".")) for p in paths]
    return Source(
        " + ".join(f"`{p}`" for p in paths),
        lambda raw: parsing.join_nonempty(*(get(raw) for get in getters), sep=sep),
    )


def status_active(
    status: str | None,
    *,
    active: tuple[str, ...] = (),
    inactive: tuple[str, ...] = (),
    merged: str | None = None,
    survivor: tuple[str, str] | None = None,
    deleted: str | None = None,
    disabled: str | None = None,
) -> Source:
    """Active unless the status says otherwise (listed `active` values, or not an `inactive` one),
    the record is merged into another, deleted or disabled.

    `survivor` is (status value, key listing the ids a merge absorbed): a record with that status, a non-empty
    list there and nothing under `merged` is the surviving record of a merge, and active."""
    parts = []
    if status:
        rule = " / ".join(active) if active else "not " + " / ".join(inactive)
        if survivor:
            rule += f", or {survivor[0]} with `{survivor[1]}`"
        parts.append(f"`{status}` ({rule})")
    parts += [f"no `{k}`" for k in (merged,) if k] + [f"not `{k}`" for k in (deleted, disabled) if k]

    def get(raw: Mapping[str, Any]) -> bool:
        if any(parsing.parse_bool(raw.get(k), default=False) for k in (deleted, disabled) if k):
            return False
        if merged and parsing.clean_str(raw.get(merged)):
            return False
        value = parsing.clean_str(raw.get(status)).lower() if status else ""
        if not value:
            return True
        if survivor and value == survivor[0].lower() and parsing.parse_id_list(raw.get(survivor[1])):
            return True
        if active:
            return value in {a.lower() for a in active}
        return value not in {i.lower() for i in inactive}

    return Source(", ".join(parts), get, lambda value: value)

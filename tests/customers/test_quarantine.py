"""One bad record never blocks a page: whatever a POS sends is refused by the mirror's writer and kept as a rejected
record, in a form every database stores (PostgreSQL's text and jsonb take no NUL and no lone surrogate), cut to a
bound, and the rest of the page is written."""

from __future__ import annotations

import json
from typing import Any

import pytest

from customers import quarantine
from customers.models import Customer, RecordSource, RejectedRecord
from customers.writer import MAX_RAW_DEPTH, MAX_RAW_LENGTH, CustomerWriter, PageResult
from pos_integrations.records import RecordError
from tests.factories import make_record

pytestmark = pytest.mark.django_db

TEN_MB = 10 * 1024 * 1024


def nested(levels: int, leaf: Any = "bottom") -> Any:
    value = leaf
    for _ in range(levels - 1):
        value = {"in": value}
    return value


def depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    return 0


def write(store, records, **kwargs) -> PageResult:
    return CustomerWriter.for_store(store, source=RecordSource.SYNC).write(records, **kwargs).result()


def kept_one(store) -> RejectedRecord:
    [kept] = RejectedRecord.objects.filter(store=store)
    kept.refresh_from_db()  # as the database returns it
    return kept


def assert_only_the_good_one_is_stored(store, result: PageResult, good) -> None:
    assert result.stored == (good.customer_id,)
    assert list(Customer.objects.filter(store=store).values_list("customer_id", flat=True)) == [good.customer_id]


@pytest.mark.parametrize(
    ("change", "reason", "shown"),
    [
        pytest.param(
            {"first_name": "Se\x00an", "raw": {"id": 1002, "FirstName": "Se\x00an"}},
            "first_name contains a NUL character",
            {"id": 1002, "FirstName": "Se\\u0000an"},
            id="nul",
        ),
        pytest.param(
            {"last_name": "O\ud800degaard", "raw": {"id": 1002, "LastName": "O\ud800degaard"}},
            "last_name is not valid Unicode",
            {"id": 1002, "LastName": "O\\ud800degaard"},
            id="lone-surrogate",
        ),
        pytest.param(
            # What pos_integrations.http.loads makes of the bytes b"Se\xff\xfean" in a UTF-8 page.
            {"first_name": "Se\udcff\udcfean", "raw": {"id": 1002, "FirstName": "Se\udcff\udcfean"}},
            "first_name is not valid Unicode",
            {"id": 1002, "FirstName": "Se\\udcff\\udcfean"},
            id="invalid-utf8",
        ),
        pytest.param(
            {"raw": {"id": 1002, "Note\x00\udcff": "ok"}},
            "the vendor JSON contains a NUL character",
            {"id": 1002, "Note\\u0000\\udcff": "ok"},
            id="bad-key",
        ),
        pytest.param(
            {"raw": {"id": 1002, "Tags": ["vip", "O\ud800"]}},
            "the vendor JSON is not valid Unicode",
            {"id": 1002, "Tags": ["vip", "O\\ud800"]},
            id="lone-surrogate-in-raw-only",
        ),
    ],
)
def test_text_no_database_takes_is_quarantined_with_a_visible_escape_and_the_rest_is_written(
    store, change, reason, shown
):
    good, bad = make_record(1), make_record(2, **change)

    result = write(store, [good, bad])

    assert_only_the_good_one_is_stored(store, result, good)
    kept = kept_one(store)
    assert reason in kept.reason
    assert kept.customer_id == bad.customer_id
    assert kept.payload == shown


def test_text_with_an_emoji_is_valid_unicode_and_stored(store):
    record = make_record(1, notes="Likes 🌿", raw={"id": 1001, "Notes": "Likes 🌿"})

    assert write(store, [record]).stored == ("1001",)
    assert Customer.objects.get(store=store).notes == "Likes 🌿"


def test_a_10_mb_string_is_quarantined_cut_to_the_bound_with_a_marker_saying_how_much_was_cut(store):
    good, bad = make_record(1), make_record(2, raw={"id": 1002, "Photo": "A" * TEN_MB})

    result = write(store, [good, bad])

    assert_only_the_good_one_is_stored(store, result, good)
    kept = kept_one(store)
    assert f"longer than {MAX_RAW_LENGTH:,} characters" in kept.reason
    cut = TEN_MB - quarantine.MAX_TEXT
    assert kept.payload == {"id": 1002, "Photo": "A" * quarantine.MAX_TEXT + f"…[{cut:,} more characters cut]"}


def test_a_10_mb_field_is_refused_even_where_the_mirror_has_no_length_limit(store):
    bad = make_record(2, notes="n" * TEN_MB, raw={"id": 1002})

    result = write(store, [bad])

    assert result.stored == ()
    assert f"notes is longer than {MAX_RAW_LENGTH} characters" in kept_one(store).reason


@pytest.mark.parametrize("levels", [MAX_RAW_DEPTH + 1, 500, 5000])
def test_deep_nesting_is_quarantined_with_its_depth_bounded_and_marked(store, levels):
    good, bad = make_record(1), make_record(2, raw={"id": 1002, "Extra": nested(levels)})

    result = write(store, [good, bad])

    assert_only_the_good_one_is_stored(store, result, good)
    kept = kept_one(store)
    assert f"nested more than {MAX_RAW_DEPTH} levels deep" in kept.reason
    assert depth(kept.payload) == quarantine.MAX_DEPTH
    assert f"nested deeper than {quarantine.MAX_DEPTH} levels: cut" in json.dumps(kept.payload)


def test_nesting_within_the_bound_is_stored(store):
    record = make_record(1, raw={"id": 1001, "Extra": nested(MAX_RAW_DEPTH - 1)})

    assert write(store, [record]).stored == ("1001",)
    assert Customer.objects.get(store=store).raw == record.raw


def test_a_record_the_client_could_not_parse_is_kept_whatever_its_payload_reason_and_id_hold(store):
    payload = {
        "id": "7\x00",
        "name": "\udcff" * 3,
        "numbers": [float("nan"), float("inf"), 2**400, 12],
        "deep": nested(5000),
        "many": list(range(200_000)),
    }
    error = RecordError(customer_id="7\x00\ud800", reason="birthday: not a date ('\x00\udcff')", payload=payload)

    result = write(store, [make_record(1)], errors=[error])

    assert result.stored == ("1001",)
    kept = kept_one(store)
    assert kept.customer_id == "7\\u0000\\ud800"
    assert kept.reason == "birthday: not a date ('\\u0000\\udcff')"
    shown = kept.payload
    assert (shown["id"], shown["name"]) == ("7\\u0000", "\\udcff" * 3)
    assert shown["numbers"] == ["nan", "inf", "<an integer of 401 bits>", 12]
    assert depth(shown["deep"]) == quarantine.MAX_DEPTH - 1  # within the payload object, one level down
    assert shown["many"][-1].endswith("more items cut]")
    assert len(json.dumps(shown)) < 2 * quarantine.MAX_TOTAL


def test_a_payload_of_a_million_keys_is_cut_and_says_how_many_keys_were_cut():
    shown = quarantine.storable_payload({f"k{i}": "v" for i in range(1_000_000)})

    assert len(json.dumps(shown)) < 2 * quarantine.MAX_TOTAL
    assert shown[quarantine.CUT_KEY].endswith("more keys cut")
    kept = len(shown) - 1
    assert shown[quarantine.CUT_KEY] == f"{1_000_000 - kept:,} more keys cut"


def test_what_json_holds_is_kept_as_it_came():
    payload = {"id": 5027, "FirstName": "Seán", "tags": ["a", None, True, 1.5], "nested": {"x": {"y": []}}}

    assert quarantine.storable_payload(payload) == payload

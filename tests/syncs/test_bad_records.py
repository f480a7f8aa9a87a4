"""A sync over real HTTP whose POS sends records no database can hold: each is quarantined, the rest of its page is
written, the sync finishes, and the next one does not stick on that page. A page that cannot be read at all fails
the sync with a reason that says so."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from customers.models import Customer, RejectedRecord
from syncs.models import SyncKind, SyncStatus
from syncs.services import sync_create

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

TEN_MB = 10 * 1024 * 1024


def run(store, kind: str = SyncKind.FULL):
    return sync_create(store=store, kind=kind, trigger="manual")[0].do_process()


def nested(levels: int) -> Any:
    value: Any = "bottom"
    for _ in range(levels - 1):
        value = {"in": value}
    return value


def break_page(server, number: int, change) -> None:
    """Page `number` of the LeafLogix listing comes as `change(body bytes)` makes it."""
    dispatch = server.app.dispatch

    def spy(method, target, headers, body):
        response = dispatch(method, target, headers, body)
        if "customers-paginated" in target and parse_qs(urlsplit(target).query)["PageNumber"] == [str(number)]:
            response.body = change(response.body)
        return response

    server.app.dispatch = spy


def with_bad_records(body: bytes) -> bytes:
    records = json.loads(body)
    records[0]["firstName"] = "Se\x00an"  # NUL: PostgreSQL's text and jsonb refuse it
    records[1]["lastName"] = "O\ud800degaard"  # a lone surrogate, sent as the JSON escape \ud800
    records[2]["firstName"] = "NOT-UTF8"  # replaced by bytes that are not UTF-8 below
    records[3]["notes"] = "n" * TEN_MB
    records[4]["extra"] = nested(500)
    return json.dumps(records).encode().replace(b"NOT-UTF8", b"Se\xff\xfean")


def test_records_no_database_can_hold_are_quarantined_and_the_rest_of_the_page_is_written(sandbox_store):
    server, store = sandbox_store("leaflogix", customers=250, seed=7)
    ids = [str(r["customerId"]) for r in server.vendor_records("leaflogix")]
    bad_ids = ids[:5]
    break_page(server, 1, with_bad_records)

    sync = run(store)

    assert sync.status == SyncStatus.FINISHED, (sync.error_type, sync.error_message)
    assert (sync.fetched, sync.created, sync.invalid) == (250, 245, 5)
    held = set(Customer.objects.filter(store=store).values_list("customer_id", flat=True))
    assert held == set(ids) - set(bad_ids)
    kept = {r.customer_id: r for r in RejectedRecord.objects.filter(sync=sync)}
    assert set(kept) == set(bad_ids)
    first, second, third, fourth, fifth = (kept[i] for i in bad_ids)
    assert "NUL" in first.reason
    assert first.payload["firstName"] == "Se\\u0000an"
    assert "not valid Unicode" in second.reason
    assert second.payload["lastName"] == "O\\ud800degaard"
    assert "not valid Unicode" in third.reason
    assert third.payload["firstName"] == "Se\\udcff\\udcfean"  # the bytes 0xff 0xfe, shown
    assert "longer than" in fourth.reason
    assert fourth.payload["notes"].endswith(f"…[{TEN_MB - 10_000:,} more characters cut]")
    assert "nested more than 32 levels deep" in fifth.reason

    # The next sync goes over the same page (the POS still sends it broken) and does not stick on it.
    again = run(store)
    assert again.status == SyncStatus.FINISHED, (again.error_type, again.error_message)
    assert again.invalid == 5


def test_a_page_that_cannot_be_read_fails_the_sync_with_the_reason_and_keeps_what_came_before(sandbox_store):
    server, store = sandbox_store("leaflogix", customers=250, seed=7)
    break_page(server, 2, lambda body: body.replace(b'"firstName"', b'"first\xffName" \xff', 1))

    sync = run(store)

    assert sync.status == SyncStatus.FAILED
    assert sync.error_type == "PosBadResponse"
    assert "sent malformed JSON for /customer/customers-paginated" in sync.error_message
    assert Customer.objects.filter(store=store).count() == 100  # page 1 was written


def test_a_page_nested_too_deeply_to_read_fails_the_sync_saying_so(sandbox_store):
    server, store = sandbox_store("leaflogix", customers=250, seed=7)
    break_page(
        server, 1, lambda body: body.replace(b'"firstName"', b'"x": ' + b"[" * 5000 + b"]" * 5000 + b', "firstName"', 1)
    )

    sync = run(store)

    assert sync.status == SyncStatus.FAILED
    assert "sent JSON nested too deeply to read" in sync.error_message

"""The page writer's steps: what it holds, what moved within the listing, what the writes did."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from customers.models import Customer
from pos_integrations.records import CustomerPage, RecordError
from syncs.writer import PageWriter, validate

from .conftest import make_record

pytestmark = pytest.mark.django_db


def write(store, records, *, now=None):
    """One page through the writer's steps, in a transaction: (rows, held, result)."""
    writer = PageWriter.for_connection(store_id=store.pk)
    rows = validate(records, dumps=writer.dump_raw)[0]
    with transaction.atomic():
        held = writer.existing([row.customer_id for row in rows])
        written = writer.send(rows, now=now or timezone.now(), held=held, commit=False).result()
    return writer, rows, held, writer.tally(rows, held, written)


def test_a_page_is_counted_created_then_unchanged_then_updated(store):
    records = [make_record(i) for i in range(3)]
    assert dataclasses.astuple(write(store, records)[3]) == (3, 0, 0, 0)
    assert dataclasses.astuple(write(store, records)[3]) == (0, 0, 3, 0)

    changed = dataclasses.replace(records[1], email="new@example.com")
    merged = dataclasses.replace(
        records[2], merged_into_customer_id="1000", pos_updated_at=records[2].pos_updated_at + timedelta(1)
    )
    assert dataclasses.astuple(write(store, [records[0], changed, merged])[3]) == (0, 2, 1, 1)
    assert Customer.objects.get(store=store, customer_id=changed.customer_id).email == "new@example.com"
    assert not Customer.objects.get(store=store, customer_id=merged.customer_id).active


def test_unchanged_rows_get_the_page_stamp_without_being_rewritten(store):
    records = [make_record(i) for i in range(2)]
    write(store, records)
    before = {c.customer_id: c.updated_at for c in Customer.objects.filter(store=store)}
    stamp = timezone.now() + timedelta(seconds=5)
    write(store, records, now=stamp)

    customers = Customer.objects.filter(store=store)
    assert {c.synced_at for c in customers} == {stamp}
    assert {c.customer_id: c.updated_at for c in customers} == before


def test_an_older_version_does_not_overwrite_the_newer(store):
    newer = make_record(1, email="new@example.com")
    write(store, [newer])
    older = dataclasses.replace(newer, email="old@example.com", pos_updated_at=newer.pos_updated_at - timedelta(1))

    assert dataclasses.astuple(write(store, [older])[3]) == (0, 0, 1, 0)
    assert Customer.objects.get(store=store).email == "new@example.com"


def test_a_customer_seen_earlier_in_this_sync_and_listed_again_later_has_moved(store):
    mark = timezone.now() - timedelta(minutes=1)
    first = [make_record(i) for i in range(3)]
    write(store, first)  # stamped after the mark: seen by this sync
    writer = PageWriter.for_connection(store_id=store.pk)

    later = dataclasses.replace(first[0], first_name="Moved", pos_updated_at=first[0].pos_updated_at + timedelta(1))
    again = first[1]  # the same version listed again (an overlap): it did not move
    earlier = dataclasses.replace(first[2], pos_updated_at=first[2].pos_updated_at - timedelta(1))
    rows = validate([later, again, earlier], dumps=writer.dump_raw)[0]
    held = writer.existing([row.customer_id for row in rows])

    assert writer.moved_from(rows, held, mark=mark) == first[0].pos_updated_at
    assert writer.moved_from(rows[1:], held, mark=mark) is None
    # Seen before this sync started: an ordinary update, nothing moved during this sync.
    assert writer.moved_from(rows, held, mark=timezone.now() + timedelta(seconds=1)) is None


def test_a_page_parses_its_items_once_and_only_when_read():
    calls: list[list[int]] = []

    def parse(items):
        calls.append(list(items))
        records = [make_record(i) for i in items if i >= 0]
        errors = [RecordError(customer_id=None, reason="bad", payload=i) for i in items if i < 0]
        return records, errors

    page = CustomerPage(position={"page": 1}, items=[1, 2, -1, 3, 4], parse=parse)
    assert len(page) == 5 and calls == []  # nothing parsed until asked

    assert [r.customer_id for r in page.records] == ["1001", "1002", "1003", "1004"]
    assert len(page.errors) == 1 and calls == [[1, 2, -1, 3, 4]]  # parsed once for both
    assert len(page) == 5

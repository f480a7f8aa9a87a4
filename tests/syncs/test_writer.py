"""The page writer's parts: a page written in several parts counts and keeps what one statement would."""

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


def write(store, parts_of_records, *, mark=None):
    writer = PageWriter.for_connection(store_id=store.pk)
    now = timezone.now()
    parts = [validate(records, dumps=writer.dump_raw)[0] for records in parts_of_records]
    with transaction.atomic():
        return writer.write(iter(parts), now=now, mark=mark or now - timedelta(minutes=5))


def test_a_customer_twice_in_one_page_in_two_parts_keeps_the_newer_and_counts_once(store):
    older = make_record(1)
    newer = dataclasses.replace(older, email="new@example.com", pos_updated_at=older.pos_updated_at + timedelta(1))
    result = write(store, [[older, make_record(2)], [make_record(3), newer]])

    assert (result.created, result.updated, result.unchanged) == (3, 0, 1)
    assert result.moved_from is None  # written by this very page, not moved within the listing
    assert Customer.objects.get(store=store, customer_id=older.customer_id).email == "new@example.com"


def test_an_older_version_later_in_the_page_does_not_overwrite_the_newer(store):
    newer = make_record(1, email="new@example.com")
    older = dataclasses.replace(newer, email="old@example.com", pos_updated_at=newer.pos_updated_at - timedelta(1))
    result = write(store, [[newer], [older]])

    assert (result.created, result.updated, result.unchanged) == (1, 0, 1)
    assert Customer.objects.get(store=store).email == "new@example.com"


def test_a_page_parses_its_items_part_by_part_or_all_at_once():
    calls: list[list[int]] = []

    def parse(items):
        calls.append(list(items))
        records = [make_record(i) for i in items if i >= 0]
        errors = [RecordError(customer_id=None, reason="bad", payload=i) for i in items if i < 0]
        return records, errors

    page = CustomerPage(position={"page": 1}, items=[1, 2, -1, 3, 4], parse=parse)
    assert len(page) == 5 and calls == []  # nothing parsed until asked

    parts = list(page.parts(2))
    assert calls == [[1, 2], [-1, 3], [4]]
    assert [len(records) for records, _ in parts] == [2, 1, 1]
    assert [len(errors) for _, errors in parts] == [0, 1, 0]

    calls.clear()
    assert [r.customer_id for r in page.records] == ["1001", "1002", "1003", "1004"]
    assert len(page.errors) == 1 and calls == [[1, 2, -1, 3, 4]]  # parsed once for both

    parsed = CustomerPage(records=[make_record(1)], errors=[], position={})
    assert list(parsed.parts(None)) == [([make_record(1)], [])]

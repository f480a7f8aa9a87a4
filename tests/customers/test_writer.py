"""The mirror's one writer: what a page does to the mirror, what it refuses and keeps for staff, its transaction."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from customers.models import Customer, RecordSource, RejectedRecord
from customers.writer import CustomerWriter, PageResult, StagedPage
from pos_integrations.records import CustomerPage, CustomerRecord, RecordError
from tests.factories import CustomerSyncFactory, StoreFactory, make_record

pytestmark = pytest.mark.django_db


def write(store, records, **kwargs) -> PageResult:
    """One page through a writer of its own, as a live lookup writes."""
    return CustomerWriter.for_store(store, source=RecordSource.LOOKUP).write(records, **kwargs).result()


def counts(result: PageResult) -> tuple[int, int, int, int]:
    return result.created, result.updated, result.unchanged, result.deactivated


def test_a_page_is_counted_created_then_unchanged_then_updated(store):
    records = [make_record(i) for i in range(3)]
    assert counts(write(store, records)) == (3, 0, 0, 0)
    assert counts(write(store, records)) == (0, 0, 3, 0)

    changed = dataclasses.replace(records[1], email="new@example.com")
    merged = dataclasses.replace(
        records[2], merged_into_customer_id="1000", pos_updated_at=records[2].pos_updated_at + timedelta(1)
    )
    result = write(store, [records[0], changed, merged])
    assert counts(result) == (0, 2, 1, 1)
    assert set(result.stored) == {r.customer_id for r in records}
    assert Customer.objects.get(store=store, customer_id=changed.customer_id).email == "new@example.com"
    assert not Customer.objects.get(store=store, customer_id=merged.customer_id).active


def test_a_ban_and_a_merge_are_stored_and_shown(store):
    banned = make_record(1, banned=True, merged_into_customer_id="1009")
    write(store, [banned, make_record(2)])

    customer = Customer.objects.get(store=store, customer_id="1001")
    assert (customer.banned, customer.active, customer.merged_into_customer_id) == (True, False, "1009")
    shown = customer.to_peak_customer()
    assert (shown["banned"], shown["active"], shown["merged_into_customer_id"]) == (True, False, "1009")
    other = Customer.objects.get(store=store, customer_id="1002").to_peak_customer()
    assert (other["banned"], other["active"], other["merged_into_customer_id"]) == (False, True, None)

    lifted = dataclasses.replace(banned, banned=False, pos_updated_at=banned.pos_updated_at + timedelta(1))
    assert counts(write(store, [lifted])) == (0, 1, 0, 0)  # already inactive: nobody newly deactivated
    assert Customer.objects.get(store=store, customer_id="1001").banned is False


def _survivor(index: int, *absorbed: str, later: timedelta = timedelta(days=1)) -> CustomerRecord:
    """A merge's surviving record (Treez: status MERGED, merged_customer_ids), changed `later` than make_record's."""
    record = make_record(index)
    return dataclasses.replace(record, merged_customer_ids=absorbed, pos_updated_at=record.pos_updated_at + later)


def test_customers_a_survivor_absorbed_become_inactive_and_name_it(store):
    write(store, [make_record(i) for i in range(1, 5)])  # 1001 .. 1004, all active

    result = write(store, [_survivor(1, "1002", "1003", "7777")])  # 7777: not held, nothing to mark

    assert counts(result) == (0, 1, 0, 2)
    customers = {c.customer_id: c for c in Customer.objects.filter(store=store)}
    assert (customers["1001"].active, customers["1001"].merged_into_customer_id) == (True, "")
    for absorbed in ("1002", "1003"):
        assert (customers[absorbed].active, customers[absorbed].merged_into_customer_id) == (False, "1001")
        assert customers[absorbed].to_peak_customer()["merged_into_customer_id"] == "1001"
    assert (customers["1004"].active, customers["1004"].merged_into_customer_id) == (True, "")
    assert set(Customer.objects.filter(store=store, active=False).values_list("customer_id", flat=True)) == {
        "1002",
        "1003",
    }

    # The same survivor again: nothing more to do, and it says so.
    assert counts(write(store, [_survivor(1, "1002", "1003", "7777")])) == (0, 0, 1, 0)


def test_an_absorbed_customers_older_version_listed_after_the_merge_does_not_bring_it_back(store):
    stale = make_record(2)  # as the POS listed it before the merge (and may again, unchanged)
    write(store, [stale])
    write(store, [_survivor(1, "1002")])

    assert counts(write(store, [stale])) == (0, 0, 1, 0)

    customer = Customer.objects.get(store=store, customer_id="1002")
    assert (customer.active, customer.merged_into_customer_id) == (False, "1001")
    assert customer.pos_updated_at == _survivor(1, "1002").pos_updated_at  # as of the merge
    newer = dataclasses.replace(stale, pos_updated_at=customer.pos_updated_at + timedelta(hours=1))
    write(store, [newer])  # the POS changed it since: its own record says what it is now
    assert Customer.objects.get(store=store, customer_id="1002").active is True


def test_a_merge_reaches_no_other_store(store):
    other_store = StoreFactory(catalog_id="elsewhere")
    write(store, [make_record(2)])
    write(other_store, [make_record(2)])

    write(store, [_survivor(1, "1002")])

    assert Customer.objects.get(store=store, customer_id="1002").active is False
    theirs = Customer.objects.get(store=other_store, customer_id="1002")
    assert (theirs.active, theirs.merged_into_customer_id) == (True, "")


def test_a_survivor_older_than_what_the_mirror_holds_of_the_absorbed_leaves_it(store):
    write(store, [make_record(2, pos_updated_at=make_record(1).pos_updated_at + timedelta(days=5))])

    result = write(store, [_survivor(1, "1002", later=timedelta(days=1))])

    assert result.deactivated == 0
    kept = Customer.objects.get(store=store, customer_id="1002")
    assert (kept.active, kept.merged_into_customer_id) == (True, "")


def test_an_absorbed_customer_on_the_same_page_as_its_survivor_ends_merged_away(store):
    absorbed = make_record(2)
    result = write(store, [absorbed, _survivor(1, "1002")])

    assert counts(result) == (2, 0, 0, 1)
    customer = Customer.objects.get(store=store, customer_id="1002")
    assert (customer.active, customer.merged_into_customer_id) == (False, "1001")


def test_unchanged_rows_get_the_page_stamp_without_being_rewritten(store):
    records = [make_record(i) for i in range(2)]
    write(store, records)
    before = {c.customer_id: (c.synced_at, c.updated_at) for c in Customer.objects.filter(store=store)}
    write(store, records)

    customers = Customer.objects.filter(store=store)
    assert len({c.synced_at for c in customers}) == 1  # one stamp for the page
    for c in customers:
        synced_at, updated_at = before[c.customer_id]
        assert c.synced_at > synced_at
        assert c.updated_at == updated_at


def test_an_older_version_does_not_overwrite_the_newer(store):
    newer = make_record(1, email="new@example.com")
    write(store, [newer])
    older = dataclasses.replace(newer, email="old@example.com", pos_updated_at=newer.pos_updated_at - timedelta(1))

    result = write(store, [older])

    assert counts(result) == (0, 0, 1, 0)
    assert result.stored == (newer.customer_id,)  # the mirror holds it (the newer version)
    assert Customer.objects.get(store=store).email == "new@example.com"


def test_duplicates_within_a_page_keep_the_newest_version_and_count_as_unchanged(store):
    newest = make_record(1, first_name="Newest")
    older = dataclasses.replace(newest, first_name="Older", pos_updated_at=newest.pos_updated_at - timedelta(1))

    assert counts(write(store, [newest, older])) == (1, 0, 1, 0)
    assert Customer.objects.get(store=store).first_name == "Newest"


def test_a_customer_seen_earlier_in_this_run_and_listed_again_later_has_moved(store):
    mark = timezone.now() - timedelta(minutes=1)
    first = [make_record(i) for i in range(3)]
    write(store, first)  # stamped after the mark: seen by this run

    later = dataclasses.replace(first[0], first_name="Moved", pos_updated_at=first[0].pos_updated_at + timedelta(1))
    again = first[1]  # the same version listed again (an overlap): it did not move
    earlier = dataclasses.replace(first[2], pos_updated_at=first[2].pos_updated_at - timedelta(1))

    def moved_from(records, mark) -> datetime | None:
        staged: list[StagedPage] = []
        write(store, records, mark=mark, alongside=staged.append)
        return staged[0].moved_from

    assert moved_from([later, again, earlier], mark) == first[0].pos_updated_at
    assert moved_from([again, earlier], mark) is None
    # Seen before this run started: an ordinary update, nothing moved during it.
    assert moved_from([later], timezone.now() + timedelta(seconds=1)) is None


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"email": "x" * 290 + "@example.com"}, "email is longer than 254 characters"),
        ({"first_name": "Se\x00an"}, "first_name contains a NUL character"),
        ({"customer_id": "x" * 65}, "customer_id is longer than 64 characters"),
        ({"customer_id": ""}, "customer_id is missing"),
        ({"gender": "Q"}, "gender 'Q' is not one of"),
        ({"customer_type": "vip"}, "customer_type 'vip' is not one of"),
        ({"birthday": "1988-09-12"}, "birthday is not a date"),
        (
            {"birthday": datetime(1988, 9, 12)},  # noqa: DTZ001 -- not a date, on purpose
            "birthday is not a date",
        ),
        (
            {"pos_updated_at": datetime(2026, 1, 1)},  # noqa: DTZ001 -- naive, on purpose
            "pos_updated_at is not an aware datetime",
        ),
        ({"loyalty_points": "lots"}, "loyalty_points is not a number"),
        ({"raw": {"name": "Se\x00an"}}, "the vendor JSON contains a NUL character"),
        ({"city": "Oakl\ud800nd"}, "city is not valid Unicode text"),
        ({"notes": 42}, "notes is not text"),
        # Two faults: the first field's is the reason.
        ({"first_name": "Jos\udce9", "city": "x" * 300}, "first_name is not valid Unicode text"),
    ],
)
def test_what_the_mirror_cannot_hold_is_quarantined_with_the_reason_and_the_rest_is_written(store, change, reason):
    good = make_record(1)
    bad = dataclasses.replace(make_record(2), **change)

    result = write(store, [good, bad])

    assert result.stored == (good.customer_id,)
    assert [r.reason for r in result.rejected] == [result.rejected[0].reason]
    assert reason in result.rejected[0].reason
    assert list(Customer.objects.filter(store=store).values_list("customer_id", flat=True)) == [good.customer_id]
    [kept] = RejectedRecord.objects.filter(store=store)
    assert reason in kept.reason
    assert (kept.source, kept.origin) == (RecordSource.LOOKUP, None)
    assert kept.customer_id == bad.customer_id[:64]
    assert kept.payload  # what the POS sent, for staff to read


def test_text_in_any_script_and_missing_text_are_stored(store):
    record = dataclasses.replace(make_record(1), first_name="José", last_name="Ødegård 李", notes=None, city="Zürich")

    result = write(store, [record])

    assert result.stored == (record.customer_id,)
    assert not result.rejected
    customer = Customer.objects.get(store=store)
    names = (customer.first_name, customer.last_name, customer.notes, customer.city)
    assert names == ("José", "Ødegård 李", "", "Zürich")


def test_a_payload_with_a_nul_character_is_kept_with_the_nul_escaped_as_the_database_accepts(store):
    bad = make_record(2, first_name="Se\x00an", raw={"id": 1002, "name": "Se\x00an"})

    write(store, [bad])

    [kept] = RejectedRecord.objects.filter(store=store)
    assert kept.payload == {"id": 1002, "name": "Se\\u0000an"}  # more shapes: test_quarantine.py


def test_records_the_client_could_not_parse_are_quarantined_too_with_the_run_as_their_origin(store):
    sync = CustomerSyncFactory(store=store)
    writer = CustomerWriter.for_store(store, source=RecordSource.SYNC, origin=sync)
    error = RecordError(customer_id="77", reason="birthday: not a date ('31/02/1990')", payload={"id": 77})

    staged: list[StagedPage] = []
    writer.write([make_record(1)], errors=[error], alongside=staged.append).result()

    assert staged[0].rejected == 1
    [kept] = sync.record_errors.all()
    assert (kept.store, kept.source, kept.origin) == (store, RecordSource.SYNC, sync)
    assert (kept.customer_id, kept.reason, kept.payload) == ("77", error.reason, {"id": 77})
    assert list(RejectedRecord.objects.filter(sync=sync)) == [kept]


def test_a_writer_keeps_at_most_its_quarantine_limit_and_counts_the_rest(store):
    writer = CustomerWriter.for_store(store, source=RecordSource.SYNC, quarantine_limit=3)
    bad = [make_record(i, gender="Q") for i in range(2)]
    staged: list[StagedPage] = []

    writer.write(bad, alongside=staged.append).result()
    writer.write(bad, alongside=staged.append).result()

    assert [s.rejected for s in staged] == [2, 2]
    assert RejectedRecord.objects.filter(store=store).count() == 3


def test_the_callers_writes_alongside_commit_with_the_page_and_its_failure_rolls_the_page_back(store):
    class Refused(Exception):
        pass

    def refuse(staged: StagedPage) -> None:
        raise Refused

    with pytest.raises(Refused):
        write(store, [make_record(1), make_record(2, gender="Q")], alongside=refuse)

    assert not Customer.objects.filter(store=store).exists()
    assert not RejectedRecord.objects.filter(store=store).exists()


def test_a_full_listing_marks_the_customers_it_did_not_see_inactive(store):
    writer = CustomerWriter.for_store(store, source=RecordSource.SYNC)
    writer.write([make_record(i) for i in range(3)]).result()
    mark = timezone.now()
    Customer.objects.filter(store=store).update(created_at=mark - timedelta(hours=1))
    writer.write([make_record(0), make_record(2)]).result()  # 1001 is no longer listed

    seen: list[int] = []
    assert writer.deactivate_unseen(since=mark, alongside=seen.append) == 1

    assert seen == [1]
    assert dict(Customer.objects.filter(store=store).values_list("customer_id", "active")) == {
        "1000": True,
        "1001": False,
        "1002": True,
    }


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_the_next_call_waits_for_the_page_in_flight(store):
    writer = CustomerWriter.for_store(store, source=RecordSource.SYNC)
    first = writer.write([make_record(i) for i in range(50)])
    second = writer.write([make_record(i) for i in range(25, 75)])  # finishes the first before it starts

    assert counts(first.result()) == (50, 0, 0, 0)
    assert counts(second.result()) == (25, 0, 25, 0)
    assert Customer.objects.filter(store=store).count() == 75


def test_a_page_parses_its_items_once_and_only_when_read():
    calls: list[list[int]] = []

    def parse(items):
        calls.append(list(items))
        records = [make_record(i) for i in items if i >= 0]
        errors = [RecordError(customer_id=None, reason="bad", payload=i) for i in items if i < 0]
        return records, errors

    page = CustomerPage(position={"page": 1}, items=[1, 2, -1, 3, 4], parse=parse)
    assert len(page) == 5
    assert calls == []

    assert [r.customer_id for r in page.records] == ["1001", "1002", "1003", "1004"]
    assert len(page.errors) == 1
    assert calls == [[1, 2, -1, 3, 4]]
    assert len(page) == 5

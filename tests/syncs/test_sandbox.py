"""The engine against the POS sandbox over real HTTP: faults, a killed process, every vendor."""

from __future__ import annotations

import os
import signal
import threading
from urllib.parse import parse_qs, urlsplit

import pytest

from customers.models import Customer, RejectedRecord
from customers.writer import DATA_FIELDS
from syncs.models import SyncKind, SyncStatus
from syncs.services import sync_create

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

FAULTS = "5xx=0.1,429=0.05,retry_after=1,drop=0.02,malformed_record=1/10000,token_ttl=40"


def run(store, kind: str = SyncKind.FULL):
    return sync_create(store=store, kind=kind, trigger="manual")[0].do_process()


def assert_mirror_equals_pos(server, store, *, skip: set[str] = frozenset()) -> int:
    """Every customer the POS has (but `skip`) is in the mirror with exactly the POS's data; nothing else is."""
    client = store.pos_client()
    mirror = {c.customer_id: c for c in Customer.objects.filter(store=store).iterator(chunk_size=2000)}
    expected = 0
    for raw in server.vendor_records(store.pos_vendor):
        record = client.parse_record(raw)
        if record.customer_id in skip:
            continue
        expected += 1
        customer = mirror.pop(record.customer_id)
        for name in DATA_FIELDS:
            want = getattr(record, name)
            if name == "active":
                want = want and not record.merged_into_customer_id
            elif name == "merged_into_customer_id":
                want = want or ""  # text columns hold "" for none
            assert getattr(customer, name) == want, (record.customer_id, name)
        assert customer.raw == raw, record.customer_id
    assert not mirror, f"{len(mirror)} customers the POS does not have"
    return expected


def test_a_sync_through_every_fault_ends_with_the_mirror_equal_to_the_pos(sandbox_store, no_sleep):
    # Seed 3 makes exactly one of the 10,000 records malformed; tokens expire every 40 requests.
    server, store = sandbox_store("treez", customers=10_000, seed=3, faults=FAULTS)
    [malformed] = server.malformed_ids("treez")

    sync = run(store)

    assert sync.status == SyncStatus.FINISHED, (sync.error_type, sync.error_message)
    assert (sync.fetched, sync.created, sync.invalid) == (10_000, 9_999, 1)
    [bad] = RejectedRecord.objects.filter(sync=sync)
    assert bad.customer_id == malformed
    assert bad.payload
    assert no_sleep  # it did wait out 429s and backoffs
    assert assert_mirror_equals_pos(server, store, skip={malformed}) == 9_999

    # The POS keeps changing; an incremental sync under the same faults catches up exactly.
    server.modify("treez", 25)
    server.create("treez", 5)
    again = run(store, kind=SyncKind.INCREMENTAL)
    assert again.status == SyncStatus.FINISHED, (again.error_type, again.error_message)
    assert again.created == 5
    assert again.updated >= 25
    assert_mirror_equals_pos(server, store, skip={malformed})


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("moment", ["fetching", "writing"])
def test_a_sync_killed_with_sigkill_loses_nothing_and_the_next_fetches_at_most_one_page_again(
    sandbox_store, process_syncs, moment
):
    server, _ = sandbox_store("leaflogix", customers=3000, seed=5, faults="slow=30ms")
    pages: list[tuple[int, int]] = []  # (worker number, page requested)
    worker = {"n": 0, "pid": 0}
    dispatch = server.app.dispatch

    def spy(method, target, headers, body):
        page = None
        if "customers-paginated" in target:
            page = int(parse_qs(urlsplit(target).query)["PageNumber"][0])
            pages.append((worker["n"], page))
        kill = worker["n"] == 1 and page == 12
        if kill and moment == "fetching":
            # Killed while the server takes its 30 ms over page 12: page 11 was written and committed
            # (on PostgreSQL its COMMIT went out with its writes, before this request).
            threading.Timer(0.01, os.kill, (worker["pid"], signal.SIGKILL)).start()
        response = dispatch(method, target, headers, body)
        if kill and moment == "writing":
            # Killed a moment after page 12 is on its way: mid-parse or mid-write.
            threading.Timer(0.01, os.kill, (worker["pid"], signal.SIGKILL)).start()
        return response

    server.app.dispatch = spy
    crash = process_syncs(server, pages_in_flight=1)  # one page at a time (several: test_pages_in_flight.py)

    worker["n"] = 1
    first = crash.start()
    worker["pid"] = first.pid
    assert first.wait(timeout=60) == -signal.SIGKILL
    committed = crash.killed_sync_pages()
    assert 10 <= committed <= 12
    if moment == "fetching":
        assert committed == 11

    worker["n"] = 2
    crash.resume_after_the_lease()
    fetched_by = {n: [p for w, p in pages if w == n] for n in (1, 2)}
    assert len(set(fetched_by[1]) & set(fetched_by[2])) <= 1
    assert fetched_by[2][0] == committed + 1
    crash.assert_mirror_equals_pos(3000)


@pytest.mark.parametrize("vendor", ["leaflogix", "treez", "flowhub", "covasoft", "blaze"])
def test_every_vendor_converges_through_changes_made_during_and_between_syncs(sandbox_store, no_sleep, vendor):
    server, store = sandbox_store(vendor, customers=1500, seed=11, faults="5xx=0.05,429=0.03,drop=0.02")
    dispatch = server.app.dispatch
    calls = {"n": 0}

    def spy(method, target, headers, body):
        response = dispatch(method, target, headers, body)
        calls["n"] += 1
        if calls["n"] == 4:
            server.modify(vendor, 20)  # while the first sync pages through
            server.create(vendor, 3)
        return response

    server.app.dispatch = spy
    first = run(store)
    assert first.status == SyncStatus.FINISHED, (first.error_type, first.error_message)
    server.app.dispatch = dispatch

    server.modify(vendor, 10)
    gone = server.delete(vendor, 2)
    incremental = run(store, kind=SyncKind.INCREMENTAL)
    assert incremental.status == SyncStatus.FINISHED, (incremental.error_type, incremental.error_message)
    were_active = Customer.objects.filter(store=store, customer_id__in=gone, active=True).count()
    full = run(store)
    assert full.status == SyncStatus.FINISHED, (full.error_type, full.error_message)

    assert full.deactivated == were_active
    assert set(
        Customer.objects.filter(store=store, active=False, customer_id__in=gone).values_list("customer_id", flat=True)
    ) == set(gone)
    Customer.objects.filter(store=store, customer_id__in=gone).delete()
    assert assert_mirror_equals_pos(server, store) == 1501

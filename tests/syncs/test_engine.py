"""The sync engine against an in-memory POS: lifecycle, counts, cursors, correctness, failures, resume."""

from __future__ import annotations

import dataclasses
import gc
import threading
import tracemalloc
from datetime import datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from customers.models import Customer, RecordSource, RejectedRecord
from customers.writer import PostgresPageStatements
from pos_integrations.errors import PosAuthError, PosRateLimited, PosUnavailable
from pos_integrations.records import RecordError
from syncs.choices import RESUME_AFTER
from syncs.engine import SyncRunner, WaitBudgetExhausted
from syncs.models import CustomerSync, SyncKind, SyncStatus
from syncs.services import sync_create, sync_resume_deferred
from tests.factories import CustomerFactory
from tests.syncs.conftest import BASE_TIME, make_record

pytestmark = pytest.mark.django_db


@pytest.fixture(
    autouse=True,
    params=[
        pytest.param("in-transaction", id="in-transaction"),
        pytest.param("autocommit", id="autocommit", marks=pytest.mark.django_db(transaction=True)),
    ],
)
def write_mode(request, monkeypatch):
    """Every test twice: inside a caller's transaction (each page waits for its writes), and in
    autocommit as a worker runs, where on PostgreSQL each page's COMMIT goes ahead with its writes."""
    sent: list[bool] = []
    original = PostgresPageStatements.send

    def send(self, rows, **kwargs):
        sent.append(kwargs["commit"])
        return original(self, rows, **kwargs)

    monkeypatch.setattr(PostgresPageStatements, "send", send)
    yield request.param
    if connection.vendor == "postgresql" and sent:
        assert all(sent) if request.param == "autocommit" else not any(sent)


def run(store, kind: str = SyncKind.INCREMENTAL, **kwargs) -> CustomerSync:
    sync, created = sync_create(store=store, kind=kind, trigger="manual")
    assert created
    return sync.do_process(**kwargs)


def mirror(store) -> dict[str, Customer]:
    return {c.customer_id: c for c in Customer.objects.filter(store=store)}


def test_a_first_sync_mirrors_every_customer_and_records_its_run(store, fake_pos):
    before = timezone.now()
    sync = run(store)

    assert sync.status == SyncStatus.FINISHED
    assert (sync.fetched, sync.created, sync.updated, sync.unchanged, sync.invalid) == (25, 25, 0, 0, 0)
    assert sync.pages == 3
    assert before <= sync.started_at <= sync.heartbeat_at <= sync.finished_at
    assert sync.cursor_from is None
    assert sync.cursor_to == sync.cursor_bound == sync.started_at
    assert sync.error_type == sync.error_message == ""
    customers = mirror(store)
    assert set(customers) == set(fake_pos.records)
    c = customers["1007"]
    pos = fake_pos.records["1007"]
    assert (c.first_name, c.email, c.phone, c.birthday, c.gender, c.loyalty_points) == (
        pos.first_name,
        pos.email,
        pos.phone,
        pos.birthday,
        pos.gender,
        pos.loyalty_points,
    )
    assert c.pos_updated_at == pos.pos_updated_at
    assert c.raw == pos.raw
    assert c.synced_at is not None
    assert c.active


def test_an_incremental_sync_starts_at_the_last_cursor_minus_the_overlap_and_rewrites_nothing_unchanged(
    store, fake_pos
):
    first = run(store)
    fake_pos.add(make_record(99, updated=first.cursor_to - timedelta(seconds=10)))  # late write, inside the overlap
    stamps = {c.customer_id: c.updated_at for c in Customer.objects.filter(store=store)}

    second = run(store)

    assert second.cursor_from == first.cursor_to - fake_pos.overlap
    assert fake_pos.fetches[-1]["since"] == second.cursor_from.isoformat()
    assert (second.fetched, second.created, second.updated, second.unchanged) == (1, 1, 0, 0)
    assert {c.customer_id: c.updated_at for c in Customer.objects.filter(store=store).exclude(customer_id="1099")} == (
        stamps
    )


def test_records_seen_again_in_the_overlap_are_counted_unchanged_not_rewritten(store, fake_pos):
    run(store)
    fake_pos.modify("1003", first_name="Renamed")
    second = run(store)
    assert (second.updated, second.unchanged) == (1, 0)
    before = Customer.objects.get(store=store, customer_id="1003").updated_at

    third = run(store)  # the same record is still inside the overlap window

    assert (third.fetched, third.updated, third.unchanged) == (1, 0, 1)
    assert Customer.objects.get(store=store, customer_id="1003").updated_at == before


def test_a_changed_record_is_updated(store, fake_pos):
    run(store)
    fake_pos.modify("1004", email="new@example.com", loyalty_points=fake_pos.records["1004"].loyalty_points + 5)
    sync = run(store)
    assert sync.updated == 1
    customer = Customer.objects.get(store=store, customer_id="1004")
    assert customer.email == "new@example.com"
    assert customer.pos_updated_at == fake_pos.records["1004"].pos_updated_at


def test_an_older_pos_version_never_overwrites_a_newer_one(store, fake_pos):
    newer = timezone.now()
    CustomerFactory(store=store, customer_id="1005", first_name="Newer", pos_updated_at=newer)

    sync = run(store, kind=SyncKind.FULL)

    customer = Customer.objects.get(store=store, customer_id="1005")
    assert customer.first_name == "Newer"
    assert customer.pos_updated_at == newer
    assert (sync.created, sync.unchanged) == (24, 1)


def test_a_record_changed_during_the_sync_after_its_page_was_read_is_caught_by_the_next_sync(store, fake_pos):
    fake_pos.order = "id"  # the listing order does not change when a record does
    fake_pos.after_page[2] = lambda pos: pos.modify("1001", first_name="Changed mid-sync")

    first = run(store)
    assert first.status == SyncStatus.FINISHED
    assert Customer.objects.get(store=store, customer_id="1001").first_name == "First1"
    second = run(store)
    assert Customer.objects.get(store=store, customer_id="1001").first_name == "Changed mid-sync"
    assert second.updated == 1


def test_a_record_moving_in_the_listing_mid_sync_cannot_make_the_sync_miss_its_neighbour(store, fake_pos):
    # 1001 (page 1, read) changes and jumps to the end of an oldest-first listing: every later record
    # slides back one place, so the first record of page 3 slides into page 2, which was already read.
    fake_pos.after_page[2] = lambda pos: pos.modify("1001", first_name="Moved")

    first = run(store)
    assert first.status == SyncStatus.FINISHED
    assert first.cursor_to < first.cursor_bound  # the cursor was held back to 1001's old time
    run(store)

    customers = mirror(store)
    assert set(customers) == set(fake_pos.records)
    assert customers["1001"].first_name == "Moved"


def test_a_record_at_exactly_the_cursor_is_not_missed_even_when_the_pos_filter_is_exclusive(store, fake_pos):
    fake_pos.strict_since = True
    first = run(store)
    fake_pos.add(make_record(50, updated=first.cursor_to))  # written at the very instant the bound was taken

    run(store)

    assert "1050" in mirror(store)


def test_clock_skew_within_the_overlap_loses_nothing(store, fake_pos):
    # The POS clock runs 45 s behind ours: a change made right after our bound carries an older stamp.
    fake_pos.clock_offset = -timedelta(seconds=45)
    fake_pos.after_page[3] = lambda pos: pos.modify("1002", last_name="Skewed")

    first = run(store)
    assert fake_pos.records["1002"].pos_updated_at < first.cursor_to
    run(store)

    assert Customer.objects.get(store=store, customer_id="1002").last_name == "Skewed"


def test_records_stamped_in_the_future_by_a_fast_pos_clock_are_kept_and_seen_again_unchanged(store, fake_pos):
    fake_pos.clock_offset = timedelta(minutes=10)
    run(store)
    fake_pos.modify("1006", first_name="Future")
    second = run(store)
    third = run(store)
    assert second.updated == 1
    assert (third.fetched, third.unchanged) == (1, 1)
    assert Customer.objects.get(store=store, customer_id="1006").first_name == "Future"


def test_a_full_sync_marks_customers_gone_or_merged_inactive_and_counts_them(store, fake_pos):
    run(store)
    fake_pos.delete("1010")
    fake_pos.modify("1011", merged_into_customer_id="1012")
    stranger = CustomerFactory(store=store, customer_id="local-only", synced_at=None)
    stranger.created_at = timezone.now() - timedelta(days=1)
    stranger.save()

    sync = run(store, kind=SyncKind.FULL)

    customers = mirror(store)
    assert not customers["1010"].active
    assert not customers["1011"].active
    assert not customers["local-only"].active
    assert sum(c.active for c in customers.values()) == 23
    assert sync.deactivated == 3
    assert sorted(fake_pos.lookups) == ["1010", "local-only"]  # few missing: each checked at the POS first


def test_a_full_sync_keeps_customers_the_listing_skipped_but_the_pos_still_has(store, fake_pos):
    run(store)
    hidden = fake_pos.records.pop("1013")  # the listing misses it (it shifted between pages)…
    original_get = fake_pos.client

    def client(**kwargs):
        c = original_get(**kwargs)
        c.get_customer = lambda cid: hidden if cid == "1013" else None  # …but the POS knows it
        return c

    fake_pos.client = client
    sync = run(store, kind=SyncKind.FULL)

    assert Customer.objects.get(store=store, customer_id="1013").active
    assert sync.deactivated == 0


def test_a_full_sync_that_lists_nothing_refuses_to_deactivate_everyone(store, fake_pos):
    run(store)
    fake_pos.records.clear()

    sync = run(store, kind=SyncKind.FULL)

    assert sync.status == SyncStatus.FAILED
    assert sync.error_type == "MissingCustomersGuard"
    assert Customer.objects.filter(store=store, active=True).count() == 25


def test_bad_records_are_quarantined_with_reason_and_payload_while_the_rest_goes_on(store, fake_pos):
    fake_pos.bad_records[1] = [RecordError(customer_id="bad-1", reason="birthday is not a date", payload={"x": 1})]
    fake_pos.add(make_record(70, first_name="x" * 151))

    sync = run(store)

    assert sync.status == SyncStatus.FINISHED
    assert (sync.fetched, sync.created, sync.invalid) == (27, 25, 2)
    errors = {e.customer_id: e for e in RejectedRecord.objects.filter(sync=sync)}
    assert errors["bad-1"].reason == "birthday is not a date"
    assert errors["bad-1"].payload == {"x": 1}
    assert "first_name is longer than 150" in errors["1070"].reason
    assert errors["1070"].payload["id"] == 1070
    assert "1070" not in mirror(store)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        pytest.param({"email": "x" * 290 + "@example.com"}, "email is longer than 254", id="300-character-email"),
        pytest.param({"first_name": "Se\x00an", "raw": {"id": 1070, "name": "Se\x00an"}}, "NUL", id="nul-in-name"),
    ],
)
def test_a_record_the_mirror_cannot_hold_is_quarantined_with_the_sync_and_never_stored(store, fake_pos, change, reason):
    fake_pos.add(make_record(70, **change))

    sync = run(store)

    assert sync.status == SyncStatus.FINISHED
    assert (sync.fetched, sync.created, sync.invalid) == (26, 25, 1)
    assert "1070" not in mirror(store)
    [kept] = sync.record_errors.all()
    assert (kept.customer_id, kept.source, kept.store) == ("1070", RecordSource.SYNC, store)
    assert reason in kept.reason


def test_too_many_invalid_records_fail_the_sync(store, fake_pos, settings):
    settings.SYNC_MAX_INVALID_RATIO = 0.05
    fake_pos.records = {r.customer_id: r for r in (make_record(i) for i in range(200))}
    fake_pos.bad_records[1] = [RecordError(customer_id=f"bad-{i}", reason="unreadable") for i in range(11)]

    sync = run(store)

    assert sync.status == SyncStatus.FAILED
    assert sync.error_type == "InvalidRecordThreshold"
    assert "11 of 211 records were invalid" in sync.error_message
    assert mirror(store)  # the good records were still written


def test_duplicates_within_a_page_keep_the_newest_version(store, fake_pos):
    fake_pos.page_size = 100
    older = make_record(3, updated=BASE_TIME - timedelta(days=500), first_name="Old")
    fake_pos.records["dup"] = dataclasses.replace(older, customer_id="1003")

    sync = run(store)

    assert Customer.objects.get(store=store, customer_id="1003").first_name == "First3"
    assert (sync.fetched, sync.created, sync.unchanged) == (26, 25, 1)


def test_a_pos_failure_fails_the_sync_with_its_type_and_message_and_reports_to_sentry(store, fake_pos, sentry_events):
    fake_pos.faults[2] = PosAuthError("Treez answered 401 to GET /customer: credentials rejected", vendor="treez")

    sync = run(store)

    assert sync.status == SyncStatus.FAILED
    assert sync.error_type == "PosAuthError"
    assert sync.error_message == "Treez answered 401 to GET /customer: credentials rejected"
    assert sync.finished_at is not None
    assert sync.fetched == 10  # the first page was kept
    [event] = sentry_events
    assert event["tags"]["store"] == store.catalog_id
    assert event["tags"]["pos_vendor"] == store.pos_vendor
    assert event["contexts"]["customer_sync"]["id"] == sync.pk
    assert "First" not in str(event)
    assert "example.com" not in str(event)


def test_a_transient_rate_limit_is_waited_out_and_only_the_failed_page_is_fetched_again(store, fake_pos, no_sleep):
    fake_pos.faults[2] = PosRateLimited("429", retry_after=7)

    sync = run(store)

    assert sync.status == SyncStatus.FINISHED
    assert sync.fetched == 25
    assert no_sleep == [7]
    assert [f["page"] for f in fake_pos.fetches] == [1, 2, 2, 3]


def test_rate_limits_past_the_budget_stop_at_the_checkpoint_and_the_next_sync_resumes_there(
    store, fake_pos, no_sleep, settings
):
    settings.SYNC_RATE_LIMIT_BUDGET_SECONDS = 30
    fake_pos.faults[2] = PosRateLimited("429", retry_after=20)
    fake_pos.faults[3] = PosRateLimited("429", retry_after=20)

    failed = run(store)

    assert failed.status == SyncStatus.FAILED
    assert failed.error_type == "RateLimited"
    assert "budget" in failed.error_message
    assert failed.checkpoint["position"]["page"] == 2
    assert failed.cursor_to is None

    fake_pos.fetches.clear()
    resumed = run(store)

    assert resumed.status == SyncStatus.FINISHED
    assert resumed.resumed_from_id == failed.pk
    assert (resumed.cursor_from, resumed.cursor_bound) == (failed.cursor_from, failed.cursor_bound)
    assert [f["page"] for f in fake_pos.fetches] == [2, 3]
    assert resumed.fetched == 15
    assert len(mirror(store)) == 25


def test_a_rate_limit_longer_than_a_sync_waits_in_its_worker_frees_it_and_the_catch_up_carries_the_sync_on(
    store, fake_pos, no_sleep, settings, monkeypatch, django_capture_on_commit_callbacks
):
    settings.SYNC_RATE_LIMIT_HOLD_SECONDS = 30
    fake_pos.faults[2] = PosRateLimited("429", retry_after=90)

    stopped = run(store)

    assert no_sleep == []  # the worker was not held for the 90 s
    assert (stopped.status, stopped.error_type) == (SyncStatus.FAILED, "RateLimited")
    assert "to free the worker" in stopped.error_message
    assert stopped.checkpoint["position"]["page"] == 2
    resume_at = datetime.fromisoformat(stopped.checkpoint[RESUME_AFTER])
    assert 89 <= (resume_at - stopped.finished_at).total_seconds() <= 91

    queued: list[CustomerSync] = []
    monkeypatch.setattr("syncs.services.sync_enqueue", lambda *, sync: queued.append(sync))
    assert sync_resume_deferred(now=resume_at - timedelta(seconds=1)) == []  # the POS's wait is not over
    with django_capture_on_commit_callbacks(execute=True):
        [resumed] = sync_resume_deferred(now=resume_at)
    assert queued == [resumed]
    assert sync_resume_deferred(now=resume_at + timedelta(minutes=1)) == []  # once: it is the store's latest now
    assert resumed.resumed_from_id == stopped.pk
    assert RESUME_AFTER not in resumed.checkpoint

    fake_pos.fetches.clear()
    finished = resumed.do_process()

    assert finished.status == SyncStatus.FINISHED
    assert [f["page"] for f in fake_pos.fetches] == [2, 3]  # from the checkpoint
    assert len(mirror(store)) == 25


def test_a_sync_rate_limited_again_before_its_first_page_is_still_carried_on_from_the_checkpoint(
    store, fake_pos, no_sleep, settings
):
    settings.SYNC_RATE_LIMIT_HOLD_SECONDS = 30
    fake_pos.faults[2] = PosRateLimited("429", retry_after=90)
    stopped = run(store)
    # The POS still says wait, at the next sync's first request (faults count every request).
    fake_pos.faults[len(fake_pos.fetches) + 1] = PosRateLimited("429", retry_after=60)
    again = run(store)
    assert (again.resumed_from_id, again.pages, again.error_type) == (stopped.pk, 0, "RateLimited")

    fake_pos.fetches.clear()
    last = run(store)

    assert last.resumed_from_id == again.pk
    assert [f["page"] for f in fake_pos.fetches] == [2, 3]


def test_a_store_that_no_longer_syncs_is_not_carried_on(store, fake_pos, no_sleep, settings):
    settings.SYNC_RATE_LIMIT_HOLD_SECONDS = 30
    fake_pos.faults[2] = PosRateLimited("429", retry_after=90)
    stopped = run(store)
    store.sync_enabled = False
    store.save(update_fields=["sync_enabled"])

    assert sync_resume_deferred(now=stopped.finished_at + timedelta(minutes=5)) == []


@pytest.fixture
def refuse_boom(db):
    """The database refuses any customer named Boom (a stand-in for a row it cannot take)."""
    if connection.vendor == "postgresql":
        create = 'ALTER TABLE customers_customer ADD CONSTRAINT "refuse_boom" CHECK ("first_name" <> \'Boom\')'
        drop = 'ALTER TABLE customers_customer DROP CONSTRAINT IF EXISTS "refuse_boom"'
    else:
        create = (
            "CREATE TRIGGER \"refuse_boom\" BEFORE INSERT ON customers_customer WHEN NEW.first_name = 'Boom' "
            "BEGIN SELECT RAISE(ABORT, 'refuse_boom'); END"
        )
        drop = 'DROP TRIGGER IF EXISTS "refuse_boom"'
    with connection.cursor() as cursor:
        cursor.execute(create)
    yield
    if not connection.in_atomic_block:  # a test in a transaction rolls it back with the rest
        with connection.cursor() as cursor:
            cursor.execute(drop)


def test_a_page_the_database_refuses_is_rolled_back_with_its_checkpoint_and_the_next_sync_resumes_there(
    store, fake_pos, refuse_boom, sentry_events, caplog
):
    boom = fake_pos.records["1015"] = dataclasses.replace(fake_pos.records["1015"], first_name="Boom")  # page 2

    failed = run(store)

    assert failed.status == SyncStatus.FAILED
    assert failed.error_type == "IntegrityError"
    assert "refuse_boom" in failed.error_message
    assert boom.email not in failed.error_message
    assert boom.email not in str(sentry_events)
    assert boom.email not in caplog.text
    assert (failed.pages, failed.fetched, failed.created) == (1, 10, 10)  # page 1 only, counted
    assert failed.checkpoint["position"]["page"] == 2
    assert sorted(mirror(store)) == [f"{1000 + i}" for i in range(10)]

    fake_pos.modify("1015", first_name="Fixed")
    fake_pos.fetches.clear()
    resumed = run(store)

    assert resumed.status == SyncStatus.FINISHED
    assert resumed.resumed_from_id == failed.pk
    assert fake_pos.fetches[0]["page"] == 2
    assert set(mirror(store)) == set(fake_pos.records)
    assert mirror(store)["1015"].first_name == "Fixed"


def test_a_pos_that_stays_down_fails_the_sync_after_a_few_retries_from_the_checkpoint(store, fake_pos, no_sleep):
    for n in range(2, 8):
        fake_pos.faults[n] = PosUnavailable("Treez answered 503")

    sync = run(store)

    assert sync.status == SyncStatus.FAILED
    assert sync.error_type == "PosUnavailable"
    assert len(no_sleep) == 3


def test_the_heartbeat_is_renewed_with_every_page(store, fake_pos):
    beats = []
    run(store, progress=lambda s: beats.append(CustomerSync.objects.get(pk=s.pk).heartbeat_at))
    assert len(beats) == 3
    assert beats == sorted(beats)
    assert len(set(beats)) == 3


def test_a_sync_that_lost_its_lease_stops_writing(store, fake_pos):
    def reap(pos):
        CustomerSync.objects.filter(store=store).update(status=SyncStatus.FAILED, error_type="Abandoned")

    fake_pos.after_page[1] = reap
    sync = run(store)

    assert sync.status == SyncStatus.FAILED
    assert sync.error_type == "Abandoned"
    assert Customer.objects.filter(store=store).count() == 10


def test_a_sync_that_is_not_pending_is_not_run_again(store, fake_pos):
    sync = run(store)
    fake_pos.fetches.clear()
    assert sync.do_process().status == SyncStatus.FINISHED
    assert fake_pos.fetches == []


@pytest.mark.parametrize("page_size", [20, 200])
def test_queries_per_page_are_constant(store, fake_pos, page_size):
    fake_pos.records = {r.customer_id: r for r in (make_record(i) for i in range(page_size * 6))}
    fake_pos.page_size = page_size

    def queries_for(kind: str) -> tuple[int, int]:
        with CaptureQueriesContext(connection) as ctx:
            sync = run(store, kind=kind)
        return len(ctx.captured_queries), sync.pages

    queries, pages = queries_for(SyncKind.FULL)
    assert pages == 6
    fake_pos.records = {k: dataclasses.replace(v, first_name="x") for k, v in list(fake_pos.records.items())[:300]}
    fake_pos.page_size = page_size // 2
    more_queries, more_pages = queries_for(SyncKind.FULL)
    per_page = (more_queries - queries) / (more_pages - pages) if more_pages != pages else None
    # Each page: SELECT held ids, upsert, touch seen (full), save checkpoint, plus savepoint/commit, and the
    # erasure check (customers.erasure: on PostgreSQL the store's shared erasure lock, then a look for any).
    assert queries <= 12 + 10 * pages
    if per_page is not None:
        assert per_page <= 10


def test_memory_stays_flat_as_the_number_of_customers_grows(store, fake_pos):
    def peak_for(n: int) -> int:
        fake_pos.records = {r.customer_id: r for r in (make_record(i) for i in range(n))}
        fake_pos.page_size = 200
        Customer.objects.filter(store=store).delete()
        fake_pos.listing(None)  # the fake POS sorts its listing once, outside the measurement
        gc.collect()
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        run(store, kind=SyncKind.FULL)
        peak = tracemalloc.get_traced_memory()[1] - base
        tracemalloc.stop()
        return peak

    # Ten times the customers, about the same peak: nothing is held per customer (a kept record or model per
    # customer would be about 1 KB each: 20 MB here). In the whole suite the peak at 20,000 came out at 1.50x the
    # one at 2,000 in two runs in a row (about 26 bytes per customer more, on its own 1.2x): bounded at 2x until
    # that is explained.
    small, large = peak_for(2000), peak_for(20000)
    assert large < small * 2, (small, large)


def test_pages_fetched_ahead_waiting_for_the_same_window_count_once_against_the_wait_budget(store, no_sleep, settings):
    settings.SYNC_RATE_LIMIT_BUDGET_SECONDS = 30
    sync = sync_create(store=store, kind=SyncKind.FULL, trigger="manual")[0]
    assert sync.claim()
    runner = SyncRunner(sync=sync, progress=None)
    refused: list[BaseException] = []

    def page_ahead() -> None:  # as the HTTP layer of a page fetched ahead waits out a 429's Retry-After
        try:
            runner.wait(20)
        except WaitBudgetExhausted as exc:
            refused.append(exc)

    threads = [threading.Thread(target=page_ahead) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    assert refused == []  # four pages waiting 20 s at once: 20 s of the sync's 30
    assert no_sleep == [20, 20, 20, 20]
    with pytest.raises(WaitBudgetExhausted, match="budget"):
        runner.wait(20)  # the sync's own 20 s more would pass it

"""rotate_pii_keys: after a rotation every value reads the same under the new keys alone; lookups work throughout;
a stopped run carries on; a write made meanwhile is kept; nothing of the data reaches the output; on PostgreSQL,
several workers share the rows, keep a concurrent write, and a worker's death fails the run, which a rerun
finishes."""

from __future__ import annotations

import multiprocessing
import os
import queue
import signal
import threading
from io import StringIO
from typing import Any

import pytest
from django import db
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction
from rest_framework.test import APIClient

from customers import key_rotation
from customers.models import Customer, IdempotencyRecord, RejectedRecord
from stores.services import api_key_create
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

OLD = "t1"  # the test keys' id (tests/pytest_env.py)
NEW_KEY = "k2:" + "Q" * 43 + "="
NEW_INDEX_KEY = "k2:" + "R" * 43 + "="
LICENCES = [f"D41{n:05d}" for n in range(7)]
CARDS = [f"MED-{n:04d}-CA" for n in range(7)]


def raw_of(n: int) -> dict[str, Any]:
    return {"id": str(5000 + n), "driversLicense": LICENCES[n], "medical": {"card": CARDS[n], "points": [n, None]}}


@pytest.fixture
def customers(store) -> list[Customer]:
    """Seven customers under the test keys; the last one without a licence or card (nothing to index)."""
    made: list[Customer] = [
        CustomerFactory.create(store=store, drivers_license=LICENCES[n], medical_card_number=CARDS[n], raw=raw_of(n))
        for n in range(6)
    ]
    made.append(CustomerFactory.create(store=store, raw={}))
    return made


@pytest.fixture
def quarantined(store) -> tuple[RejectedRecord, IdempotencyRecord]:
    key, _ = api_key_create(name="creates")
    rejected = RejectedRecord.objects.create(
        store=store, source="sync", customer_id="77", reason="bad", payload={"driversLicense": "D7777777"}
    )
    answer = IdempotencyRecord.objects.create(
        api_key=key, key="k-1", request_hash="0" * 64, response={"customer": {"drivers_license": "D7777777"}}
    )
    return rejected, answer


def new_keys_first(settings: Any) -> None:
    settings.PII_ENCRYPTION_KEYS = [NEW_KEY, *settings.PII_ENCRYPTION_KEYS]
    settings.PII_BLIND_INDEX_KEYS = [NEW_INDEX_KEY, *settings.PII_BLIND_INDEX_KEYS]


def only_new_keys(settings: Any) -> None:
    settings.PII_ENCRYPTION_KEYS = [NEW_KEY]
    settings.PII_BLIND_INDEX_KEYS = [NEW_INDEX_KEY]


def rotate(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("rotate_pii_keys", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def stored_values() -> list[tuple[Any, ...]]:
    """Every encrypted column and index key id as the database holds them."""
    with connection.cursor() as cursor:
        cursor.execute(
            'SELECT "drivers_license", "medical_card_number", "raw", "pii_index_key" FROM "customers_customer" '
            'ORDER BY "id"'
        )
        found = [tuple(row) for row in cursor.fetchall()]
        cursor.execute('SELECT "payload" FROM "customers_rejectedrecord" ORDER BY "id"')
        found += [tuple(row) for row in cursor.fetchall()]
        cursor.execute('SELECT "response" FROM "customers_idempotencyrecord" ORDER BY "id"')
        found += [tuple(row) for row in cursor.fetchall()]
    return found


def key_ids_stored() -> set[str]:
    """The key ids of every ciphertext stored, and every customer's index key id."""
    ids = set()
    for row in stored_values():
        for value in row:
            if not value:
                continue
            ids.add(value.split(".")[1] if value.startswith("cf1.") else value)
    return ids


def lookup_ids(client: APIClient, **query: str) -> list[int]:
    answer = client.get("/api/v1/customers", query)
    assert answer.status_code == 200, answer.content
    return [c["id"] for c in answer.json()["customers"]]


def assert_all_readable(customers: list[Customer], client: APIClient) -> None:
    """Each customer reads as written, through the ORM and the API, and is found by its licence and card."""
    for n, customer in enumerate(customers):
        held = Customer.objects.get(pk=customer.pk)
        if n < len(LICENCES) - 1:
            assert (held.drivers_license, held.medical_card_number, held.raw) == (LICENCES[n], CARDS[n], raw_of(n))
            assert list(Customer.objects.licence_equal(LICENCES[n].lower()).values_list("pk", flat=True)) == [
                customer.pk
            ]
            assert list(Customer.objects.card_number_equal(CARDS[n]).values_list("pk", flat=True)) == [customer.pk]
            assert lookup_ids(client, driver_license=LICENCES[n].lower()) == [customer.pk]
            answer = client.get(f"/api/v1/customers/{customer.pk}").json()["customer"]
            assert (answer["drivers_license"], answer["medical_card_number"]) == (LICENCES[n], CARDS[n])
        else:
            assert (held.drivers_license, held.medical_card_number, held.raw) == ("", "", {})


@pytest.fixture
def client() -> APIClient:
    _, raw = api_key_create(name="reader")  # every scope, pii included
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    return api


def test_after_a_rotation_everything_reads_the_same_under_the_new_keys_alone(settings, customers, quarantined, client):
    assert key_ids_stored() == {OLD}
    new_keys_first(settings)

    out, err = rotate("--batch-size", "3")

    assert "Rotated in" in out
    # 7 customers, a quarantined record and an idempotency record.
    assert "9 rows re-encrypted, 7 re-indexed, 0 skipped because changed meanwhile, 0 left" in out
    assert err == ""  # no progress bar when the output is not a terminal
    for secret in [*LICENCES, *CARDS, "D7777777"]:
        assert secret not in out + err
    only_new_keys(settings)
    assert key_ids_stored() == {"k2"}
    assert_all_readable(customers, client)
    rejected, answer = quarantined
    assert RejectedRecord.objects.get(pk=rejected.pk).payload == {"driversLicense": "D7777777"}
    assert IdempotencyRecord.objects.get(pk=answer.pk).response == {"customer": {"drivers_license": "D7777777"}}
    # Nothing in clear in any column the rotation wrote.
    text = repr(stored_values())
    for secret in [*LICENCES, *CARDS, "D7777777"]:
        assert secret not in text

    # Run again: nothing left to do.
    out, _ = rotate()
    assert "customers: nothing to rotate" in out
    assert "0 rows re-encrypted, 0 re-indexed" in out


def test_lookups_and_reads_work_in_the_middle_of_a_rotation(settings, customers, client):
    new_keys_first(settings)
    seen: list[int] = []

    def after_batch(label: str, rows: int, last_id: int) -> None:
        seen.append(rows)
        if len(seen) == 1:
            assert key_ids_stored() == {OLD, "k2"}  # half way: some rows under each key
            assert_all_readable(customers, client)

    result = key_rotation.pii_keys_rotate(batch_size=3, on_batch=after_batch)
    assert result.finished
    assert seen[:3] == [3, 3, 1]
    only_new_keys(settings)
    assert_all_readable(customers, client)


@pytest.mark.parametrize("stop", [KeyboardInterrupt, RuntimeError], ids=["ctrl-c", "a failure"])
def test_a_run_stopped_in_the_middle_of_a_batch_carries_on_when_run_again(
    settings, customers, client, monkeypatch, stop
):
    new_keys_first(settings)
    real_reseal = key_rotation._reseal
    calls = 0

    def reseal_then_stop(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise stop  # the second batch, before its write
        return real_reseal(*args, **kwargs)

    monkeypatch.setattr(key_rotation, "_reseal", reseal_then_stop)
    err = StringIO()
    with pytest.raises(SystemExit if stop is KeyboardInterrupt else RuntimeError) as stopped:
        call_command("rotate_pii_keys", "--batch-size", "3", stdout=StringIO(), stderr=err)
    if stop is KeyboardInterrupt:
        assert stopped.value.code == 130
        assert "run the command again to carry on" in err.getvalue()
    monkeypatch.setattr(key_rotation, "_reseal", real_reseal)

    # The first batch stayed rotated; the second was not written. Every row reads either way.
    per_row = [row[3] for row in stored_values()[: len(customers)]]
    assert per_row == ["k2"] * 3 + [OLD] * 4
    assert_all_readable(customers, client)

    out, _ = rotate("--batch-size", "3")
    assert "customers: 4 rows to rotate" in out
    assert "4 rows re-encrypted, 4 re-indexed" in out
    only_new_keys(settings)
    assert key_ids_stored() == {"k2"}
    assert_all_readable(customers, client)


def test_a_write_between_a_batch_read_and_its_write_is_kept(settings, customers, client, monkeypatch):
    new_keys_first(settings)
    real_reseal = key_rotation._reseal
    changed = customers[1]

    def reseal_then_a_sync_writes(*args: Any, **kwargs: Any) -> Any:
        updates = real_reseal(*args, **kwargs)
        if any(update.pk == changed.pk for update in updates):
            customer = Customer.objects.get(pk=changed.pk)
            customer.drivers_license = "N9999999"
            customer.raw = {"driversLicense": "N9999999"}
            customer.save()
        return updates

    monkeypatch.setattr(key_rotation, "_reseal", reseal_then_a_sync_writes)
    out, _ = rotate("--batch-size", "3")

    assert "6 rows re-encrypted, 6 re-indexed, 1 skipped because changed meanwhile, 0 left" in out
    only_new_keys(settings)
    held = Customer.objects.get(pk=changed.pk)
    assert (held.drivers_license, held.medical_card_number, held.raw) == (
        "N9999999",
        CARDS[1],
        {"driversLicense": "N9999999"},
    )
    assert lookup_ids(client, driver_license="n9999999") == [changed.pk]
    assert lookup_ids(client, driver_license=LICENCES[1]) == []
    assert key_ids_stored() == {"k2"}


def test_a_dry_run_counts_per_key_and_changes_nothing(settings, customers, quarantined):
    before = stored_values()
    new_keys_first(settings)

    out, _ = rotate("--dry-run")

    assert "customers: 7 rows to rotate" in out
    assert f"drivers_license under old keys ({OLD} 6)" in out
    assert f"raw under old keys ({OLD} 7)" in out
    assert f"indexed with old keys ({OLD} 7)" in out
    assert "rejected records: 1 rows to rotate" in out
    assert "idempotency records: 1 rows to rotate" in out
    assert stored_values() == before


def test_an_old_key_removed_too_early_is_a_clear_error_and_nothing_changes(settings, customers):
    before = stored_values()
    only_new_keys(settings)

    for args in [(), ("--dry-run",)]:
        with pytest.raises(CommandError, match=f"key\\(s\\) {OLD}, which PII_ENCRYPTION_KEYS does not hold"):
            rotate(*args)
    assert stored_values() == before


def test_only_a_new_index_key_re_indexes_without_re_encrypting(settings, customers, client):
    settings.PII_BLIND_INDEX_KEYS = [NEW_INDEX_KEY, *settings.PII_BLIND_INDEX_KEYS]
    ciphertexts = [row[:3] for row in stored_values()]

    out, _ = rotate()

    assert "0 rows re-encrypted, 7 re-indexed" in out
    assert [row[:3] for row in stored_values()] == ciphertexts
    settings.PII_BLIND_INDEX_KEYS = [NEW_INDEX_KEY]
    assert_all_readable(customers, client)


def test_a_value_no_key_reads_is_reported_by_id_and_the_rest_rotated(settings, customers):
    broken = customers[2]
    with connection.cursor() as cursor:
        cursor.execute('SELECT "medical_card_number" FROM "customers_customer" WHERE "id" = %s', [broken.pk])
        token = cursor.fetchone()[0]
        altered = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
        cursor.execute(
            'UPDATE "customers_customer" SET "medical_card_number" = %s WHERE "id" = %s', [altered, broken.pk]
        )
    new_keys_first(settings)

    with pytest.raises(CommandError, match=f"1 row\\(s\\) hold a value no configured key reads .*id {broken.pk}$"):
        rotate("--batch-size", "2")

    rows = stored_values()
    assert [row[3] for row in rows[: len(customers)]] == ["k2"] * 2 + [OLD] + ["k2"] * 4


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_row_a_concurrent_write_holds_is_left_for_later_without_waiting(settings, store):
    made = [
        CustomerFactory.create(store=store, drivers_license=LICENCES[n], medical_card_number=CARDS[n], raw=raw_of(n))
        for n in range(4)
    ]
    held = made[1]
    new_keys_first(settings)
    locked, release = threading.Event(), threading.Event()

    def sync_page_in_flight() -> None:
        # Another connection, as a sync's page: it holds the row locked, uncommitted, until released.
        try:
            with transaction.atomic():
                Customer.objects.filter(pk=held.pk).update(first_name="Sam")
                locked.set()
                release.wait(timeout=60)
        finally:
            connection.close()

    page = threading.Thread(target=sync_page_in_flight)
    page.start()
    try:
        assert locked.wait(timeout=30)
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '10s'")  # waiting for the page's lock would fail the test
        result = key_rotation.pii_keys_rotate(batch_size=2)
    finally:
        release.set()
        page.join(timeout=30)
        with connection.cursor() as cursor:
            cursor.execute("RESET lock_timeout")

    customers_done = result.tables[0]
    assert (customers_done.reencrypted, customers_done.left) == (3, 1)
    assert customers_done.skipped >= 1
    assert [row[3] for row in stored_values()] == ["k2", OLD, "k2", "k2"]

    out, _ = rotate()
    assert "1 rows re-encrypted, 1 re-indexed" in out
    only_new_keys(settings)
    assert key_ids_stored() == {"k2"}
    assert Customer.objects.get(pk=held.pk).first_name == "Sam"
    assert list(Customer.objects.licence_equal(LICENCES[1]).values_list("pk", flat=True)) == [held.pk]


# ---- several workers (PostgreSQL) ---------------------------------------------------------------------------

FORK = multiprocessing.get_context("fork")  # what the workers are forked with: they inherit these patches


def many_customers(store: Any, count: int) -> list[Customer]:
    return [
        CustomerFactory.create(
            store=store, drivers_license=f"W{n:07d}", medical_card_number=f"MED-W{n:03d}", raw={"n": n}
        )
        for n in range(count)
    ]


def assert_rotated_and_readable(made: list[Customer], client: APIClient) -> None:
    """Under the new keys alone: every value is under them, and each customer reads back and is found."""
    assert key_ids_stored() == {"k2"}
    for n, customer in enumerate(made):
        held = Customer.objects.get(pk=customer.pk)
        assert (held.drivers_license, held.medical_card_number, held.raw) == (f"W{n:07d}", f"MED-W{n:03d}", {"n": n})
    assert lookup_ids(client, driver_license=f"w{len(made) - 1:07d}") == [made[-1].pk]


def test_several_workers_are_refused_where_they_cannot_work(settings, customers):
    new_keys_first(settings)
    before = stored_values()
    # SQLite has one writer; on PostgreSQL this test holds a transaction the workers could not see into.
    reason = "several workers need PostgreSQL" if connection.vendor == "sqlite" else "inside a transaction"
    with pytest.raises(CommandError, match=reason):
        rotate("--workers", "2")
    with pytest.raises(CommandError, match="--workers must be at least 1"):
        rotate("--workers", "0")
    assert stored_values() == before


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_two_workers_share_the_rows_and_re_key_each_exactly_once(settings, store, monkeypatch, client):
    made = many_customers(store, 30)
    new_keys_first(settings)
    batches: Any = FORK.Queue()
    both_started = FORK.Barrier(2, timeout=30)
    real_reseal = key_rotation._reseal
    first = True

    def reseal_and_record(target: Any, rows: Any, done: Any) -> Any:
        nonlocal first
        if first:  # in each worker (a copy of this flag each): its first batch waits for the other's
            first = False
            both_started.wait()
        batches.put((os.getpid(), target.label, [row[0] for row in rows]))
        return real_reseal(target, rows, done)

    monkeypatch.setattr(key_rotation, "_reseal", reseal_and_record)

    out, _ = rotate("--workers", "2", "--batch-size", "3")

    assert "Workers: 2." in out
    assert "30 rows re-encrypted, 30 re-indexed, 0 skipped because changed meanwhile, 0 left" in out
    seen: list[tuple[int, str, list[int]]] = []
    while sum(len(pks) for _, _, pks in seen) < len(made):  # the workers have ended: all they sent is there
        seen.append(batches.get(timeout=10))
    with pytest.raises(queue.Empty):
        batches.get(timeout=0.2)
    read = sorted(pk for _, label, pks in seen if label == "customers" for pk in pks)
    assert read == sorted(c.pk for c in made)  # every row read once, by one worker
    pids = {pid for pid, _, _ in seen}
    assert len(pids) == 2
    assert os.getpid() not in pids
    only_new_keys(settings)
    assert_rotated_and_readable(made, client)


def _sync_writes(pk: int, read: Any, written: Any) -> None:
    """Another process, as a sync's page: once a worker has read the row, it changes it (and commits)."""
    try:
        assert read.wait(timeout=30)
        customer = Customer.objects.get(pk=pk)
        customer.drivers_license = "N9999999"
        customer.raw = {"n": "changed"}
        customer.save()
    finally:
        connection.close()
        written.set()


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_write_during_a_parallel_rotation_is_kept(settings, store, monkeypatch, client):
    made = many_customers(store, 24)
    changed = made[13]
    new_keys_first(settings)
    read, written = FORK.Event(), FORK.Event()
    real_reseal = key_rotation._reseal

    def reseal_while_a_sync_writes(target: Any, rows: Any, done: Any) -> Any:
        updates = real_reseal(target, rows, done)
        if any(update.pk == changed.pk for update in updates):
            read.set()
            assert written.wait(timeout=30)  # the batch's write comes after the sync's
        return updates

    monkeypatch.setattr(key_rotation, "_reseal", reseal_while_a_sync_writes)
    db.connections.close_all()
    writer = FORK.Process(target=_sync_writes, args=(changed.pk, read, written))
    writer.start()
    try:
        out, _ = rotate("--workers", "2", "--batch-size", "3")
    finally:
        writer.join(timeout=30)
    assert writer.exitcode == 0

    assert "23 rows re-encrypted, 23 re-indexed, 1 skipped because changed meanwhile, 0 left" in out
    only_new_keys(settings)
    assert key_ids_stored() == {"k2"}
    held = Customer.objects.get(pk=changed.pk)
    assert (held.drivers_license, held.medical_card_number, held.raw) == ("N9999999", "MED-W013", {"n": "changed"})
    assert lookup_ids(client, driver_license="n9999999") == [changed.pk]
    assert lookup_ids(client, driver_license="w0000013") == []


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("how", ["killed", "raises"])
def test_a_worker_that_dies_fails_the_run_and_a_rerun_finishes(settings, store, monkeypatch, client, how):
    made = many_customers(store, 24)
    new_keys_first(settings)
    calls = FORK.Value("i", 0)
    real_reseal = key_rotation._reseal

    def reseal_then_die(target: Any, rows: Any, done: Any) -> Any:
        with calls.get_lock():
            calls.value += 1
            nth = calls.value
        if nth == 3:  # the third batch of the run, in whichever worker takes it
            if how == "killed":
                os.kill(os.getpid(), signal.SIGKILL)
            raise RuntimeError("disk full")
        return real_reseal(target, rows, done)

    monkeypatch.setattr(key_rotation, "_reseal", reseal_then_die)
    message = "a worker process died" if how == "killed" else r"RuntimeError: disk full"
    with pytest.raises(CommandError, match=f"A rotation worker failed \\({message}.*run the command again"):
        rotate("--workers", "2", "--batch-size", "3")
    assert 0 < sum(row[3] == "k2" for row in stored_values()) < len(made)  # some batches committed, not all

    monkeypatch.setattr(key_rotation, "_reseal", real_reseal)
    out, _ = rotate("--workers", "2", "--batch-size", "3")
    assert "skipped because changed meanwhile, 0 left" in out
    only_new_keys(settings)
    assert_rotated_and_readable(made, client)


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_the_progress_of_two_workers_adds_up_to_every_row_once(settings, store, client):
    made = many_customers(store, 20)
    new_keys_first(settings)
    progress: list[tuple[str, int, int]] = []

    result = key_rotation.pii_keys_rotate(
        batch_size=3, workers=2, on_batch=lambda label, rows, last_id: progress.append((label, rows, last_id))
    )

    assert result.finished
    assert sum(rows for _, rows, _ in progress) == len(made)  # what the progress bar shows: each row once
    assert {label for label, _, _ in progress} == {"customers"}
    assert max(last_id for _, _, last_id in progress) == made[-1].pk
    only_new_keys(settings)
    assert_rotated_and_readable(made, client)

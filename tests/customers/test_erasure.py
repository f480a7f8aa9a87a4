"""Erasure (customers.erasure, manage.py erase_customer): the person is gone from everything the service keeps, stays
gone through a full sync, a live lookup and a create against the POS sandbox, and nothing records who they were."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.core.management import CommandError, call_command
from django.db import connection
from rest_framework.test import APIClient

from customers.erasure import customer_erase, suppressed_ids
from customers.models import (
    AccessChannel,
    AccessEvent,
    Customer,
    CustomerErasure,
    ErasureSuppression,
    IdempotencyRecord,
    IdempotencyStatus,
    RejectedRecord,
)
from stores.models import Store
from stores.services import api_key_create
from syncs.models import SyncKind, SyncStatus
from syncs.services import sync_create

pytestmark = pytest.mark.django_db

# Where the service keeps anything (the mirror, the quarantine, idempotency answers, the erasure's own records,
# access events, the admin's log, the syncs' checkpoints): none may hold the person after the erasure.
TABLES = [
    "customers_customer",
    "customers_rejectedrecord",
    "customers_idempotencyrecord",
    "customers_customererasure",
    "customers_erasuresuppression",
    "customers_accessevent",
    "django_admin_log",
    "syncs_customersync",
]


@pytest.fixture
def sandbox() -> Iterator[tuple[Any, Store]]:
    """The POS sandbox (Treez: it lists, searches and creates) over real HTTP, and a store on it."""
    from pos_sandbox import SANDBOX_CREDENTIALS, SandboxServer

    server = SandboxServer(port=0, customers=40, seed=7).start()
    try:
        store = Store.objects.create(
            name="Sandbox Treez",
            catalog_id="sandbox-treez",
            pos_vendor="treez",
            pos_base_url=server.vendor_url("treez"),
            pos_credentials=dict(SANDBOX_CREDENTIALS["treez"]),
        )
        yield server, store
    finally:
        server.stop()


def full_sync(store: Store) -> Any:
    sync = sync_create(store=store, kind=SyncKind.FULL, trigger="manual")[0].do_process()
    assert sync.status == SyncStatus.FINISHED, (sync.error_type, sync.error_message)
    return sync


def needles(customer: Customer) -> dict[str, re.Pattern[str]]:
    """What would give the person away in stored text: POS id (as a whole token), email, phone, licence, card."""
    found = {"POS id": re.compile(rf"(?<![0-9A-Za-z]){re.escape(customer.customer_id)}(?![0-9A-Za-z])")}
    for name in ("email", "phone", "drivers_license", "medical_card_number"):
        value = getattr(customer, name)
        if value:
            found[name] = re.compile(re.escape(value), re.IGNORECASE)
    return found


def held_anywhere(customer: Customer, *, tables: list[str] = TABLES) -> list[str]:
    """Every table row (read with raw SQL, every column as text) that holds one of the person's identifiers, and
    mirror rows with their full name."""
    hits = []
    patterns = needles(customer)
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f'SELECT * FROM "{table}"')
            for row in cursor.fetchall():
                text = " | ".join("" if v is None else str(v) for v in row)
                if table == "customers_customer":
                    text = text.replace(f"| {customer.customer_id} |", "")  # other ids are checked below
                hits += [f"{table}: {what}" for what, p in patterns.items() if p.search(text)]
        cursor.execute(
            'SELECT COUNT(*) FROM "customers_customer" WHERE ("customer_id" = %s AND "store_id" = %s) '
            'OR ("first_name" = %s AND "last_name" = %s)',
            [customer.customer_id, customer.store_id, customer.first_name, customer.last_name],
        )
        if cursor.fetchone()[0]:
            hits.append("customers_customer: the customer (POS id or full name)")
    return hits


def remember(customer: Customer, *, api_key: Any, other: Customer) -> None:
    """What a working service keeps of a customer besides the mirror row: quarantined records (theirs, and another
    customer's that names them), an idempotent create's answer, access events, an admin log entry."""
    store = customer.store
    RejectedRecord.objects.create(
        store=store, source="sync", customer_id=customer.customer_id, reason="birthday is not a date",
        payload=customer.raw,
    )  # fmt: skip
    RejectedRecord.objects.create(
        store=store, source="sync", customer_id="", reason="customer_id is missing",
        payload={"email": customer.email.upper(), "phone": f"+1 {customer.phone}", "notes": "no id"},
    )  # fmt: skip
    RejectedRecord.objects.create(
        store=store, source="sync", customer_id=other.customer_id, reason="gender 'Q' is not one of ...",
        payload={**other.raw, "merged_customer_ids": [customer.customer_id], "referrer": {"email": customer.email}},
    )  # fmt: skip
    record = IdempotencyRecord.objects.create(
        api_key=api_key, key="create-1", request_hash="0" * 64, status=IdempotencyStatus.COMPLETED,
        response={"outcome": "created", "customer": customer.to_peak_customer()},
    )  # fmt: skip
    assert record.response["customer"]["email"] == customer.email
    AccessEvent.objects.create(
        customer_ids=[other.pk, customer.pk], channel=AccessChannel.API, api_key=api_key, fields="birthday"
    )
    staff = get_user_model().objects.create_user("clerk")
    LogEntry.objects.create(
        user=staff, content_type=ContentType.objects.get_for_model(Customer), object_id=str(customer.pk),
        object_repr=str(customer), action_flag=CHANGE,
    )  # fmt: skip


def test_an_erased_customer_is_found_nowhere_after_a_full_sync_a_live_lookup_and_a_create(sandbox, capsys, caplog):
    server, store = sandbox
    full_sync(store)
    person, other = Customer.objects.filter(store=store).exclude(email="").exclude(phone="").order_by("id")[5:7]
    assert person.drivers_license
    assert person.raw
    api_key, raw_key = api_key_create(name="checkout", stores=[store])
    remember(person, api_key=api_key, other=other)
    others_before = {c.customer_id: (c.raw, c.pos_updated_at) for c in Customer.objects.exclude(pk=person.pk)}
    assert held_anywhere(person)  # the check sees them before

    caplog.set_level(logging.DEBUG)
    call_command("erase_customer", store=store.catalog_id, customer_id=person.customer_id, interactive=False)
    out, err = capsys.readouterr()

    # Still at the POS: a full sync lists them, and skips them.
    assert server.record("treez", person.customer_id) is not None
    again = full_sync(store)
    assert again.fetched == len(others_before) + 1
    assert again.created == 0
    # A live lookup asks the POS, which finds them; the answer leaves them out.
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw_key}")
    for lookup in ({"email": person.email}, {"phone": person.phone}, {"driver_license": person.drivers_license}):
        response = client.post("/api/v1/customers/search", lookup, format="json")
        assert response.status_code == 200, response.content
        assert response.json()["customers"] == [], lookup
    # A create of the same person: the POS answers that it has them (a duplicate), and the 409 names nobody.
    create = {
        "catalog_id": store.catalog_id,
        "customer": {
            "first_name": person.first_name, "last_name": person.last_name, "email": person.email,
            "phone": person.phone, "birthday": person.birthday.isoformat(), "drivers_license": person.drivers_license,
        },
    }  # fmt: skip
    response = client.post("/api/v1/customers", create, format="json", HTTP_IDEMPOTENCY_KEY="create-2")
    assert response.status_code == 409, response.content
    assert response.json()["customer"] is None

    assert held_anywhere(person) == []
    assert {c.customer_id: (c.raw, c.pos_updated_at) for c in Customer.objects.all()} == others_before
    # The other customer's quarantined record stays, without the reference to the person.
    kept = RejectedRecord.objects.get(customer_id=other.customer_id)
    assert kept.payload["merged_customer_ids"] == ["[erased]"]
    assert kept.payload["referrer"] == {"email": "[erased]"}
    assert kept.payload["email"] == other.email
    # The access event stays, without the customer; the idempotent answer replays without them.
    assert AccessEvent.objects.get().customer_ids == [other.pk, None]
    assert IdempotencyRecord.objects.get(key="create-1").response["customer"] is None
    [erasure] = CustomerErasure.objects.all()
    assert erasure.counts == {
        "customers": 1,
        "quarantined_removed": 1,
        "quarantined_scrubbed": 2,
        "idempotency_answers_scrubbed": 1,
        "admin_log_entries_removed": 1,
        "access_events_unlinked": 1,
        "suppression_added": 1,
    }
    assert erasure.via.startswith("command (OS user ")
    # What the command printed and what was logged name nobody.
    assert "Erasure #" in out
    assert "removed 1 customer(s)" in out
    assert "POS still holds them" in err
    # (urllib3 logs whole URLs at DEBUG, lookups' included, below the default LOG_LEVEL; the sandbox is the POS.)
    ours = [r for r in caplog.records if not r.name.startswith(("pos_sandbox", "urllib3"))]
    logged = "\n".join(r.getMessage() for r in ours)
    assert "Erased a customer of store sandbox-treez" in logged
    for what, pattern in needles(person).items():
        assert not pattern.search(out + err), what
        if what == "POS id":
            # The POS client logs the path of a read by POS id (a pseudonymous reference, as everywhere in the
            # service's logs); the erasure, the writer and the syncs never log it.
            mine = "\n".join(r.getMessage() for r in ours if r.name.startswith(("customers", "syncs")))
            assert not pattern.search(mine)
        else:
            assert not pattern.search(logged), what
    for name in (person.first_name, person.last_name):
        assert name not in out + err + logged


def test_erasing_touches_no_other_customer(store_with_two):
    store, person, other = store_with_two
    before = Customer.objects.filter(pk=other.pk).values().get()
    customer_erase(store=store, customer_id=person.customer_id, via="test")
    assert list(Customer.objects.values_list("customer_id", flat=True)) == [other.customer_id]
    assert Customer.objects.filter(pk=other.pk).values().get() == before
    assert suppressed_ids(store_id=store.pk, customer_ids=[person.customer_id, other.customer_id]) == {
        person.customer_id
    }


@pytest.fixture
def store_with_two() -> tuple[Store, Customer, Customer]:
    from tests.factories import CustomerFactory, StoreFactory

    store = StoreFactory(catalog_id="mission-buds")
    return store, CustomerFactory(store=store, customer_id="A-1"), CustomerFactory(store=store, customer_id="A-2")


def test_the_same_pos_id_in_another_store_is_not_suppressed(store_with_two):
    from tests.factories import CustomerFactory

    store, person, _ = store_with_two
    twin = CustomerFactory(customer_id=person.customer_id)
    customer_erase(store=store, customer_id=person.customer_id, via="test")
    assert Customer.objects.filter(pk=twin.pk).exists()
    assert suppressed_ids(store_id=twin.store_id, customer_ids=[twin.customer_id]) == set()


def test_an_unknown_store_or_customer_is_a_clear_error_and_changes_nothing(store_with_two):
    store, person, _ = store_with_two
    with pytest.raises(CommandError, match="No store with catalog id 'nowhere'"):
        call_command("erase_customer", store="nowhere", customer_id=person.customer_id, interactive=False)
    with pytest.raises(CommandError, match=r"holds no customer with this POS id.*--allow-absent"):
        call_command("erase_customer", store=store.catalog_id, customer_id="A-404", interactive=False)
    assert Customer.objects.count() == 2
    assert not CustomerErasure.objects.exists()
    assert not ErasureSuppression.objects.exists()


def test_allow_absent_suppresses_an_id_the_mirror_does_not_hold(store_with_two):
    store, _, _ = store_with_two
    out = StringIO()
    call_command(
        "erase_customer", store=store.catalog_id, customer_id="A-9", allow_absent=True, interactive=False, stdout=out
    )
    assert "removed 0 customer(s)" in out.getvalue()
    assert suppressed_ids(store_id=store.pk, customer_ids=["A-9"]) == {"A-9"}


def test_erasing_twice_keeps_one_suppression(store_with_two):
    store, person, _ = store_with_two
    customer_erase(store=store, customer_id=person.customer_id, via="test")
    second = customer_erase(store=store, customer_id=person.customer_id, via="test", allow_absent=True)
    assert ErasureSuppression.objects.count() == 1
    assert second.counts["suppression_added"] == 0
    assert CustomerErasure.objects.count() == 2


def test_the_command_asks_before_erasing(store_with_two, monkeypatch):
    store, person, _ = store_with_two
    monkeypatch.setattr("builtins.input", lambda prompt: "no")
    with pytest.raises(CommandError, match="cancelled"):
        call_command("erase_customer", store=store.catalog_id, customer_id=person.customer_id)
    assert Customer.objects.filter(pk=person.pk).exists()
    monkeypatch.setattr("builtins.input", lambda prompt: "yes")
    call_command("erase_customer", store=store.catalog_id, customer_id=person.customer_id, stdout=StringIO())
    assert not Customer.objects.filter(pk=person.pk).exists()


def test_a_suppression_still_matches_after_the_index_key_is_rotated(store_with_two, settings):
    from customers import crypto

    store, person, _ = store_with_two
    customer_erase(store=store, customer_id=person.customer_id, via="test")
    settings.PII_BLIND_INDEX_KEYS = [crypto.new_key_entry("knew"), *settings.PII_BLIND_INDEX_KEYS]
    assert suppressed_ids(store_id=store.pk, customer_ids=[person.customer_id]) == {person.customer_id}
    # The encrypted reference is what a re-index under the new key reads.
    suppression = ErasureSuppression.objects.get()
    text = crypto.decrypt(suppression.sealed_ref, purpose="customers.erasure")
    assert text == f"{store.pk}:{person.customer_id}"
    assert crypto.blind_index(text, purpose="customers.erasure") != suppression.index


# ---- the writer skips erased customers ----------------------------------------------------------------------


def write(store: Store, records: list[Any], **kwargs: Any) -> Any:
    from customers.models import RecordSource
    from customers.writer import CustomerWriter

    return CustomerWriter.for_store(store, source=RecordSource.SYNC).write(records, **kwargs).result()


def test_the_writer_skips_an_erased_customer_counts_it_and_quarantines_nothing_of_them(store_with_two):
    from pos_integrations.records import RecordError
    from tests.factories import make_record

    store, _, _ = store_with_two
    customer_erase(store=store, customer_id="1001", via="test", allow_absent=True)
    customer_erase(store=store, customer_id="1002", via="test", allow_absent=True)
    refused = make_record(2, gender="Q")  # would be quarantined, but they are erased
    unparsed = RecordError(customer_id="1002", reason="not JSON", payload={"email": "person2@example.com"})

    result = write(store, [make_record(1), refused, make_record(3)], errors=[unparsed])

    assert (result.created, result.unchanged, result.suppressed) == (1, 3, 3)  # an unparsed one counts too
    assert result.stored == ("1003",)
    assert result.rejected == ()
    assert set(Customer.objects.filter(store=store).values_list("customer_id", flat=True)) == {"A-1", "A-2", "1003"}
    assert not RejectedRecord.objects.exists()


def test_the_writer_looks_suppressions_up_in_queries_per_page_not_per_record(store_with_two):
    from django.test.utils import CaptureQueriesContext

    from tests.factories import make_record

    store, _, _ = store_with_two

    def asked(size: int) -> int:
        with CaptureQueriesContext(connection) as ctx:
            write(store, [make_record(i) for i in range(size)])
        return sum('"customers_erasuresuppression"' in q["sql"] for q in ctx.captured_queries)

    assert [asked(10), asked(200)] == [1, 1]  # a store with no erasure: one look, nothing hashed
    customer_erase(store=store, customer_id="1005", via="test", allow_absent=True)
    # And the page's indexes: one array on PostgreSQL, 900 a statement on SQLite (its bound-parameter limit).
    assert [asked(10), asked(200), asked(2000)] == ([2, 2, 2] if connection.vendor == "postgresql" else [2, 2, 4])
    assert write(store, [make_record(5)]).suppressed == 1


def test_a_create_the_pos_answers_with_an_erased_customer_is_neither_stored_nor_shown(store_with_two, monkeypatch):
    from customers.services import ERASED_ANSWER, customer_create
    from pos_integrations.records import Capabilities, CustomerInput
    from tests.factories import make_record

    store, person, _ = store_with_two
    customer_erase(store=store, customer_id=person.customer_id, via="test")

    class UpsertingPos:
        """A POS whose create is an upsert by identity: it answers the existing (erased) person's record."""

        label = "Upserting POS"
        capabilities = Capabilities(can_create=True, search_fields=frozenset(), incremental=True)

        def create_customer(self, data: CustomerInput) -> Any:
            return make_record(7, customer_id=person.customer_id, email=data.email)

    monkeypatch.setattr(Store, "pos_client", lambda self, **kwargs: UpsertingPos())
    data = CustomerInput(first_name="Re", last_name="Turn", email=person.email)
    result = customer_create(store=store, data=data)

    assert (result.outcome, result.customer, result.warning) == ("created", None, ERASED_ANSWER)
    assert not Customer.objects.filter(store=store, customer_id=person.customer_id).exists()


@pytest.mark.django_db(transaction=True)
def test_an_erasure_waits_for_a_page_in_flight_which_then_cannot_bring_them_back():
    import threading

    from customers.models import RecordSource
    from customers.writer import CustomerWriter
    from tests.factories import StoreFactory, make_record

    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL's advisory lock orders them; SQLite lets one writer in at a time anyway")
    store = StoreFactory()
    write(store, [make_record(1)])
    erased = threading.Event()

    def erase() -> None:
        try:
            customer_erase(store=store, customer_id="1001", via="test")
            erased.set()
        finally:
            connection.close()

    eraser = threading.Thread(target=erase)

    def meanwhile(staged: Any) -> None:
        # Inside the page's transaction, after it found no suppression for 1001: the erasure starts, and waits.
        eraser.start()
        assert not erased.wait(1.0)

    changed = make_record(1, email="changed@example.com", updated=make_record(1).pos_updated_at + timedelta(1))
    writer = CustomerWriter.for_store(store, source=RecordSource.SYNC)
    assert writer.write([changed], alongside=meanwhile).result().updated == 1
    eraser.join(timeout=30)
    assert erased.is_set()
    assert not Customer.objects.filter(store=store, customer_id="1001").exists()
    assert write(store, [changed]).suppressed == 1
    assert not Customer.objects.filter(store=store, customer_id="1001").exists()


def test_rotate_pii_keys_re_indexes_suppressions_so_the_old_index_key_can_go(store_with_two, settings):
    from customers import crypto

    store, person, _ = store_with_two
    customer_erase(store=store, customer_id=person.customer_id, via="test")
    settings.PII_ENCRYPTION_KEYS = [crypto.new_key_entry("enew"), *settings.PII_ENCRYPTION_KEYS]
    settings.PII_BLIND_INDEX_KEYS = [crypto.new_key_entry("inew"), *settings.PII_BLIND_INDEX_KEYS]
    call_command("rotate_pii_keys", "--no-progress", stdout=StringIO())

    settings.PII_ENCRYPTION_KEYS = settings.PII_ENCRYPTION_KEYS[:1]
    settings.PII_BLIND_INDEX_KEYS = settings.PII_BLIND_INDEX_KEYS[:1]
    assert crypto.key_id(ErasureSuppression.objects.get().sealed_ref) == "enew"
    assert suppressed_ids(store_id=store.pk, customer_ids=[person.customer_id]) == {person.customer_id}


def test_access_events_written_just_after_the_erasure_are_cut_too(store_with_two, settings, late_access_event):
    """An answer sent just before the erasure may have its event still waiting in a web process's writer
    (PII_ACCESS_WRITE_SECONDS): the erasure waits that long, then cuts the customer out of what was written."""
    store, person, other = store_with_two
    waited = late_access_event(other.pk, person.pk)
    erasure = customer_erase(store=store, customer_id=person.customer_id, via="test")
    assert waited
    assert waited[0] > settings.PII_ACCESS_WRITE_SECONDS
    assert AccessEvent.objects.get(request_id="late").customer_ids == [other.pk, None]
    erasure.refresh_from_db()
    assert erasure.counts["access_events_unlinked"] == 1


def test_without_the_writer_an_erasure_does_not_wait(store_with_two, settings, monkeypatch):
    store, person, _ = store_with_two
    settings.PII_ACCESS_WRITE_SECONDS = 0
    monkeypatch.setattr("customers.erasure.time.sleep", lambda seconds: pytest.fail("waited"))
    customer_erase(store=store, customer_id=person.customer_id, via="test")

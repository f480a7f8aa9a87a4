"""Logs and Sentry stay free of personal data on the paths issue 18 added: licence and medical card numbers, a
birthday, a phone and an email sent in a POST search's body (its answers and its errors), masked answers to keys
without `pii`, the admin's Reveal, the access events' own failure log, and the older endpoint's `?api_key=`.

Sentry is the real SDK initialised with the service's own options (config.sentry.sentry_options: the Django
integration, the scrubber) and tracing on, its envelopes kept by a transport instead of sent; errors are raised
inside request handling with the values in the handler's local variables and the request's body. Each test
checks that Sentry received what it should (an error, a transaction) and that no value appears anywhere in the
envelopes' JSON or in any log record."""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import sentry_sdk
from django.contrib.auth.models import Permission
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import DatabaseError, close_old_connections
from django.test import RequestFactory
from sentry_sdk.envelope import Envelope
from sentry_sdk.transport import Transport

from config.sentry import sentry_options
from customers.models import AccessEvent
from stores.models import ApiScope
from stores.services import api_key_create
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

LICENCE = "D4161227"
CARD = "MMJ77301948"
PHONE = "5551234567"
PHONE_SENT = "555-123-4567"
EMAIL = "sean.odegaard@example.com"
BIRTHDAY = dt.date(1984, 3, 17)


class KeptTransport(Transport):
    """Keeps every envelope the SDK would send."""

    def __init__(self) -> None:
        super().__init__({"dsn": "https://public@sentry.invalid/1"})
        self.envelopes: list[Envelope] = []

    def capture_envelope(self, envelope: Envelope) -> None:
        self.envelopes.append(envelope)

    def items(self, kind: str) -> list[dict[str, Any]]:
        found = []
        for envelope in self.envelopes:
            for item in envelope.items:
                if item.type == kind and item.payload.json is not None:
                    found.append(item.payload.json)
        return found

    def text(self) -> str:
        return b"\n".join(envelope.serialize() for envelope in self.envelopes).decode("utf-8", "replace")


@pytest.fixture(params=[False, True], ids=["as-configured", "with-local-variables"])
def sentry(request: pytest.FixtureRequest) -> Iterator[KeptTransport]:
    """The service's Sentry options with tracing on; a second run also turns local variables on, to show the
    scrubber drops them should anyone enable them."""
    transport = KeptTransport()
    options = sentry_options(dsn="https://public@sentry.invalid/1", environment="test", traces_sample_rate=1.0)
    options["include_local_variables"] = request.param
    sentry_sdk.init(**options, transport=transport)
    yield transport
    sentry_sdk.flush(timeout=5)
    sentry_sdk.init(dsn=None)


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog


@pytest.fixture
def person(store: Any) -> Any:
    return CustomerFactory(
        store=store,
        phone=PHONE,
        email=EMAIL,
        drivers_license=LICENCE,
        medical_card_number=CARD,
        birthday=BIRTHDAY,
        raw={"id": "T-1", "license": LICENCE, "mmj_card": CARD, "dob": BIRTHDAY.isoformat(), "phone": PHONE},
    )


@dataclass
class Answer:
    status_code: int
    content: bytes

    def json(self) -> Any:
        return json.loads(self.content)


class WsgiClient:
    """Requests through Django's WSGI application, as gunicorn calls it (Sentry's Django integration starts its
    transactions there; the test client bypasses it), the response closed after its body is read."""

    def __init__(self, key: str | None = None) -> None:
        self.headers = {"HTTP_AUTHORIZATION": f"Api-Key {key}"} if key else {}

    def call(self, method: str, path: str, body: Any = None) -> Answer:
        factory = RequestFactory()
        if body is None:
            request = factory.generic(method, path, **self.headers)
        else:
            request = factory.generic(method, path, json.dumps(body), "application/json", **self.headers)
        statuses: list[str] = []
        # As Django's test client does: the test's transaction keeps its connection, which a server would recycle.
        request_started.disconnect(close_old_connections)
        request_finished.disconnect(close_old_connections)
        try:
            answer = WSGIHandler()(request.environ, lambda status, headers, *_: statuses.append(status))
            content = b"".join(answer)
            answer.close()
        finally:
            request_started.connect(close_old_connections)
            request_finished.connect(close_old_connections)
        return Answer(int(statuses[0].split()[0]), content)

    def get(self, path: str) -> Answer:
        return self.call("GET", path)

    def post(self, path: str, body: Any) -> Answer:
        return self.call("POST", path, body)


def client_for(store: Any, *scopes: str) -> tuple[WsgiClient, str]:
    _, raw = api_key_create(name="checkout", stores=[store], scopes=list(scopes))
    return WsgiClient(raw), raw


def log_text(caplog: pytest.LogCaptureFixture) -> str:
    """Every record as a handler writes it (message, traceback), with its arguments and text attributes."""
    texts = [f"{r.args!r} " + " ".join(v for v in vars(r).values() if isinstance(v, str)) for r in caplog.records]
    return caplog.text + "\n".join(texts)


def assert_free_of(text: str, *values: str) -> None:
    found = [value for value in values if value in text]
    assert not found, f"found {found}"


PERSONAL = (LICENCE, CARD, PHONE, PHONE_SENT, EMAIL, "sean.odegaard", BIRTHDAY.isoformat())


def errors(sentry: KeptTransport) -> list[dict[str, Any]]:
    return [e for e in sentry.items("event") if e.get("level") == "error"]


def exception_types(event: dict[str, Any]) -> list[str]:
    return [value["type"] for value in event.get("exception", {}).get("values", [])]


def test_an_error_in_a_body_search_reaches_sentry_without_the_bodys_values(store, person, sentry, logs, monkeypatch):
    def failing_search(*, api_key: Any, filters: Any, after: Any, size: int) -> Any:
        wanted = (filters.phone, filters.email, filters.driver_license)  # held in this frame's locals
        raise RuntimeError(f"the database went away ({len(wanted)} filters)")

    monkeypatch.setattr("customers.api.views.customer_search", failing_search)
    client, raw = client_for(store, ApiScope.CUSTOMERS_READ, ApiScope.PII)
    body = {"phone": PHONE_SENT, "email": EMAIL, "driver_license": LICENCE, "birthday": BIRTHDAY.isoformat()}
    response = client.post("/api/v1/customers/search", body)

    assert response.status_code == 500
    [event] = errors(sentry)
    assert "RuntimeError" in exception_types(event)
    assert sentry.items("transaction")
    assert_free_of(sentry.text(), *PERSONAL, raw)
    assert_free_of(log_text(logs), *PERSONAL, raw)


@pytest.mark.parametrize(
    "body",
    [
        {"driver_license": LICENCE, "medical_card": CARD, "email": EMAIL},  # a field the search lacks
        {"phone": int(PHONE), "birthday": f"{BIRTHDAY:%d/%m/%Y}", "driver_license": LICENCE},  # wrong types
        {"email": EMAIL, "cursor": LICENCE, "page_size": PHONE},
    ],
)
def test_a_refused_body_search_logs_and_reports_no_values(store, person, sentry, logs, body):
    client, raw = client_for(store, ApiScope.CUSTOMERS_READ, ApiScope.PII)
    response = client.post("/api/v1/customers/search", body)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"
    assert not errors(sentry)
    assert sentry.items("transaction")
    assert_free_of(sentry.text(), *PERSONAL, f"{BIRTHDAY:%d/%m/%Y}", raw)
    assert_free_of(log_text(logs), *PERSONAL, f"{BIRTHDAY:%d/%m/%Y}", raw)


def test_a_pii_answer_and_its_lookup_in_the_url_stay_out_of_sentry_and_logs(store, person, sentry, logs):
    client, raw = client_for(store, ApiScope.CUSTOMERS_READ, ApiScope.PII)
    response = client.get(f"/api/v1/customers?driver_license={LICENCE}&phone={PHONE}")
    assert response.status_code == 200
    assert response.json()["customers"][0]["medical_card_number"] == CARD  # the answer is whole
    assert AccessEvent.objects.filter(customer_ids__includes=person.pk).count() == 1

    [transaction] = sentry.items("transaction")
    assert transaction["request"]["query_string"]  # there, and scrubbed
    assert_free_of(sentry.text(), *PERSONAL, raw)
    assert_free_of(log_text(logs), *PERSONAL, raw)


def test_an_error_after_a_pii_answer_is_built_reports_none_of_it(store, person, sentry, logs, monkeypatch):
    def failing(body: dict[str, Any]) -> list[dict[str, Any]]:
        raise KeyError("customers")  # `body`, the whole answer, in this frame and the mixin's

    monkeypatch.setattr("customers.api.pii.answered_customers", failing)
    client, raw = client_for(store, ApiScope.CUSTOMERS_READ, ApiScope.PII)
    response = client.get(f"/api/v1/customers/{person.pk}")

    assert response.status_code == 500
    [event] = errors(sentry)
    assert "KeyError" in exception_types(event)
    assert_free_of(sentry.text(), *PERSONAL, raw)
    assert_free_of(log_text(logs), *PERSONAL, raw)


def test_an_error_while_masking_an_answer_reports_none_of_it(store, person, sentry, logs, monkeypatch):
    def failing(customer: dict[str, Any]) -> dict[str, Any]:
        raise ValueError(f"cannot mask customer {customer['id']}")  # the unmasked customer in this frame

    monkeypatch.setattr("customers.api.pii.masked_customer", failing)
    client, raw = client_for(store, ApiScope.CUSTOMERS_READ)  # no `pii`: its answers are masked
    response = client.post("/api/v1/customers/search", {"driver_license": LICENCE})

    assert response.status_code == 500
    [event] = errors(sentry)
    assert "ValueError" in exception_types(event)
    assert_free_of(sentry.text(), *PERSONAL, raw)
    assert_free_of(log_text(logs), *PERSONAL, raw)


def test_a_masked_answer_keeps_the_numbers_out_of_sentry_and_logs(store, person, sentry, logs):
    client, raw = client_for(store, ApiScope.CUSTOMERS_READ)
    response = client.post("/api/v1/customers/search", {"email": EMAIL})
    assert response.status_code == 200
    assert response.json()["customers"][0]["drivers_license"] == "D41•••27"
    assert sentry.items("transaction")
    assert_free_of(sentry.text(), *PERSONAL, raw)
    assert_free_of(log_text(logs), *PERSONAL, raw)


def test_access_events_that_cannot_be_written_reach_sentry_without_values(store, person, sentry, logs, monkeypatch):
    def refused(*events: Any) -> None:
        raise DatabaseError("could not extend file: No space left on device")

    monkeypatch.setattr("customers.pii_access.access_events_write", refused)
    client, raw = client_for(store, ApiScope.CUSTOMERS_READ, ApiScope.PII)
    response = client.post("/api/v1/customers/search", {"phone": PHONE_SENT})

    assert response.status_code == 200
    [event] = errors(sentry)
    assert "Access events not recorded" in event["logentry"]["message"]
    assert "DatabaseError" in exception_types(event)
    assert_free_of(sentry.text(), *PERSONAL, raw)
    assert_free_of(log_text(logs), *PERSONAL, raw)


def test_the_legacy_endpoints_key_in_the_url_stays_out_of_sentry_and_logs(store, person, sentry, logs, monkeypatch):
    _, raw = api_key_create(name="old till", stores=[store], scopes=[ApiScope.CUSTOMERS_READ, ApiScope.PII])
    client = WsgiClient()
    url = f"/customers/search?api_key={raw}&customer_id={person.customer_id}"
    assert client.get(url).status_code == 200

    def failing(**_: Any) -> Any:
        raise RuntimeError("the database went away")

    monkeypatch.setattr("customers.api.views.customer_list", failing)
    assert client.get(url).status_code == 500

    assert len(errors(sentry)) == 1
    assert len(sentry.items("transaction")) == 2
    assert_free_of(sentry.text(), *PERSONAL, raw)
    assert_free_of(log_text(logs), *PERSONAL, raw)


@pytest.fixture
def revealer(client: Any, django_user_model: Any) -> Any:
    staff = django_user_model.objects.create_user("clerk", password="pw", is_staff=True)
    for codename in ("view_customer", "reveal_customer_pii"):
        staff.user_permissions.add(Permission.objects.get(codename=codename))
    client.force_login(staff)
    client.raise_request_exception = False
    return client


def test_the_admins_reveal_stays_out_of_sentry_and_logs(store, person, sentry, logs, revealer, monkeypatch):
    url = f"/admin/customers/customer/{person.pk}/reveal/"
    page = revealer.post(url)
    assert page.status_code == 200
    assert LICENCE in page.content.decode()
    assert CARD in page.content.decode()
    assert AccessEvent.objects.filter(customer_ids__includes=person.pk, fields__contains="drivers_license").exists()

    def failing(**_: Any) -> None:
        raise DatabaseError("could not write the access event")

    monkeypatch.setattr("customers.admin.access_event_record_admin", failing)
    assert revealer.post(url).status_code == 500

    [event] = errors(sentry)  # through Django's test client (CSRF off): errors reach Sentry, no transactions
    assert "DatabaseError" in exception_types(event)
    assert_free_of(sentry.text(), *PERSONAL)
    assert_free_of(log_text(logs), *PERSONAL)

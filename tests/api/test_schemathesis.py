"""Schemathesis against the API, in-process through the WSGI app, with its default checks (no 5xx; every status,
header, content type and body as the schema says; schema-valid requests accepted, invalid ones refused; the key
enforced) over every phase: examples, coverage (the schema's boundaries and each way to break them), fuzzing, and
stateful sequences (a customer created, then fetched and listed). A failure means the schema and the API
disagree. Sized to take a few seconds per operation; deterministic (a fixed seed)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import hypothesis
import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from schemathesis.config import SchemathesisConfig

from api.throttling import ApiKeyRateThrottle
from customers.api.serializers import OLDEST_BIRTHDAY_YEARS
from pos_integrations.errors import PosUnavailable
from stores.services import api_key_create
from tests.factories import CustomerFactory, CustomerSyncFactory, StoreFactory

CONFIG = {
    "seed": 1,
    "suppress-health-check": ["all"],
    "generation": {"max-examples": 40, "deterministic": True, "database": "none"},
}


def _load_schema() -> schemathesis.BaseSchema:
    document = json.loads(OpenApiJsonRenderer().render(SchemaGenerator().get_schema(request=None, public=True)))
    loaded = schemathesis.openapi.from_dict(document, config=SchemathesisConfig.from_dict(CONFIG))
    loaded.app = get_wsgi_application()
    return loaded


schema = _load_schema()
KEY: dict[str, str] = {}  # the running test's API key


@schema.auth(refresh_interval=None)
class ApiKeyAuth:
    """The test's key, in both headers the schema names (the API refuses a request with two different keys);
    schemathesis also sends requests without it, or with a wrong one, and expects 401."""

    def get(self, case, ctx):
        return KEY.get("raw", "")

    def set(self, case, data, ctx):
        case.headers = {**(case.headers or {}), "Authorization": f"Api-Key {data}", "X-API-Key": data}


@schema.hook
def map_case(ctx, case):
    """What JSON Schema cannot say (the schema's descriptions do), made true of a schema-valid case so that the
    rest of it is what is tested: a new customer's birthday is in the past and within OLDEST_BIRTHDAY_YEARS, and
    an Idempotency-Key is used with one body only (the same key with another body is a 422). Cases meant to be
    invalid are left as they are."""
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return case
    key = (case.headers or {}).get("Idempotency-Key")
    if isinstance(key, str) and case.body is not None:
        digest = hashlib.sha256(json.dumps(case.body, sort_keys=True, default=str).encode()).hexdigest()[:16]
        case.headers["Idempotency-Key"] = f"{key[:200]}~{digest}"
    body = case.body if isinstance(case.body, dict) else None
    customer = body.get("customer") if body else None
    if not isinstance(customer, dict):
        return case
    birthday = customer.get("birthday")
    if isinstance(birthday, str):
        try:
            day = dt.date.fromisoformat(birthday)
        except ValueError:
            return case
        today = timezone.localdate()
        if not today.year - OLDEST_BIRTHDAY_YEARS < day.year < today.year:
            customer["birthday"] = day.replace(year=today.year - 1 - day.year % 100, day=min(day.day, 28)).isoformat()
    return case


@pytest.fixture
def auth(db, monkeypatch, pos, settings):
    """Demo-like data, a key reaching one of two stores, and a POS that creates and whose search is down."""
    settings.ALLOWED_HOSTS = ["localhost"]
    monkeypatch.setattr(ApiKeyRateThrottle, "THROTTLE_RATES", {"api_key": "100000/min"})
    # As Django's test client does: requests run inside the test's transaction, so none may close the connection.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    store = StoreFactory(catalog_id="greenleaf-oakland")
    other = StoreFactory(catalog_id="greenleaf-berkeley")
    for s in (store, other):
        for _ in range(3):
            CustomerFactory(store=s)
        CustomerSyncFactory(store=s)
    _, raw = api_key_create(name="fuzz", stores=[store])
    pos.search_error = PosUnavailable("down", vendor="treez")
    KEY["raw"] = raw
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@schema.parametrize()
def test_api(case, auth):
    case.call_and_validate()


def test_stateful(auth):
    schema.as_state_machine().run(settings=hypothesis.settings(max_examples=25, stateful_step_count=8, deadline=None))

"""Behaviour every vendor client shares, run against each vendor's own dialect."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

import pytest
import requests
import responses

from pos_integrations import (
    CustomerInput,
    CustomerRecord,
    PosBadResponse,
    PosClient,
    PosNotSupported,
    PosUnavailable,
)

from .conftest import CREDENTIALS, SECRET, SINCE, Dialect, Sleeps, serve_one_page, serve_tokens

MakeClient = Callable[..., PosClient]


def test_reads_a_page_of_normalized_records(
    rsps: responses.RequestsMock, make_client: MakeClient, dialect: Dialect
) -> None:
    serve_one_page(rsps, dialect, [dialect.record(1), dialect.record(2)])
    pages = list(make_client(dialect.vendor).iter_customers(SINCE))
    records = [r for page in pages for r in page.records]
    assert len(records) == 2
    assert all(isinstance(r, CustomerRecord) and r.customer_id for r in records)
    assert records[0].raw == dialect.record(1)
    assert records[0].pos_updated_at is not None
    assert records[0].pos_updated_at.tzinfo is not None
    assert all(r.phone.isdigit() or r.phone == "" for r in records)
    assert pages[-1].is_last


def test_429_waits_for_retry_after(
    rsps: responses.RequestsMock, make_client: MakeClient, dialect: Dialect, sleeps: Sleeps
) -> None:
    rsps.add(responses.GET, dialect.list_url, status=429, headers={"Retry-After": "7"})
    serve_one_page(rsps, dialect, [dialect.record(1)])
    records = [r for page in make_client(dialect.vendor).iter_customers(SINCE) for r in page.records]
    assert len(records) == 1
    assert sleeps == [7.0]


def test_5xx_then_success_backs_off(
    rsps: responses.RequestsMock, make_client: MakeClient, dialect: Dialect, sleeps: Sleeps
) -> None:
    rsps.add(responses.GET, dialect.list_url, status=503, json={"message": "busy"})
    rsps.add(responses.GET, dialect.list_url, status=500, body="oops")
    serve_one_page(rsps, dialect, [dialect.record(1)])
    records = [r for page in make_client(dialect.vendor).iter_customers(SINCE) for r in page.records]
    assert len(records) == 1
    # Exponential backoff with jitter (rng fixed at 0.5): 0.5 s * 2**n * 0.75.
    assert sleeps == [0.375, 0.75]


def test_malformed_page_is_a_bad_response(
    rsps: responses.RequestsMock, make_client: MakeClient, dialect: Dialect
) -> None:
    serve_one_page(rsps, dialect, [], body="{not json", content_type="application/json")
    with pytest.raises(PosBadResponse):
        list(make_client(dialect.vendor).iter_customers(SINCE))


def test_page_without_a_list_is_a_bad_response(
    rsps: responses.RequestsMock, make_client: MakeClient, dialect: Dialect
) -> None:
    serve_one_page(rsps, dialect, [], json={"unexpected": True, "resultCode": "SUCCESS"})
    with pytest.raises(PosBadResponse):
        list(make_client(dialect.vendor).iter_customers(SINCE))


def test_one_malformed_record_among_good_ones(
    rsps: responses.RequestsMock, make_client: MakeClient, dialect: Dialect
) -> None:
    bad = dialect.record(2, **{dialect.updated_key: "not-a-date"})
    no_id = dialect.record(3, **{dialect.id_key: None})
    serve_one_page(rsps, dialect, [dialect.record(1), bad, no_id, "garbage", dialect.record(4)])
    pages = list(make_client(dialect.vendor).iter_customers(SINCE))
    records = [r for page in pages for r in page.records]
    errors = [e for page in pages for e in page.errors]
    assert [r.customer_id for r in records] == [str(dialect.record(i)[dialect.id_key]) for i in (1, 4)]
    assert len(errors) == 3
    assert errors[0].customer_id == str(bad[dialect.id_key])
    assert errors[0].reason.startswith("pos_updated_at")
    assert errors[0].payload == bad
    assert errors[1].customer_id is None
    assert "customer_id" in errors[1].reason
    assert errors[2].payload == "garbage"


def test_timeout_is_retried_then_unavailable(
    rsps: responses.RequestsMock, make_client: MakeClient, dialect: Dialect, sleeps: Sleeps
) -> None:
    serve_one_page(rsps, dialect, [], body=requests.ReadTimeout("read timed out"))
    with pytest.raises(PosUnavailable):
        list(make_client(dialect.vendor).iter_customers(SINCE))
    assert len(sleeps) == 4  # max_retries


def test_timeout_then_success(
    rsps: responses.RequestsMock, make_client: MakeClient, dialect: Dialect, sleeps: Sleeps
) -> None:
    rsps.add(responses.GET, dialect.list_url, body=requests.ConnectTimeout("connect timed out"))
    serve_one_page(rsps, dialect, [dialect.record(1)])
    assert len([r for p in make_client(dialect.vendor).iter_customers(SINCE) for r in p.records]) == 1
    assert len(sleeps) == 1


def test_create_only_where_supported(rsps: responses.RequestsMock, make_client: MakeClient, dialect: Dialect) -> None:
    client = make_client(dialect.vendor)
    assert client.capabilities.can_create == (dialect.vendor in ("leaflogix", "treez"))
    if not client.capabilities.can_create:
        with pytest.raises(PosNotSupported):
            client.create_customer(CustomerInput(first_name="A", last_name="B"))
        assert len(rsps.calls) == 0


def test_search_by_unsupported_field_is_not_supported(make_client: MakeClient, dialect: Dialect) -> None:
    client = make_client(dialect.vendor)
    unsupported = {"phone", "email", "drivers_license", "birthday"} - client.capabilities.search_fields
    for field in unsupported:
        with pytest.raises(PosNotSupported):
            client.search_customers(**{field: "5550001111"})
    assert client.capabilities.can_search


def test_logs_carry_context_but_no_secrets(
    rsps: responses.RequestsMock, make_client: MakeClient, dialect: Dialect, caplog: pytest.LogCaptureFixture
) -> None:
    rsps.add(responses.GET, dialect.list_url, status=429, headers={"Retry-After": "1"})
    serve_one_page(rsps, dialect, [dialect.record(1)])
    with caplog.at_level(logging.DEBUG, logger="pos_integrations"):
        list(make_client(dialect.vendor).iter_customers(SINCE))
    text = "\n".join(r.getMessage() + repr(r.__dict__) for r in caplog.records)
    assert SECRET not in text
    for value in CREDENTIALS[dialect.vendor].values():
        if value not in ("greenleaf", "42"):
            assert value not in text
    assert "token" not in text.lower() or dialect.token_url  # token *paths* may show, never their values
    assert "tz-token-1" not in text
    assert "cova-token-1" not in text
    assert "@example.com" not in text
    assert "?" not in text
    request_logs = [r for r in caplog.records if hasattr(r, "latency_ms")]
    assert request_logs
    assert {r.pos_vendor for r in request_logs} == {dialect.vendor}  # type: ignore[attr-defined]
    assert {r.pos_store for r in request_logs} == {"greenleaf-oakland"}  # type: ignore[attr-defined]
    assert any(getattr(r, "http_status", None) == 429 for r in request_logs)
    assert any(getattr(r, "retries", 0) == 1 for r in request_logs)


def test_get_customer_missing_is_none(rsps: responses.RequestsMock, make_client: MakeClient, dialect: Dialect) -> None:
    serve_tokens(rsps, dialect)
    rsps.add(responses.GET, re.compile(r"https://.*"), status=404, json={"message": "Not Found"})
    assert make_client(dialect.vendor).get_customer("12345") is None


def test_repr_hides_credentials(make_client: MakeClient, dialect: Dialect) -> None:
    client = make_client(dialect.vendor)
    assert SECRET not in repr(client)
    assert SECRET not in repr(client.http.auth)


def test_banned_is_false_where_the_vendor_does_not_say(make_client: MakeClient, dialect: Dialect) -> None:
    record = make_client(dialect.vendor).parse_record(dialect.record(1))
    assert record.banned is False
    assert record.merged_customer_ids == ()


def test_every_client_takes_the_stores_time_zone(make_client: MakeClient, dialect: Dialect) -> None:
    assert make_client(dialect.vendor).time_zone.key == "America/Los_Angeles"  # the documented default
    assert make_client(dialect.vendor, time_zone="America/New_York").time_zone.key == "America/New_York"

"""The shared HTTP layer: Retry-After, bounded waits, idempotency, redirects, error mapping."""

from __future__ import annotations

import email.utils
from collections.abc import Callable

import pytest
import requests
import responses

from pos_integrations import (
    PosAuthError,
    PosBadResponse,
    PosClient,
    PosDuplicate,
    PosNotSupported,
    PosRateLimited,
    PosUnavailable,
    PosValidationError,
)
from pos_integrations.http import HttpClient, parse_retry_after

MakeClient = Callable[..., PosClient]
URL = "https://api.test/thing"


def http(sleeps: list[float], **kwargs: object) -> HttpClient:
    return HttpClient(
        vendor="blaze",
        label="Blaze",
        base_url="https://api.test",
        sleep=sleeps.append,
        wall_clock=lambda: 1_000_000.0,
        rng=lambda: 0.5,
        **kwargs,
    )  # type: ignore[arg-type]


def test_retry_after_as_seconds_or_http_date() -> None:
    now = 1_000_000.0
    assert parse_retry_after("5", now) == 5.0
    assert parse_retry_after(email.utils.formatdate(now + 12, usegmt=True), now) == 12.0
    assert parse_retry_after(email.utils.formatdate(now - 30, usegmt=True), now) == 0.0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after("-3", now) == 0.0
    assert parse_retry_after(None, now) is None


def test_retry_after_date_is_waited_not_multiplied(rsps: responses.RequestsMock) -> None:
    sleeps: list[float] = []
    when = email.utils.formatdate(1_000_000.0 + 9, usegmt=True)
    rsps.add(responses.GET, URL, status=429, headers={"Retry-After": when})
    rsps.add(responses.GET, URL, status=429, headers={"Retry-After": when})
    rsps.add(responses.GET, URL, json={})
    http(sleeps).get_json("/thing")
    assert sleeps == [9.0, 9.0]


def test_retry_after_is_clamped(rsps: responses.RequestsMock) -> None:
    sleeps: list[float] = []
    rsps.add(responses.GET, URL, status=503, headers={"Retry-After": "500"})
    rsps.add(responses.GET, URL, json={})
    http(sleeps, retry_after_cap=20.0, max_wait_seconds=60.0).get_json("/thing")
    assert sleeps == [20.0]


def test_total_wait_is_bounded(rsps: responses.RequestsMock) -> None:
    sleeps: list[float] = []
    rsps.add(responses.GET, URL, status=429, headers={"Retry-After": "25"})
    with pytest.raises(PosRateLimited) as caught:
        http(sleeps, max_wait_seconds=60.0).get_json("/thing")
    assert sleeps == [25.0, 25.0]
    assert caught.value.retry_after == 25.0
    assert caught.value.status_code == 429
    assert caught.value.vendor == "blaze"


def test_5xx_gives_up_after_max_retries(rsps: responses.RequestsMock) -> None:
    sleeps: list[float] = []
    rsps.add(responses.GET, URL, status=502)
    with pytest.raises(PosUnavailable):
        http(sleeps, max_retries=3).get_json("/thing")
    assert sleeps == [0.375, 0.75, 1.5]


def test_backoff_has_jitter_and_a_cap() -> None:
    client = HttpClient(vendor="x", label="X", base_url="https://a", backoff_base=1, backoff_cap=8, rng=lambda: 0.0)
    assert [client.backoff(n) for n in range(5)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    client.rng = lambda: 0.999999
    assert 7.99 < client.backoff(10) <= 8


def test_non_idempotent_post_is_not_retried(rsps: responses.RequestsMock) -> None:
    sleeps: list[float] = []
    post = rsps.add(responses.POST, URL, body=requests.ConnectionError("reset"))
    with pytest.raises(PosUnavailable):
        http(sleeps).post_json("/thing", json={"a": 1})
    assert post.call_count == 1
    assert sleeps == []


def test_redirects_are_not_followed(rsps: responses.RequestsMock) -> None:
    rsps.add(responses.GET, URL, status=302, headers={"Location": "https://elsewhere.test/"})
    with pytest.raises(PosBadResponse, match="redirect"):
        http([]).get_json("/thing")


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (401, {}, PosAuthError),
        (403, {"message": "Forbidden"}, PosAuthError),
        (405, {}, PosNotSupported),
        (409, {"id": "abc"}, PosDuplicate),
        (418, {}, PosBadResponse),
    ],
)
def test_status_mapping(rsps: responses.RequestsMock, status: int, body: dict, error: type) -> None:
    rsps.add(responses.GET, URL, status=status, json=body)
    with pytest.raises(error) as caught:
        http([]).get_json("/thing")
    assert caught.value.status_code == status


def test_validation_errors_name_our_fields(rsps: responses.RequestsMock) -> None:
    rsps.add(
        responses.POST,
        URL,
        status=400,
        json={"field": "primaryPhone", "message": "bad phone", "errorType": "x.BlazeInvalidArgException"},
    )
    client = http([])
    client.field_names = {"primaryPhone": "phone"}
    with pytest.raises(PosValidationError) as caught:
        client.post_json("/thing", json={})
    assert caught.value.field_errors == {"phone": ["bad phone"]}


def test_validation_error_lists(rsps: responses.RequestsMock) -> None:
    rsps.add(responses.POST, URL, status=422, json={"errors": ["name is required", {"field": "zip", "message": "x"}]})
    with pytest.raises(PosValidationError) as caught:
        http([]).post_json("/thing", json={})
    assert caught.value.field_errors == {"__all__": ["name is required"], "zip": ["x"]}


def test_timeouts_are_passed_to_requests(rsps: responses.RequestsMock) -> None:
    seen: list[object] = []

    def answer(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        seen.append(request.req_kwargs["timeout"])  # type: ignore[attr-defined]
        return 200, {}, "{}"

    rsps.add_callback(responses.GET, URL, callback=answer)
    http([], timeout=(2.0, 9.0)).get_json("/thing")
    assert seen == [(2.0, 9.0)]

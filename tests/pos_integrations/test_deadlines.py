"""Every POS call has a total deadline across its retries: a POS that accepts connections and never answers
holds a call no longer than its kind allows."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import pytest
import responses

from pos_integrations import Deadlines, PosClient, PosRateLimited, PosUnavailable
from pos_integrations.http import HttpClient
from pos_integrations.records import CustomerInput
from tests.hanging_pos import HangingServer, Stopwatch

MakeClient = Callable[..., PosClient]
SLACK = 0.8  # seconds a call may end after its deadline (thread scheduling on a busy 2-core machine)


def hanging_http(server: HangingServer, **kwargs: object) -> HttpClient:
    return HttpClient(vendor="blaze", label="Blaze", base_url=server.url, rng=lambda: 0.5, **kwargs)  # type: ignore[arg-type]


def test_a_hung_pos_holds_a_request_no_longer_than_its_deadline() -> None:
    with HangingServer() as server, Stopwatch() as watch:
        client = hanging_http(server, default_deadline=1.0)  # the per-try read timeout stays 30 s
        with pytest.raises(PosUnavailable) as caught:
            client.get_json("/members")
    assert 1.0 <= watch.seconds < 1.0 + SLACK
    assert caught.value.deadline_passed
    assert caught.value.message == "Blaze did not answer GET /members within 1 s (1 try)"


def test_retries_share_the_deadline_and_stop_before_it() -> None:
    sleeps: list[float] = []
    with HangingServer() as server, Stopwatch() as watch:
        # Tries of 0.3 s: several fit in the deadline, and none starts that could not end in it.
        client = hanging_http(server, default_deadline=1.5, timeout=(1.0, 0.3), sleep=sleeps.append)
        with pytest.raises(PosUnavailable):
            client.get_json("/members")
    assert watch.seconds < 1.5 + SLACK
    assert server.connections >= 2
    assert len(sleeps) == server.connections - 1  # a backoff between tries, none after the last


def test_a_retry_after_past_the_deadline_is_not_waited(rsps: responses.RequestsMock) -> None:
    sleeps: list[float] = []
    rsps.add(responses.GET, "https://api.test/members", status=429, headers={"Retry-After": "30"})
    client = HttpClient(
        vendor="blaze", label="Blaze", base_url="https://api.test", sleep=sleeps.append, default_deadline=5.0
    )
    with pytest.raises(PosRateLimited) as caught:
        client.get_json("/members")
    assert sleeps == []
    assert caught.value.retry_after == 30


def test_backoff_stops_when_the_next_wait_would_pass_the_deadline(rsps: responses.RequestsMock) -> None:
    now = [0.0]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    rsps.add(responses.GET, "https://api.test/members", status=503)
    client = HttpClient(
        vendor="blaze",
        label="Blaze",
        base_url="https://api.test",
        sleep=sleep,
        clock=lambda: now[0],
        rng=lambda: 1.0,  # waits of 0.5, 1, 2, 4 s without the deadline
        default_deadline=2.0,
    )
    with pytest.raises(PosUnavailable):
        client.get_json("/members")
    assert sleeps == [0.5, 1.0]  # 2 s more would pass it
    assert now[0] <= 2.0


def test_an_inner_call_never_outlasts_the_one_around_it() -> None:
    with HangingServer() as server, Stopwatch() as watch:
        client = hanging_http(server, default_deadline=30.0)
        with client.deadline(0.6), pytest.raises(PosUnavailable), client.deadline(20.0):
            client.get_json("/members")
    assert 0.6 <= watch.seconds < 0.6 + SLACK


KINDS = Deadlines(lookup=0.5, connection=0.8, create=1.1, page=1.4)
CREATE = CustomerInput(first_name="Ann", last_name="Lee", birthday=date(1990, 2, 3), phone="5550100001")


@pytest.mark.parametrize(
    ("vendor", "call", "bound"),
    [
        ("leaflogix", lambda c: c.search_customers(phone="5550100001"), KINDS.lookup),
        ("leaflogix", lambda c: c.get_customer("1001"), KINDS.lookup),
        ("leaflogix", lambda c: c.check_connection(), KINDS.connection),
        ("leaflogix", lambda c: c.create_customer(CREATE), KINDS.create),
        ("leaflogix", lambda c: list(c.iter_customers()), KINDS.page),
        # The token request hangs: it shares the deadline of the call that needed it.
        ("treez", lambda c: c.search_customers(email="ann@example.com"), KINDS.lookup),
        ("treez", lambda c: c.create_customer(CREATE), KINDS.create),
        ("covasoft", lambda c: c.check_connection(), KINDS.connection),
        ("blaze", lambda c: list(c.iter_customers()), KINDS.page),
    ],
    ids=["lookup", "get", "connection", "create", "page", "treez-lookup", "treez-create", "cova-test", "blaze-page"],
)
def test_each_kind_of_call_ends_by_its_deadline(
    make_client: MakeClient, vendor: str, call: Callable[[PosClient], object], bound: float
) -> None:
    with HangingServer() as server:
        client = make_client(vendor, base_url=server.url, deadlines=KINDS)
        with Stopwatch() as watch, pytest.raises(PosUnavailable) as caught:
            call(client)
    assert caught.value.deadline_passed
    assert bound <= watch.seconds < bound + SLACK


def test_the_default_deadlines_are_the_documented_ones() -> None:
    assert Deadlines() == Deadlines(lookup=5.0, connection=10.0, create=15.0, page=45.0)
    with pytest.raises(ValueError, match="lookup deadline must be positive"):
        Deadlines(lookup=0)


def test_a_call_whose_deadline_is_spent_makes_no_further_request(rsps: responses.RequestsMock) -> None:
    now = [0.0]
    client = HttpClient(vendor="blaze", label="Blaze", base_url="https://api.test", clock=lambda: now[0])
    with client.deadline(5.0):
        now[0] = 4.9  # what came before in this call took nearly all of it
        with pytest.raises(PosUnavailable) as caught:
            client.get_json("/members")
    assert caught.value.message == "Blaze did not answer GET /members within 5 s (no time left to try)"
    assert len(rsps.calls) == 0

"""The shared pagination loop refuses to loop and resumes after a checkpoint."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import responses

from pos_integrations import PosBadResponse, PosClient
from pos_integrations.pagination import CLOSE_GRACE_SECONDS, RawPage, paginate

from .conftest import flowhub_record, leaflogix_record

MakeClient = Callable[..., PosClient]


def test_a_page_that_comes_back_again_stops_with_an_error(
    rsps: responses.RequestsMock, make_client: MakeClient
) -> None:
    # A server ignoring PageNumber: page 2 is page 1 again.
    rsps.add(
        responses.GET, "https://ll.test/customer/customers-paginated", json=[leaflogix_record(i) for i in range(100)]
    )
    pages = make_client("leaflogix").iter_customers()
    assert len(next(pages).records) == 100
    with pytest.raises(PosBadResponse, match="loop"):
        next(pages)


def test_flowhub_full_pages_repeating(rsps: responses.RequestsMock, make_client: MakeClient) -> None:
    rsps.add(responses.GET, "https://fh.test/v1/customers/", json=[flowhub_record(i) for i in range(500)])
    with pytest.raises(PosBadResponse):
        list(make_client("flowhub").iter_customers())


def test_a_repeated_position_stops_with_an_error() -> None:
    calls = iter(
        [
            RawPage([{"id": 1}], {"cursor": "b"}),
            RawPage([{"id": 2}], {"cursor": "a"}),
            RawPage([{"id": 3}], {"cursor": "b"}),
        ]
    )
    with pytest.raises(PosBadResponse, match="repeated"):
        list(paginate(lambda position: next(calls), {"cursor": "a"}, vendor="x", label="X", id_key="id"))


def test_page_cap() -> None:
    counter = iter(range(10))

    def fetch(position: dict) -> RawPage:
        n = next(counter)
        return RawPage([{"id": n}], {"n": n + 1})

    with pytest.raises(PosBadResponse, match="did not end"):
        list(paginate(fetch, {"n": 0}, vendor="x", label="X", id_key="id", max_pages=3))


def test_done_position_yields_nothing() -> None:
    assert (
        list(paginate(lambda p: RawPage([], None), {"page": 3, "done": True}, vendor="x", label="X", id_key="id")) == []
    )


def test_the_same_page_in_another_segment_is_no_loop() -> None:
    # Blaze's date windows: a member modified again shows up alone in a later window too.
    def walk(*pages: RawPage) -> list[list[dict]]:
        answers = iter(pages)
        start = {"segment": 100, "skip": 0}
        return [items for items, _ in paginate(lambda p: next(answers), start, vendor="x", label="X", id_key="id")]

    assert walk(RawPage([{"id": 1}], {"segment": 200, "skip": 0}), RawPage([{"id": 1}], None)) == [[{"id": 1}]] * 2
    with pytest.raises(PosBadResponse, match="loop"):
        walk(RawPage([{"id": 1}], {"segment": 100, "skip": 1}), RawPage([{"id": 1}], None))


def _numbered_listing(send, *, in_flight: int = 3, wait_seconds: float = 5.0):
    """A listing of 5 numbered pages fetched ahead through a Prefetcher, `send` answering each page request."""
    from pos_integrations.pagination import PageRequest, Prefetcher

    def read(position: dict, answer: list) -> RawPage:
        return RawPage(answer, {"page": position["page"] + 1} if position["page"] < 5 else None)

    prefetcher = Prefetcher(
        request_of=lambda p: PageRequest.get("/list", {"page": p["page"]}),
        request_ahead=lambda p, n: PageRequest.get("/list", {"page": p["page"] + n}),
        send=send,
        read=read,
        in_flight=in_flight,
        wait_seconds=wait_seconds,
        vendor="x",
        label="X",
    )
    fetch = lambda p: read(p, send(PageRequest.get("/list", {"page": p["page"]})))  # noqa: E731
    return paginate(fetch, {"page": 1}, vendor="x", label="X", id_key="id", prefetcher=prefetcher)


def test_a_page_ahead_that_never_answers_is_given_up_within_the_wait_bound() -> None:
    import threading
    import time

    from pos_integrations import PosUnavailable

    release = threading.Event()

    def send(request) -> list:
        page = request.query["page"]
        if page == 3:
            release.wait(10)  # a POS holding the request (the client's own deadline would end it)
        return [{"id": page}]

    pages = _numbered_listing(send, wait_seconds=0.3)
    started = time.monotonic()
    assert [items for items, _ in (next(pages), next(pages))] == [[{"id": 1}], [{"id": 2}]]
    with pytest.raises(PosUnavailable, match="did not answer") as caught:
        next(pages)
    assert caught.value.deadline_passed
    # Its wait, then at most the grace given to the requests still in flight as the listing closes.
    assert time.monotonic() - started < 0.3 + CLOSE_GRACE_SECONDS + 2
    release.set()
    time.sleep(0.2)
    assert not [t for t in threading.enumerate() if t.name.startswith("pos-pages-")]  # none left behind

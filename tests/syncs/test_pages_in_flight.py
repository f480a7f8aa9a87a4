"""Several listing pages in flight (SYNC_PAGES_IN_FLIGHT) against the POS sandbox over real HTTP: pages still
written and checkpointed in order, errors at their page, nothing lost or duplicated when killed."""

from __future__ import annotations

import os
import signal
import threading
import time
from urllib.parse import parse_qs, urlsplit

import pytest

from pos_sandbox.protocol import json_response
from syncs.engine import SyncRunner
from syncs.models import SyncStatus
from tests.syncs.test_sandbox import assert_mirror_equals_pos, run

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

IN_FLIGHT = 4


def page_number(target: str) -> int | None:
    """The LeafLogix listing page a request asks for (None for any other request)."""
    if "customers-paginated" not in target:
        return None
    return int(parse_qs(urlsplit(target).query)["PageNumber"][0])


def prefetch_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("pos-pages-")]


@pytest.fixture
def in_flight(settings):
    settings.SYNC_PAGES_IN_FLIGHT = IN_FLIGHT
    return IN_FLIGHT


@pytest.fixture
def checkpoints(monkeypatch) -> list[int]:
    """The listing page each saved checkpoint resumes at, in the order they were saved."""
    saved: list[int] = []
    save_state = SyncRunner.save_state

    def spy(self, *, fields):
        if "checkpoint" in fields and self.sync.checkpoint.get("position"):
            saved.append(self.sync.checkpoint["position"]["page"])
        save_state(self, fields=fields)

    monkeypatch.setattr(SyncRunner, "save_state", spy)
    return saved


def listed_one_by_one(server, store, vendor):
    """The sandbox's request count before, the listing's page positions read one page at a time, and the requests
    that took."""
    before = server.state()["vendors"][vendor]["requests"]
    expected = [page.position for page in store.pos_client(pages_in_flight=1).iter_customers()]
    return before, expected, server.state()["vendors"][vendor]["requests"] - before


@pytest.mark.parametrize("vendor", ["leaflogix", "treez", "flowhub", "covasoft", "blaze"])
def test_pages_fetched_ahead_are_the_requests_the_listing_makes(sandbox_store, in_flight, vendor):
    # 2,300 customers: several full pages for every vendor (Flowhub and Blaze page 500), and a short last one.
    server, store = sandbox_store(vendor, customers=2300, seed=4, faults="slow=20ms")
    before, expected, asked_one_by_one = listed_one_by_one(server, store, vendor)

    sync = run(store)

    assert sync.status == SyncStatus.FINISHED, (sync.error_type, sync.error_message)
    assert sync.pages == len(expected)
    assert sync.checkpoint["position"]["done"]
    asked = server.state()["vendors"][vendor]["requests"] - before - asked_one_by_one
    # Every request asked ahead was one the listing then read, but for the few past its end (dropped).
    assert asked_one_by_one <= asked <= asked_one_by_one + in_flight - 1
    assert assert_mirror_equals_pos(server, store) == 2300
    assert not prefetch_threads()


@pytest.mark.parametrize("customers", [2300, 2000])
@pytest.mark.parametrize("vendor", ["flowhub", "blaze"])
def test_a_listing_that_says_its_total_is_asked_nothing_past_its_end(sandbox_store, in_flight, vendor, customers):
    # Flowhub and Blaze answer with the listing's total: pages ahead stop there, so the sync makes exactly the
    # requests of a sync one page at a time (Flowhub's empty page after a full last one included: it ends the
    # listing), where without the total up to in-flight - 1 more were asked and dropped.
    server, store = sandbox_store(vendor, customers=customers, seed=4, faults="slow=20ms")
    before, expected, asked_one_by_one = listed_one_by_one(server, store, vendor)

    sync = run(store)

    assert sync.status == SyncStatus.FINISHED, (sync.error_type, sync.error_message)
    assert sync.pages == len(expected)
    assert server.state()["vendors"][vendor]["requests"] - before - asked_one_by_one == asked_one_by_one
    assert assert_mirror_equals_pos(server, store) == customers


def test_pages_are_written_in_order_when_they_arrive_out_of_order(sandbox_store, in_flight, checkpoints):
    server, store = sandbox_store("leaflogix", customers=1000, seed=6)
    dispatch = server.app.dispatch
    answered: list[int] = []

    def spy(method, target, headers, body):
        page = page_number(target)
        if page == 3:
            time.sleep(0.5)  # pages 4 and 5, asked at the same time, come back first
        response = dispatch(method, target, headers, body)
        if page is not None:
            answered.append(page)
        return response

    server.app.dispatch = spy
    sync = run(store)

    assert sync.status == SyncStatus.FINISHED, (sync.error_type, sync.error_message)
    assert answered.index(4) < answered.index(3)
    assert answered.index(5) < answered.index(3)
    # Pages 1 to 10 (100 customers each), one after the other, then the empty 11th that ends the listing.
    assert checkpoints == [*range(2, 12), 11]
    assert assert_mirror_equals_pos(server, store) == 1000
    assert not prefetch_threads()


@pytest.mark.parametrize(
    ("slow", "broken", "written"),
    [
        (6, 7, 6),  # page 7 fails while page 6 is still in flight: 6 is written, then the sync fails at 7
        (6, 6, 5),  # page 6 fails late, after page 7 came back: 7 is dropped, the sync fails at 6
    ],
)
def test_an_error_in_a_page_ahead_fails_the_sync_at_that_page(sandbox_store, in_flight, slow, broken, written):
    server, store = sandbox_store("leaflogix", customers=2000, seed=7)
    dispatch = server.app.dispatch
    asked: list[int] = []

    def spy(method, target, headers, body):
        page = page_number(target)
        if page is not None:
            asked.append(page)
        if page == slow:
            time.sleep(0.5)
        if page == broken:
            return json_response(200, {"unexpected": True})  # no customer list: PosBadResponse, not retried
        return dispatch(method, target, headers, body)

    server.app.dispatch = spy
    sync = run(store)

    assert sync.status == SyncStatus.FAILED
    assert sync.error_type == "PosBadResponse"
    assert "without a customer list" in sync.error_message
    assert sync.pages == written
    assert sync.fetched == written * 100
    assert sync.checkpoint["position"]["page"] == written + 1  # the next sync resumes right after the last written
    # Nothing was asked past the pages in flight when the error came back.
    assert max(asked) <= max(slow, broken) + in_flight - 1
    assert not prefetch_threads()  # the pages still in flight were let go


@pytest.mark.django_db(transaction=True)
def test_a_sync_killed_with_several_pages_in_flight_loses_nothing_and_fetches_again_only_those(
    sandbox_store, process_syncs
):
    server, _ = sandbox_store("leaflogix", customers=3000, seed=5, faults="slow=30ms")
    served: list[tuple[int, int]] = []  # (worker number, page answered)
    worker = {"n": 0, "pid": 0}
    dispatch = server.app.dispatch

    def spy(method, target, headers, body):
        page = page_number(target)
        if worker["n"] == 1 and page == 16:
            # Page 16 is asked when the sync takes page 12 (pages 13 to 16 ahead of it): killed while page 12 is
            # written and 13 to 16 are in flight.
            threading.Timer(0.01, os.kill, (worker["pid"], signal.SIGKILL)).start()
        response = dispatch(method, target, headers, body)
        if page is not None:
            served.append((worker["n"], page))
        return response

    server.app.dispatch = spy
    crash = process_syncs(server, pages_in_flight=IN_FLIGHT)

    worker["n"] = 1
    first = crash.start()
    worker["pid"] = first.pid
    assert first.wait(timeout=60) == -signal.SIGKILL
    time.sleep(0.2)  # answers the server was still writing to the dead process
    committed = crash.killed_sync_pages()
    fetched_by_first = sorted(p for w, p in served if w == 1)
    assert len(set(fetched_by_first)) > IN_FLIGHT  # several rounds of pages ahead went by before the kill
    # Unwritten: the page being written when killed and those in flight behind it, no more.
    assert 16 - IN_FLIGHT - 1 <= committed < 16
    assert max(fetched_by_first) - committed <= IN_FLIGHT + 1

    worker["n"] = 2
    crash.resume_after_the_lease()
    fetched_by_second = [p for w, p in served if w == 2]
    assert min(fetched_by_second) == committed + 1
    again = set(fetched_by_first) & set(fetched_by_second)
    assert len(again) <= IN_FLIGHT + 1  # at most the page being written and those in flight fetched again
    # 30 pages of 100 and an empty 31st; the second asked each once but for the few past the end.
    assert set(fetched_by_second) >= set(range(committed + 1, 32))
    assert len(fetched_by_second) == len(set(fetched_by_second)) <= 31 - committed + IN_FLIGHT - 1
    crash.assert_mirror_equals_pos(3000)

"""A sync whose POS stops answering (accepts connections, never answers) fails with PosUnavailable by the
page deadline and frees its worker, keeping what it had written; the next sync resumes there."""

from __future__ import annotations

import json
from typing import Any

import pytest

from customers.models import Customer
from stores.models import PosVendor
from syncs.models import CustomerSync, SyncStatus
from syncs.tasks import sync_store_customers
from tests.factories import StoreFactory
from tests.hanging_pos import HangingServer, Stopwatch
from tests.pos_integrations.conftest import leaflogix_record

pytestmark = pytest.mark.django_db

SLACK = 1.5
PAGE_DEADLINE = 2.0


@pytest.fixture(autouse=True)
def _short_page_deadline(settings: Any) -> None:
    settings.POS_SYNC_PAGE_DEADLINE_SECONDS = PAGE_DEADLINE


def run_task(store: Any) -> tuple[dict[str, Any], float]:
    """The task a worker runs, timed: it returns (the worker is free) by the time measured."""
    with Stopwatch() as watch:
        result = sync_store_customers(store.pk, trigger="manual")
    return result, watch.seconds


def test_a_sync_against_a_hung_pos_fails_with_pos_unavailable_by_the_page_deadline():
    with HangingServer() as server:
        store = StoreFactory(pos_vendor=PosVendor.LEAFLOGIX, pos_base_url=server.url)
        result, seconds = run_task(store)
    assert (result["status"], result["error_type"]) == (SyncStatus.FAILED, "PosUnavailable")
    assert PAGE_DEADLINE <= seconds < PAGE_DEADLINE + SLACK
    sync = CustomerSync.objects.get(pk=result["sync_id"])
    assert sync.error_message.startswith(
        "LeafLogix (Dutchie POS) did not answer GET /customer/customers-paginated within 2 s"
    )


def test_a_pos_that_stops_answering_mid_sync_fails_it_and_keeps_the_pages_written():
    first_page = json.dumps([leaflogix_record(i) for i in range(100)]).encode()  # a full page: there is more
    with HangingServer(answers=[first_page]) as server:
        store = StoreFactory(pos_vendor=PosVendor.LEAFLOGIX, pos_base_url=server.url)
        result, seconds = run_task(store)
    assert (result["status"], result["error_type"]) == (SyncStatus.FAILED, "PosUnavailable")
    assert PAGE_DEADLINE <= seconds < PAGE_DEADLINE + SLACK
    assert Customer.objects.filter(store=store).count() == 100
    sync = CustomerSync.objects.get(pk=result["sync_id"])
    assert (sync.pages, sync.checkpoint["position"]["page"]) == (1, 2)  # the next sync resumes at page 2


@pytest.mark.parametrize("head_at_once", [False, True], ids=["all-trickles", "body-trickles"])
def test_a_sync_against_a_trickling_pos_fails_by_the_page_deadline(head_at_once):
    # A byte every 0.3 s: no read waits long enough for its timeout; the page's total deadline stops it.
    with HangingServer(trickle=0.3, head_at_once=head_at_once) as server:
        store = StoreFactory(pos_vendor=PosVendor.LEAFLOGIX, pos_base_url=server.url)
        result, seconds = run_task(store)
    assert (result["status"], result["error_type"]) == (SyncStatus.FAILED, "PosUnavailable")
    assert PAGE_DEADLINE <= seconds < PAGE_DEADLINE + SLACK
    sync = CustomerSync.objects.get(pk=result["sync_id"])
    assert sync.error_message.startswith(
        "LeafLogix (Dutchie POS) did not answer GET /customer/customers-paginated within 2 s"
    )

"""The one pagination loop: follows a vendor's positions, stops on its stop condition, refuses to loop; and,
where the vendor's paging lets the next pages' requests be computed, fetches a few of them ahead (`Prefetcher`)
while the pages are still read, and handed on, strictly in order."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Generator, Iterator, Mapping
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from .errors import PosBadResponse, PosUnavailable

logger = logging.getLogger("pos_integrations.pagination")

Position = dict[str, Any]
# How many page requests one listing may have in flight at most (the HTTP layer's pool holds 16 connections).
MAX_PAGES_IN_FLIGHT = 16
# How long closing a listing waits for its threads' requests still in flight before leaving them to end on
# their own (each within its page deadline; they only fetch, and their answers are dropped).
CLOSE_GRACE_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class RawPage:
    """One page as the vendor sent it: its items and where the next page is (None when this was the last), and
    how many records the whole listing has where the vendor says (for progress bars; None when it does not)."""

    items: list[Any]
    next_position: Position | None
    total: int | None = None


@dataclass(frozen=True, slots=True)
class PageRequest:
    """What a listing page is asked with (a GET of `path` with `params`): two positions with equal requests get
    the same answer, so an answer fetched ahead for a predicted position serves the real one."""

    path: str
    params: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def get(cls, path: str, params: Mapping[str, Any] | None = None) -> PageRequest:
        return cls(path, tuple(sorted((params or {}).items())))

    @property
    def query(self) -> dict[str, Any]:
        return dict(self.params)


def fingerprint(items: list[Any], id_key: str) -> str:
    """A short digest of a page: its records' ids in order (or the records themselves where ids are missing)."""
    if all(isinstance(item, dict) and item.get(id_key) is not None for item in items):
        material = "\x1f".join(str(item[id_key]) for item in items)
    else:
        material = json.dumps(items, sort_keys=True, default=str)
    return hashlib.blake2b(material.encode(), digest_size=16).hexdigest()


def _key(position: Position) -> str:
    return json.dumps(position, sort_keys=True, default=str)


def paginate(
    fetch: Callable[[Position], RawPage],
    start: Position,
    *,
    vendor: str,
    label: str,
    id_key: str,
    max_pages: int = 1_000_000,
    prefetcher: Prefetcher | None = None,
) -> Generator[tuple[list[Any], Position], None, None]:
    """Yield (items, position after them) until the vendor's stop condition.

    The position yielded with the last page carries `"done": True`, and every position the listing's `"total"`
    where the vendor reported one. A position or a page of
    records seen before means the vendor is ignoring our paging, so we stop with PosBadResponse
    instead of looping forever. A listing made of several queries (Blaze's date windows) names each in its
    positions' `segment`: the same records may rightly come back in another segment, so pages are compared
    within one segment only.

    With a `prefetcher`, the pages after each one are requested ahead as soon as it arrives (see Prefetcher);
    closing this generator (or an error) cancels what is still in flight.
    """
    try:
        yield from _paginate(
            fetch, start, vendor=vendor, label=label, id_key=id_key, max_pages=max_pages, ahead=prefetcher
        )
    finally:
        if prefetcher is not None:
            prefetcher.close()


def _paginate(
    fetch: Callable[[Position], RawPage],
    start: Position,
    *,
    vendor: str,
    label: str,
    id_key: str,
    max_pages: int,
    ahead: Prefetcher | None,
) -> Iterator[tuple[list[Any], Position]]:
    seen_positions: set[str] = set()
    seen_pages: set[tuple[str, str]] = set()
    position: Position | None = start
    pages = 0
    while position is not None and not position.get("done"):
        key = _key(position)
        if key in seen_positions:
            raise PosBadResponse(f"{label} pagination loop: position {key} repeated", vendor=vendor)
        seen_positions.add(key)
        pages += 1
        if pages > max_pages:
            raise PosBadResponse(f"{label} pagination did not end after {max_pages} pages", vendor=vendor)
        page = fetch(position) if ahead is None else ahead.page(position, fetch)
        if ahead is not None and page.next_position is not None:
            # The next pages are fetched while this one is handed on; in a new segment (another date window),
            # only its first page until that one has come back full. The vendor's total (where it sends one)
            # goes along, so that no page is asked ahead past the listing's end (`listed_fewer_than`).
            same = page.next_position.get("segment") == position.get("segment")
            planned = page.next_position if page.total is None else {**page.next_position, "total": page.total}
            ahead.plan(planned, predict=same)
        if page.items:
            seen = (_key({"segment": position.get("segment")}), fingerprint(page.items, id_key))
            if seen in seen_pages:
                raise PosBadResponse(f"{label} pagination loop: the same page came back twice", vendor=vendor)
            seen_pages.add(seen)
        after = page.next_position if page.next_position is not None else {**position, "done": True}
        if page.total is not None:
            after = {**after, "total": page.total}
        yield page.items, after
        position = page.next_position


Answer = Any  # what a vendor's page request returns, read into a RawPage by the vendor


def _failed(future: Future[Answer]) -> bool:
    return future.done() and not future.cancelled() and future.exception() is not None


@dataclass
class _Slot:
    request: PageRequest
    future: Future[Answer]


class Prefetcher:
    """Fetches the answers to a listing's next page requests in up to `in_flight` threads of its own, each with
    its own HTTP session, while the caller reads the pages one at a time and in order.

    As each page is read, the requests of the next `in_flight` pages are computed from the position after it
    (`request_ahead`: page numbers, offsets, the same date window) and those not yet asked are sent; a page
    whose request was asked ahead is read from that answer, any other one (the first page, a listing that went
    another way than predicted) is fetched directly. An error is raised at its page, in order: the pages before
    it are still read. Answers no longer wanted (the listing ended: a short or empty page) are dropped, and
    closing cancels what has not started and gives the threads' requests in flight a short grace to end.
    Every wait is bounded: a thread's request by its page deadline (the client's), the caller's wait for an
    answer by `wait_seconds`.
    """

    def __init__(
        self,
        *,
        request_of: Callable[[Position], PageRequest],
        request_ahead: Callable[[Position, int], PageRequest | None],
        send: Callable[[PageRequest], Answer],
        read: Callable[[Position, Answer], RawPage],
        in_flight: int,
        wait_seconds: float,
        vendor: str,
        label: str,
        thread_scope: Callable[[], AbstractContextManager[Any]] = contextlib.nullcontext,
    ) -> None:
        if not 1 <= in_flight <= MAX_PAGES_IN_FLIGHT:
            raise ValueError(f"pages in flight must be between 1 and {MAX_PAGES_IN_FLIGHT}, not {in_flight}")
        self.request_of = request_of
        self.request_ahead = request_ahead
        self.send = send
        self.read = read
        self.in_flight = in_flight
        self.wait_seconds = wait_seconds
        self.vendor = vendor
        self.label = label
        self.thread_scope = thread_scope
        self._slots: list[_Slot] = []  # asked ahead, in listing order
        self._queue: queue.SimpleQueue[_Slot | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._pending = 0  # requests queued or being fetched
        self._lock = threading.Lock()
        self._closed = False

    # ---- the caller's side -----------------------------------------------------------------------------

    def page(self, position: Position, fetch: Callable[[Position], RawPage]) -> RawPage:
        """The page at `position`: from its answer fetched ahead, or fetched now with `fetch`."""
        request = self.request_of(position)
        slot = next((s for s in self._slots if s.request == request), None)
        if slot is None:
            return fetch(position)
        self._slots.remove(slot)
        try:
            answer = slot.future.result(timeout=self.wait_seconds)
        except FutureTimeout:
            raise PosUnavailable(
                f"{self.label} did not answer a listing page within {self.wait_seconds:g} s",
                vendor=self.vendor,
                status_code=None,
                deadline_passed=True,
            ) from None
        return self.read(position, answer)

    def plan(self, position: Position, *, predict: bool = True) -> None:
        """The listing goes on at `position`: ask for its page now, and (`predict`) for the next ones; drop what
        is no longer on the way."""
        wanted: list[PageRequest] = []
        if not position.get("done"):
            wanted.append(self.request_of(position))
            while predict and len(wanted) < self.in_flight:
                ahead = self.request_ahead(position, len(wanted))
                if ahead is None:
                    break
                wanted.append(ahead)
        for slot in self._slots:  # nothing after a page known to have failed: the listing stops there
            if slot.request in wanted and _failed(slot.future):
                wanted = wanted[: wanted.index(slot.request) + 1]
        for slot in [s for s in self._slots if s.request not in wanted]:
            slot.future.cancel()  # not started: never sent; started: its answer is dropped
            self._slots.remove(slot)
        asked = {s.request for s in self._slots}
        for request in wanted:
            if request not in asked:
                self._ask(request)
        self._slots.sort(key=lambda s: wanted.index(s.request))

    def close(self) -> None:
        """Cancel what has not started, stop the threads; wait a short grace for requests in flight."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        for slot in self._slots:
            slot.future.cancel()
        self._slots.clear()
        for _ in self._threads:
            self._queue.put(None)
        ends = time.monotonic() + CLOSE_GRACE_SECONDS
        for thread in self._threads:
            thread.join(max(0.0, ends - time.monotonic()))
        running = sum(thread.is_alive() for thread in self._threads)
        if running:
            logger.info(
                "%s listing closed with %d page requests still in flight; their answers will be dropped",
                self.vendor,
                running,
            )

    # ---- the threads -------------------------------------------------------------------------------------

    def _ask(self, request: PageRequest) -> None:
        slot = _Slot(request, Future())
        self._slots.append(slot)
        with self._lock:
            self._pending += 1  # queued or being fetched
            start = self._pending > len(self._threads) and len(self._threads) < self.in_flight
        if start:
            thread = threading.Thread(
                target=self._work, name=f"pos-pages-{self.vendor}-{len(self._threads) + 1}", daemon=True
            )
            self._threads.append(thread)
            thread.start()
        self._queue.put(slot)

    def _work(self) -> None:
        with self.thread_scope():
            while True:
                slot = self._queue.get()
                if slot is None:
                    return
                if slot.future.set_running_or_notify_cancel():
                    try:
                        slot.future.set_result(self.send(slot.request))
                    except BaseException as exc:  # handed to the reader, at its page
                        slot.future.set_exception(exc)
                with self._lock:
                    self._pending -= 1
                    if self._closed:
                        return


def listed_fewer_than(position: Position, count: int) -> bool:
    """Whether the listing's total, where the vendor reported one with the page before `position`, says it holds
    fewer than `count` records: a vendor's `request_ahead` asks nothing ahead that could only come back empty.
    Only a hint for fetching ahead: where the listing ends is still the vendor's stop condition."""
    total = position.get("total")
    return isinstance(total, int) and not isinstance(total, bool) and total < count


def list_from(body: Any, *keys: str) -> list[Any] | None:
    """The record list from a bare array or from the first of these envelope keys (dotted paths allowed)."""
    if isinstance(body, list):
        return body
    if not isinstance(body, dict):
        return None
    for path in keys:
        current: Any = body
        for step in path.split("."):
            current = current.get(step) if isinstance(current, dict) else None
        if isinstance(current, list):
            return current
    return None

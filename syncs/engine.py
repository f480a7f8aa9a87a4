"""The customer sync engine: streams a store's POS listing page by page into the mirror.

`CustomerSync.do_process()` runs a sync here (`process_sync`). Lifecycle: a pending sync is claimed
(pending -> in_progress, atomically, so a task delivered twice runs once), its window is fixed
(incremental: the last finished sync's cursor minus the vendor's overlap, up to a bound frozen now), then
each POS page is fetched (HTTP, outside any transaction) and handed to the mirror's writer
(customers.writer), which writes it with the sync's checkpoint (counts, heartbeat, listing position) in
one short transaction of its own (on PostgreSQL the page's writes and COMMIT go out together and the
database writes the page while the next one is fetched). A full sync finally marks the customers the POS
no longer returns as inactive. The sync ends `finished` with `cursor_to` = the bound, `failed` with
the error's type and message (and a Sentry event), or `interrupted` when a stop signal (SIGTERM, SIGINT:
syncs.interrupt) arrived, with the checkpoint of its last committed page.

A crash or a stop loses at most the page in flight: the next sync of the store resumes at the failed or
interrupted one's checkpoint (see selectors.resumable_sync), inside the same window.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable
from contextlib import closing
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import sentry_sdk
from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone

from customers.db_errors import without_row_detail
from customers.models import Customer, RecordSource
from customers.writer import CustomerWriter, PageWrite, StagedPage
from pos_integrations.base import PosClient
from pos_integrations.errors import PosError, PosNotSupported, PosRateLimited, PosUnavailable
from pos_integrations.records import CustomerPage, CustomerRecord
from syncs.choices import RESUME_AFTER, SyncKind, SyncStatus
from syncs.interrupt import interruption_name, stop_signals_deferred

if TYPE_CHECKING:  # the model runs the engine (do_process); the engine works on the instance it is given
    from syncs.models import CustomerSync

logger = logging.getLogger("syncs.engine")

Progress = Callable[["CustomerSync"], None]

# Transient POS failures (after the HTTP layer's own retries) are retried from the last checkpoint this
# many times in a row before the sync gives up.
PAGE_RETRIES = 3
PAGE_RETRY_BACKOFF = 2.0
# Rejected records beyond this many per sync are counted but not stored (a broken mapping would
# otherwise copy the whole POS into the quarantine).
MAX_STORED_RECORD_ERRORS = 1000
# Customers a full sync did not see are checked one by one at the POS when there are at most this many:
# a listing that shifted while we paged through it must not deactivate anyone by mistake.
VERIFY_MISSING_LIMIT = 100
# A handful of bad records never fails a sync, whatever the ratio (a small incremental sync re-lists the same
# malformed record until the POS fixes it; failing every run for it would stall the store).
INVALID_ALLOWANCE = 10
# An invalid-record ratio this high after this many records is a broken mapping: stop early.
EARLY_INVALID_RATIO = 0.5
EARLY_INVALID_MIN_RECORDS = 500


# What each page's checkpoint saves; the counts of what the writes did are known once they are done, so a
# page committed ahead has its counts saved with the next page's checkpoint or when the sync ends.
COUNT_FIELDS = ("created", "updated", "unchanged", "deactivated")
STATE_FIELDS = ["pages", "fetched", "invalid", "heartbeat_at", "checkpoint", *COUNT_FIELDS]


class SyncLost(Exception):
    """The sync is no longer ours: it was marked failed (abandoned) while we were working."""


class WaitBudgetExhausted(PosRateLimited):
    """The POS kept us waiting (Retry-After, backoff) longer than the sync's budget allows."""


class RateLimitDeferred(WaitBudgetExhausted):
    """The POS asked for a wait longer than a sync sleeps in its worker (SYNC_RATE_LIMIT_HOLD_SECONDS): the sync stops
    at its checkpoint, and carries on at `resume_at` (syncs.services.sync_resume_deferred)."""

    def __init__(self, message: str, *, vendor: str, retry_after: float, resume_at: datetime) -> None:
        super().__init__(message, vendor=vendor, retry_after=retry_after)
        self.resume_at = resume_at


class SyncFailure(Exception):
    """A sync failure that is not a POS error (too many invalid records, a safety guard)."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message


def _sleep(seconds: float) -> None:
    time.sleep(seconds)


def process_sync(sync: CustomerSync, *, progress: Progress | None = None) -> CustomerSync:
    """Claim a pending sync and run it to `finished` or `failed` (what CustomerSync.do_process does); returns
    the refreshed sync."""
    runner = SyncRunner(sync=sync, progress=progress)
    try:
        # Inside the try: a stop signal right after the claim still records the sync as interrupted.
        if not sync.claim():
            logger.info("sync %s: not pending any more (status %s); nothing to do", sync.pk, sync.status)
            sync.refresh_from_db()
            return sync
        runner.run()
    except SyncLost:
        logger.warning("sync %s store=%s: lost its lease while running; stopped", sync.pk, sync.store.catalog_id)
    except SyncFailure as exc:
        runner.fail(exc.error_type, exc.message, exc)
    except WaitBudgetExhausted as exc:
        runner.fail("RateLimited", str(exc), exc, resume_at=getattr(exc, "resume_at", None))
    except PosError as exc:
        runner.fail(type(exc).__name__, exc.message, exc)
    except DatabaseError as exc:
        # PostgreSQL's text of a refused row quotes the row (customer data): log where it failed, not the row.
        message = database_error_message(exc)
        trace = "".join(traceback.format_tb(exc.__traceback__))
        logger.error(
            "sync %s store=%s crashed: %s: %s\n%s", sync.pk, sync.store.catalog_id, type(exc).__name__, message, trace
        )
        runner.fail(type(exc).__name__, message, exc)
    except Exception as exc:
        logger.exception("sync %s store=%s crashed", sync.pk, sync.store.catalog_id)
        runner.fail(type(exc).__name__, str(exc) or type(exc).__name__, exc)
    except BaseException as exc:  # SIGTERM or SIGINT (syncs.interrupt), SystemExit: record it, then go.
        runner.interrupt(exc)
        raise
    sync.refresh_from_db()
    return sync


class SyncRunner:
    """Runs one claimed sync; keeps its counts in memory and commits them with every page."""

    def __init__(self, *, sync: CustomerSync, progress: Progress | None) -> None:
        self.sync = sync
        self.store = sync.store
        self.progress = progress
        self.budget = float(settings.SYNC_RATE_LIMIT_BUDGET_SECONDS)
        self.waited = 0.0
        self._waits = threading.Lock()  # pages fetched ahead wait (backoff, Retry-After) in their own threads
        self._thread = threading.current_thread()
        self._waiting_until = 0.0  # monotonic time until which some thread of this sync is waiting
        self._writer: CustomerWriter | None = None
        self.position: dict[str, Any] | None = None
        self.mark: datetime | None = None  # rows stamped since then were seen by this sync
        self.pending: PageWrite | None = None  # the last page written, until its result is counted

    @property
    def writer(self) -> CustomerWriter:
        if self._writer is None:
            self._writer = CustomerWriter.for_store(
                self.store, source=RecordSource.SYNC, origin=self.sync, quarantine_limit=MAX_STORED_RECORD_ERRORS
            )
        return self._writer

    # ---- the run --------------------------------------------------------------------------------

    def run(self) -> None:
        sync = self.sync
        client = self.store.pos_client(sleep=self.wait, max_wait_seconds=self.budget)
        self.start_window(overlap=client.overlap)
        logger.info(
            "sync %s store=%s vendor=%s kind=%s trigger=%s started (from=%s bound=%s%s)",
            sync.pk,
            self.store.catalog_id,
            self.store.pos_vendor,
            sync.kind,
            sync.trigger,
            _iso(sync.cursor_from),
            _iso(sync.cursor_bound),
            f", resuming sync {sync.resumed_from_id}" if sync.resumed_from_id else "",
        )
        self.stream(client)
        if sync.kind == SyncKind.FULL:
            self.deactivate_missing(client)
        self.check_invalid_ratio(final=True)
        self.finish()

    def start_window(self, *, overlap: timedelta) -> None:
        """Fix where the listing starts and the bound this sync will reach (carried over when resuming)."""
        sync = self.sync
        now = sync.started_at or timezone.now()
        if sync.resumed_from_id and sync.cursor_bound is not None:
            self.position = sync.checkpoint.get("position")
        else:
            sync.cursor_bound = now
            if sync.kind == SyncKind.FULL:
                sync.cursor_from = None
            else:
                cursor = sync.previous_cursor()
                sync.cursor_from = cursor - overlap if cursor is not None else None
            sync.checkpoint = {}
        # Rows stamped since the mark were seen by this sync (or the one it resumes).
        self.mark = _parse_dt(sync.checkpoint.get("mark")) or now
        sync.checkpoint["mark"] = self.mark.isoformat()
        self.save_state(fields=["cursor_from", "cursor_bound", "checkpoint"])

    def stream(self, client: PosClient) -> None:
        """Fetch and write every page, resuming from the last checkpoint on transient POS failures."""
        retries = 0
        while True:
            try:
                # Closed on the way out, whatever ends the loop: pages still in flight are cancelled.
                with closing(client.iter_customers(self.sync.cursor_from, start=self.position)) as pages:
                    for page in pages:
                        self.write_page(page)
                        retries = 0
                self.settle()
                return
            except (PosRateLimited, PosUnavailable) as exc:
                # A POS that let a page's deadline pass is not asked again at once: the sync fails and frees
                # its worker (the next one resumes at the checkpoint).
                gave_up = isinstance(exc, WaitBudgetExhausted) or getattr(exc, "deadline_passed", False)
                if gave_up or retries >= PAGE_RETRIES:
                    raise
                retries += 1
                retry_after = exc.retry_after if isinstance(exc, PosRateLimited) else None
                delay = retry_after or PAGE_RETRY_BACKOFF * 2 ** (retries - 1)
                self.hold_worker(delay)  # before saying it retries
                logger.warning(
                    "sync %s store=%s: %s; retrying from the checkpoint in %.1f s (%d/%d)",
                    self.sync.pk,
                    self.store.catalog_id,
                    type(exc).__name__,
                    delay,
                    retries,
                    PAGE_RETRIES,
                )
                self.wait(delay)

    def write_page(self, page: CustomerPage, *, checkpoint: bool = True) -> None:
        """Hand one page to the writer, which writes it, its rejected records and this sync's checkpoint in
        one transaction; on PostgreSQL (outside a caller's transaction) it returns while the database still
        works, and the caller fetches the next page meanwhile. `settle()` (before the next checkpoint, a
        wait, or the end) counts what the page did. Either way, no HTTP call happens inside a transaction,
        and a process killed at any point leaves at most one page to fetch again: the one not yet committed.
        """
        assert self.mark is not None

        def save_checkpoint(staged: StagedPage) -> None:
            # Inside the page's transaction: the writer has finished the page before, so its counts go too.
            self.settle()
            sync = self.sync
            self.hold(staged.moved_from)
            sync.pages += 1
            sync.fetched += len(page)
            sync.invalid += staged.rejected
            sync.heartbeat_at = timezone.now()
            if checkpoint:
                self.position = page.position
                sync.checkpoint["position"] = page.position
            self.save_state(fields=STATE_FIELDS)  # SyncLost (and a rollback) if the sync is no longer ours

        # The writer begins and ends the page's transaction by hand: a stop signal waits until it is done.
        with stop_signals_deferred():
            self.pending = self.writer.write(
                page.records, errors=page.errors, mark=self.mark, alongside=save_checkpoint
            )
        self.check_invalid_ratio(final=False)

    def settle(self) -> None:
        """Count what the last page written did, once its writes are done (waiting for them if need be)."""
        pending, self.pending = self.pending, None
        if pending is None:
            return
        with stop_signals_deferred():
            result = pending.result()
        sync = self.sync
        sync.created += result.created
        sync.updated += result.updated
        sync.unchanged += result.unchanged
        sync.deactivated += result.deactivated
        if self.progress is not None:
            self.progress(sync)

    def hold(self, moved_from: datetime | None) -> None:
        """Keep the cursor from passing the previous time of a customer that moved in the listing."""
        if moved_from is None:
            return
        held = _parse_dt(self.sync.checkpoint.get("hold"))
        if held is None or moved_from < held:
            self.sync.checkpoint["hold"] = moved_from.isoformat()
            logger.info(
                "sync %s store=%s: a customer moved in the POS listing while we paged; the cursor will not pass %s",
                self.sync.pk,
                self.store.catalog_id,
                moved_from.isoformat(),
            )

    def deactivate_missing(self, client: PosClient) -> None:
        """Full sync: customers the POS did not return are marked inactive (few are double-checked first)."""
        assert self.mark is not None
        mark = self.mark
        missing = Customer.objects.for_store(self.store).active().unseen_since(mark)
        sample = list(missing.order_by("id").values_list("customer_id", flat=True)[: VERIFY_MISSING_LIMIT + 1])
        if not sample:
            return
        if self.sync.fetched == 0:
            raise SyncFailure(
                "MissingCustomersGuard",
                "The POS listed no customers at all; refusing to mark this store's customers inactive.",
            )
        if len(sample) > VERIFY_MISSING_LIMIT and self.sync.checkpoint.get("hold"):
            # Customers moved in the listing while we paged, so some of the many unseen may just have been
            # skipped: too many to check one by one, so leave them for the next full sync.
            logger.warning(
                "sync %s store=%s: the POS listing shifted during the sync; not marking %d+ unseen customers "
                "inactive this time",
                self.sync.pk,
                self.store.catalog_id,
                VERIFY_MISSING_LIMIT,
            )
            return
        if len(sample) <= VERIFY_MISSING_LIMIT:
            found: list[CustomerRecord] = []
            for customer_id in sample:
                try:
                    record = client.get_customer(customer_id)
                except (PosNotSupported, NotImplementedError):
                    found = []  # the POS cannot look one customer up: trust the listing
                    break
                if record is not None:
                    found.append(record)
            if found:
                # Still at the POS: the listing shifted under us. Write them like any page.
                self.write_page(CustomerPage(records=found), checkpoint=False)
                self.settle()

        def save_count(count: int) -> None:
            self.sync.deactivated += count
            self.sync.heartbeat_at = timezone.now()
            self.save_state(fields=["deactivated", "heartbeat_at"])

        count = self.writer.deactivate_unseen(since=mark, alongside=save_count)
        if count:
            logger.info(
                "sync %s store=%s: %d customers gone from the POS marked inactive",
                self.sync.pk,
                self.store.catalog_id,
                count,
            )

    def check_invalid_ratio(self, *, final: bool) -> None:
        sync = self.sync
        if not sync.fetched:
            return
        ratio = sync.invalid / sync.fetched
        limit = settings.SYNC_MAX_INVALID_RATIO
        if sync.invalid <= INVALID_ALLOWANCE:
            return
        if final and ratio > limit:
            raise SyncFailure(
                "InvalidRecordThreshold",
                f"{sync.invalid} of {sync.fetched} records were invalid ({ratio:.1%}, over the {limit:.1%} limit).",
            )
        if not final and sync.fetched >= EARLY_INVALID_MIN_RECORDS and ratio > max(limit, EARLY_INVALID_RATIO):
            raise SyncFailure(
                "InvalidRecordThreshold",
                f"{sync.invalid} of the first {sync.fetched} records were invalid ({ratio:.1%}); stopped early.",
            )

    def finish(self) -> None:
        self.settle()
        sync = self.sync
        now = timezone.now()
        sync.status = SyncStatus.FINISHED
        sync.finished_at = now
        sync.heartbeat_at = now
        sync.cursor_to = reached_cursor(sync)
        self.save_state(fields=["status", "finished_at", "heartbeat_at", "cursor_to", *COUNT_FIELDS])
        logger.info(
            "sync %s store=%s vendor=%s finished in %.1f s: pages=%d fetched=%d created=%d updated=%d "
            "unchanged=%d invalid=%d deactivated=%d",
            sync.pk,
            self.store.catalog_id,
            self.store.pos_vendor,
            (now - sync.started_at).total_seconds() if sync.started_at else 0.0,
            sync.pages,
            sync.fetched,
            sync.created,
            sync.updated,
            sync.unchanged,
            sync.invalid,
            sync.deactivated,
        )

    # ---- state, waiting, failure -----------------------------------------------------------------

    def save_state(self, *, fields: list[str]) -> None:
        """Save these fields if the sync is still ours (in progress); SyncLost otherwise."""
        if not self.sync.save_if_running(fields):
            raise SyncLost

    def hold_worker(self, seconds: float) -> None:
        """RateLimitDeferred if a wait this long is more than a sync sleeps in its worker."""
        hold = settings.SYNC_RATE_LIMIT_HOLD_SECONDS
        if seconds > hold:
            resume_at = timezone.now() + timedelta(seconds=seconds)
            raise RateLimitDeferred(
                f"Rate limited by the POS for {seconds:.0f} s, longer than a sync waits in its worker ({hold} s): "
                f"stopped at page {self.sync.pages} to free the worker; it carries on from there after "
                f"{resume_at:%H:%M:%S} UTC.",
                vendor=self.store.pos_vendor,
                retry_after=seconds,
                resume_at=resume_at,
            )

    def wait(self, seconds: float) -> None:
        """Sleep for the POS (rate limits, backoff) within the sync's budget, renewing the heartbeat first."""
        seconds = max(0.0, float(seconds))
        self.hold_worker(seconds)
        with self._waits:
            # Pages fetched ahead that wait at the same time (for a rate limit's window) count once: the budget
            # is the time the sync spent waiting, not the sum of its threads' waits.
            ahead = threading.current_thread() is not self._thread
            now = time.monotonic()
            more = max(0.0, now + seconds - max(now, self._waiting_until)) if ahead else seconds
            if self.waited + more > self.budget:
                raise WaitBudgetExhausted(
                    f"Rate limited by the POS: waiting {seconds:.0f} s more would pass the {self.budget:.0f} s "
                    f"budget ({self.waited:.0f} s waited); stopped at page {self.sync.pages}, the next sync resumes "
                    "there.",
                    vendor=self.store.pos_vendor,
                    retry_after=seconds,
                )
            self.waited += more
            self._waiting_until = max(self._waiting_until, now + seconds)
        if ahead:
            # A page fetched ahead (pos_integrations.pagination.Prefetcher) waits in its own thread, which touches
            # no database: the heartbeat is the main thread's, and every page's wait ends within its deadline.
            _sleep(seconds)
            return
        self.settle()
        self.sync.heartbeat_at = timezone.now()
        self.save_state(fields=["heartbeat_at"])
        _sleep(seconds)

    def fail(
        self, error_type: str, message: str, exc: BaseException | None, *, resume_at: datetime | None = None
    ) -> None:
        self.end(SyncStatus.FAILED, error_type, message, exc, resume_at=resume_at)
        sync = self.sync
        logger.warning(
            "sync %s store=%s vendor=%s failed after %d pages: %s: %s",
            sync.pk,
            self.store.catalog_id,
            self.store.pos_vendor,
            sync.pages,
            sync.error_type,
            sync.error_message,
        )
        report_failure(sync=sync, exc=exc)

    def interrupt(self, exc: BaseException) -> None:
        """Stopped on purpose (a signal): `interrupted`, with the checkpoint of the last committed page; no Sentry
        event, since nothing is wrong."""
        sync = self.sync
        name = interruption_name(exc)
        try:  # the page in hand may have been rolled back: count what was committed
            committed = type(sync).objects.filter(pk=sync.pk).values_list("pages", flat=True).first() or 0
        except Exception:
            committed = sync.pages
        self.end(
            SyncStatus.INTERRUPTED,
            "Interrupted",
            f"Stopped by {name} after {committed} pages; the next sync carries on from its checkpoint.",
            exc,
        )
        sync.pages = committed
        logger.warning(
            "sync %s store=%s vendor=%s interrupted by %s after %d pages (checkpoint saved)",
            sync.pk,
            self.store.catalog_id,
            self.store.pos_vendor,
            name,
            sync.pages,
        )

    def end(
        self,
        status: SyncStatus,
        error_type: str,
        message: str,
        exc: BaseException | None,
        *,
        resume_at: datetime | None = None,
    ) -> None:
        """Record how the sync ended short of finishing, if it is still ours; with `resume_at`, when it is to carry on
        (in its checkpoint: syncs.services.sync_resume_deferred)."""
        fields = ["status", "finished_at", "error_type", "error_message", *COUNT_FIELDS]
        try:
            self.settle()  # a page committed ahead still counts; one that failed is rolled back
            if resume_at is not None:
                # Only once the page in flight is settled: the checkpoint in hand is then the one committed.
                self.sync.checkpoint[RESUME_AFTER] = resume_at.isoformat()
                fields.append("checkpoint")
        except BaseException as pending_exc:
            if pending_exc is not exc:  # the page's own failure is what is being recorded, when it is this one
                text = (
                    database_error_message(pending_exc) if isinstance(pending_exc, DatabaseError) else str(pending_exc)
                )
                logger.warning(
                    "sync %s: the page in flight failed too: %s: %s", self.sync.pk, type(pending_exc).__name__, text
                )
        sync = self.sync
        sync.status = status
        sync.finished_at = timezone.now()
        sync.error_type = error_type[:100]
        sync.error_message = message[:4000]
        try:
            # The counts are known once their pages committed (pages, fetched and invalid are in each checkpoint).
            sync.save_if_running(fields)
        except Exception:
            logger.exception("sync %s: could not record how it ended (%s)", sync.pk, status)


def reached_cursor(sync: CustomerSync) -> datetime | None:
    """Where the next incremental sync may start (before the overlap): the frozen bound, unless a customer
    moved in the listing during the sync, in which case no further than that customer's previous time."""
    cursor = sync.cursor_bound
    hold = _parse_dt(sync.checkpoint.get("hold"))
    if hold is not None and cursor is not None and hold < cursor:
        cursor = hold if sync.cursor_from is None else max(hold, sync.cursor_from)
    return cursor


def report_failure(*, sync: CustomerSync, exc: BaseException | None) -> None:
    """Send a failed sync to Sentry with the store and vendor as context and no customer data."""
    with sentry_sdk.new_scope() as scope:
        scope.set_tag("store", sync.store.catalog_id)
        scope.set_tag("pos_vendor", sync.store.pos_vendor)
        scope.set_tag("sync_kind", sync.kind)
        scope.set_tag("sync_trigger", sync.trigger)
        scope.set_context(
            "customer_sync",
            {
                "id": sync.pk,
                "store_id": sync.store_id,
                "error_type": sync.error_type,
                "pages": sync.pages,
                "fetched": sync.fetched,
                "invalid": sync.invalid,
            },
        )
        if exc is not None and not isinstance(exc, SyncFailure):
            sentry_sdk.capture_exception(exc)
        else:
            sentry_sdk.capture_message(f"Customer sync failed: {sync.error_type}: {sync.error_message}", level="error")


def database_error_message(exc: DatabaseError) -> str:
    """A database error's message without PostgreSQL's DETAIL, which quotes the values of the row at fault."""
    return without_row_detail(str(exc)).strip() or type(exc).__name__


def _iso(value: datetime | None) -> str:
    return value.isoformat() if value else "-"


def _parse_dt(value: Any) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value)


__all__ = ["RateLimitDeferred", "SyncFailure", "SyncLost", "SyncRunner", "WaitBudgetExhausted", "process_sync"]

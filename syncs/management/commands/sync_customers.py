"""Run customer syncs now, in the foreground, with a progress bar."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from stores.models import Store
from syncs.interrupt import SyncInterrupted, stop_signals_interrupt
from syncs.models import CustomerSync, SyncKind, SyncStatus, SyncTrigger
from syncs.services import sync_create, sync_interrupt_pending


class Command(BaseCommand):
    help = (
        "Sync customers from the POS now, in this process: one store (--store CATALOG_ID) or every store with "
        "sync enabled (--all). Prints the counts; exits non-zero when a sync failed or could not start."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        target = parser.add_mutually_exclusive_group(required=True)
        target.add_argument("--store", metavar="CATALOG_ID", help="The store's catalog id.")
        target.add_argument("--all", action="store_true", help="Every store with sync enabled.")
        parser.add_argument(
            "--full", action="store_true", help="A full sync (also marks customers gone from the POS inactive)."
        )
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")

    def handle(self, *args: Any, store: str | None, all: bool, full: bool, no_progress: bool, **options: Any) -> None:
        if store is not None:
            found = Store.objects.filter(catalog_id=store).first()
            if found is None:
                raise CommandError(f"No store with catalog id {store!r}.")
            stores = [found]
        else:
            stores = list(Store.objects.filter(sync_enabled=True).order_by("catalog_id"))
            if not stores:
                self.stdout.write("No store has sync enabled.")
                return
        kind = SyncKind.FULL if full else SyncKind.INCREMENTAL
        problems = []
        # SIGTERM or Ctrl-C stops the sync in hand: it is recorded `interrupted` with its checkpoint (the next
        # sync carries on from there), no further store is started, and the command exits 128 + the signal.
        with stop_signals_interrupt():
            current: CustomerSync | None = None
            try:
                for target in stores:
                    current, created = sync_create(store=target, kind=kind, trigger=SyncTrigger.MANUAL)
                    if not created:
                        state = current.get_status_display().lower()
                        message = f"{target.catalog_id}: sync #{current.pk} is already {state}; not started"
                        current = None
                        self.stderr.write(message)
                        problems.append(message)
                        continue
                    sync = self.run_one(current, progress=not no_progress and options.get("verbosity", 1) > 0)
                    current = None
                    self.report(sync)
                    if sync.status != SyncStatus.FINISHED:
                        problems.append(f"{target.catalog_id}: {sync.error_type}")
            except SyncInterrupted as stop:
                if current is not None:
                    sync_interrupt_pending(sync=current, by=stop.signal_name)  # stopped before it began
                    current.refresh_from_db()
                    self.report(current)
                self.stderr.write(f"Stopped by {stop.signal_name}; the next sync carries on from the checkpoint.")
                raise SystemExit(stop.exit_code) from None
        if problems:
            raise CommandError(f"{len(problems)} of {len(stores)} sync(s) did not finish: " + "; ".join(problems))

    def run_one(self, sync: CustomerSync, *, progress: bool) -> CustomerSync:
        # A bar with the listing's size where the POS tells it (the position of a page carries "total"), else a
        # count with its rate. Log lines of the sync go above the bar, not onto the end of its line.
        bar = tqdm(
            desc=f"{sync.store.catalog_id} ({sync.kind})",
            unit=" customers",
            disable=not progress,
            file=self.stderr._out,
            dynamic_ncols=True,
        )
        seen = 0

        def advance(current: CustomerSync) -> None:
            nonlocal seen
            total = (current.checkpoint.get("position") or {}).get("total")
            if isinstance(total, int) and total >= current.fetched and bar.total != total:
                bar.total = total
            bar.update(current.fetched - seen)
            seen = current.fetched
            bar.set_postfix(pages=current.pages, created=current.created, updated=current.updated)

        try:
            with logging_redirect_tqdm(tqdm_class=tqdm):
                return sync.do_process(progress=advance)
        finally:
            bar.close()

    def report(self, sync: CustomerSync) -> None:
        duration = sync.duration.total_seconds() if sync.duration else 0.0
        counts = (
            f"fetched={sync.fetched} created={sync.created} updated={sync.updated} unchanged={sync.unchanged} "
            f"invalid={sync.invalid} deactivated={sync.deactivated} pages={sync.pages} in {duration:.1f} s"
        )
        resumed = f" (carried on from sync #{sync.resumed_from_id})" if sync.resumed_from_id else ""
        line = f"{sync.store.catalog_id}: {sync.kind} sync #{sync.pk}{resumed} {sync.status}: {counts}"
        if sync.status == SyncStatus.FINISHED:
            self.stdout.write(self.style.SUCCESS(line))
        else:
            self.stdout.write(self.style.ERROR(line))
            self.stdout.write(f"  {sync.error_type}: {sync.error_message}")

"""Erase a person from the mirror (customers.erasure): their data removed everywhere it is kept, the erasure recorded
without it, their POS id suppressed. Prints counts, never the person."""

from __future__ import annotations

import getpass
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from customers.erasure import POS_CAVEAT, CustomerNotHeld, customer_erase
from stores.models import Store


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name in this environment (a container without a passwd entry)
        return "unknown"


class Command(BaseCommand):
    help = (
        "Erase a customer from the mirror: the customer, the quarantine's records of them, idempotency answers "
        "naming them; records the erasure (no personal data) and suppresses the POS id so that syncs and live "
        "lookups do not bring them back. The POS keeps them."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--store", required=True, metavar="CATALOG_ID", help="The store's catalog id.")
        parser.add_argument("--customer-id", required=True, metavar="ID", help="The customer's POS id.")
        parser.add_argument(
            "--allow-absent",
            action="store_true",
            help="Suppress the POS id even though the mirror does not hold it (yet): scrubs what else names it.",
        )
        parser.add_argument(
            "--no-input", "--noinput", action="store_false", dest="interactive", help="Do not ask to confirm."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        store = Store.objects.filter(catalog_id=options["store"]).first()
        if store is None:
            raise CommandError(f"No store with catalog id {options['store']!r}.")
        if options["interactive"]:
            answer = input(f"Erase this customer of {store.catalog_id} from the mirror for good? Type 'yes': ")
            if answer.strip().lower() != "yes":
                raise CommandError("Erasure cancelled.")
        try:
            erasure = customer_erase(
                store=store,
                customer_id=options["customer_id"],
                via=f"command (OS user {_os_user()})",
                allow_absent=options["allow_absent"],
            )
        except CustomerNotHeld as exc:
            raise CommandError(f"{exc} Nothing was changed. (--allow-absent suppresses an id not held.)") from exc
        counts = erasure.counts
        self.stdout.write(
            self.style.SUCCESS(f"Erasure #{erasure.pk} of a customer of {store.catalog_id}: ")
            + f"removed {counts['customers']} customer(s) and {counts['quarantined_removed']} quarantined record(s); "
            f"scrubbed {counts['quarantined_scrubbed']} other quarantined payload(s) and "
            f"{counts['idempotency_answers_scrubbed']} idempotency answer(s); "
            f"removed {counts['admin_log_entries_removed']} admin log entr(ies); "
            f"kept {counts['access_events_unlinked']} access event(s) without the customer; "
            + ("suppression added." if counts["suppression_added"] else "already suppressed.")
        )
        self.stderr.write(self.style.WARNING(f"WARNING: {POS_CAVEAT}"))

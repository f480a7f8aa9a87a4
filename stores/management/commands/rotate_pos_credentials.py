"""Re-encrypt every store's POS credentials under the first key of POS_CREDENTIALS_KEYS."""

from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction

from stores.models import Store


class Command(BaseCommand):
    help = (
        "Re-encrypt stored POS credentials with the primary key. Rotate by prepending a new key to "
        "POS_CREDENTIALS_KEYS, running this, then removing the old key."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        count = 0
        with transaction.atomic():
            # Loading decrypts with whichever key matches; saving encrypts with the first key.
            for store in Store.objects.select_for_update().only("pk", "pos_credentials"):
                store.save(update_fields=["pos_credentials"])
                count += 1
        self.stdout.write(self.style.SUCCESS(f"Re-encrypted the credentials of {count} store(s)."))

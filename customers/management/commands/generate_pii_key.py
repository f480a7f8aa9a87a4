"""Print a new key entry for PII_ENCRYPTION_KEYS or PII_BLIND_INDEX_KEYS."""

from datetime import UTC, datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from customers.crypto import PiiKeyError, new_key_entry


class Command(BaseCommand):
    help = (
        "Print a new `<key id>:<key>` entry to put first in PII_ENCRYPTION_KEYS or PII_BLIND_INDEX_KEYS "
        "(then run rotate_pii_keys)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--id", dest="key_id", help="The key's id (default: k and today's date, e.g. k20261202).")

    def handle(self, *args: Any, **options: Any) -> None:
        key_id = options["key_id"] or datetime.now(UTC).strftime("k%Y%m%d")
        try:
            self.stdout.write(new_key_entry(key_id))
        except PiiKeyError as exc:
            raise CommandError(str(exc)) from exc

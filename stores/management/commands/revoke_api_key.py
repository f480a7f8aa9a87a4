"""Revoke an API key by its visible prefix."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from stores.models import ApiKey
from stores.services import api_key_revoke


class Command(BaseCommand):
    help = "Revoke an API key, given its prefix (the part after cf_, shown in the admin) or the whole key."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("key", help="The key's prefix, e.g. 3f9a1c2e, or the whole key.")

    def handle(self, *args: Any, key: str, **options: Any) -> None:
        value = key.strip()
        # A whole key is cf_<prefix>_<secret>; only its prefix is needed to find it.
        if value.startswith("cf_"):
            value = value[3:].split("_", 1)[0]
        api_key = ApiKey.objects.filter(prefix=value).first()
        if api_key is None:
            raise CommandError(f"No API key with prefix {value!r}.")
        if api_key.revoked_at is not None:
            self.stdout.write(f"API key {api_key.prefix}… '{api_key.name}' was already revoked.")
            return
        api_key_revoke(key=api_key)
        self.stdout.write(f"Revoked API key {api_key.prefix}… '{api_key.name}'.")

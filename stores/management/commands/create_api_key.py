"""Create an API key and print it once."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from stores.models import ApiScope, Store
from stores.services import api_key_create

# Without --scope: everything but unmasked personal data.
DEFAULT_SCOPES = [ApiScope.CUSTOMERS_READ, ApiScope.CUSTOMERS_WRITE, ApiScope.SYNCS]


class Command(BaseCommand):
    help = (
        "Create an API key for REST clients. Without --store it reaches every store; without --scope it may read "
        "and create customers and see and start syncs, with licence and medical card numbers and birthdays masked "
        "(add --scope pii to see them). The key is printed once."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="Who the key is for, e.g. 'online menu'.")
        parser.add_argument(
            "--store", action="append", dest="stores", metavar="CATALOG_ID", help="Limit the key to this store."
        )
        parser.add_argument(
            "--scope",
            action="append",
            dest="scopes",
            metavar="SCOPE",
            help=f"What the key may do (repeat, or comma-separate): {', '.join(ApiScope.values)}. "
            f"Default: {', '.join(DEFAULT_SCOPES)}.",
        )

    def handle(self, *args: Any, name: str, stores: list[str] | None, scopes: list[str] | None, **options: Any) -> None:
        if not name.strip():
            raise CommandError("NAME must not be blank.")
        wanted = [s.strip() for given in scopes for s in given.split(",") if s.strip()] if scopes else DEFAULT_SCOPES
        unknown = sorted(set(wanted) - set(ApiScope.values))
        if unknown:
            raise CommandError(f"Unknown scope(s): {', '.join(unknown)}. Scopes are: {', '.join(ApiScope.values)}.")
        scoped = None
        if stores:
            found = {s.catalog_id: s for s in Store.objects.filter(catalog_id__in=stores)}
            missing = [c for c in stores if c not in found]
            if missing:
                raise CommandError(f"Unknown store catalog id(s): {', '.join(missing)}")
            scoped = list(found.values())
        key, raw_key = api_key_create(name=name.strip(), stores=scoped, scopes=wanted)
        reach = "all stores" if scoped is None else ", ".join(sorted(s.catalog_id for s in scoped))
        self.stderr.write(
            f"Created API key {key.prefix}… '{key.name}' for {reach}, scopes {', '.join(key.scopes)}. "
            "It is shown only once:"
        )
        self.stdout.write(raw_key)

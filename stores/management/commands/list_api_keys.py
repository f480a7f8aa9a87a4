"""List API keys: prefix, name, reach, scopes, last use, state. Secrets are never shown (they are not stored)."""

from typing import Any

from django.core.management.base import BaseCommand

from stores.models import ApiKey


class Command(BaseCommand):
    help = "List API keys with their prefix, reach, scopes, last use and whether they are revoked."

    def handle(self, *args: Any, **options: Any) -> None:
        keys = ApiKey.objects.prefetch_related("stores").order_by("created_at")
        for key in keys:
            reach = "all stores" if key.all_stores else ", ".join(sorted(s.catalog_id for s in key.stores.all()))
            used = key.last_used_at.isoformat(timespec="seconds") if key.last_used_at else "never"
            state = f"revoked {key.revoked_at.isoformat(timespec='seconds')}" if key.revoked_at else "active"
            scopes = ", ".join(key.scopes) or "no scopes"
            self.stdout.write(
                f"{key.prefix}  {key.name}  [{reach or 'no stores'}]  scopes: {scopes}  last used {used}  {state}"
            )

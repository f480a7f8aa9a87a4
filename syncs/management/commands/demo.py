"""Demo data: a store per vendor pointing at the POS sandbox, a staff login and an API key."""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django_q.tasks import async_task

from pos_sandbox import SANDBOX_CREDENTIALS
from stores.models import SYNC_CLUSTER, SYNC_TASK, ApiKey, PosVendor, Store
from stores.services import api_key_create, api_key_revoke

DEMO_KEY_NAME = "demo"
DEMO_STORES = {
    PosVendor.LEAFLOGIX: "Oakland Greens (LeafLogix)",
    PosVendor.TREEZ: "Mission Buds (Treez)",
    PosVendor.FLOWHUB: "Denver Leaf (Flowhub)",
    PosVendor.COVASOFT: "Seattle Canopy (Cova)",
    PosVendor.BLAZE: "LA Bloom (Blaze)",
}


class Command(BaseCommand):
    help = (
        "Create or refresh the demo: one store per POS vendor pointing at the sandbox, a staff login and an "
        "API key (both printed; re-running issues new ones). Idempotent and non-interactive."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--sandbox-url", default="http://127.0.0.1:8765", help="Where `pos_sandbox` listens.")
        parser.add_argument("--web-url", default="http://127.0.0.1:8000", help="Where the web server listens.")
        parser.add_argument("--username", default="admin")
        parser.add_argument("--no-sync", action="store_true", help="Don't queue a first sync of each store.")

    def handle(self, *args: Any, sandbox_url: str, web_url: str, username: str, no_sync: bool, **options: Any) -> None:
        sandbox_url = sandbox_url.rstrip("/")
        if not sandbox_url.startswith(("http://", "https://")):
            raise CommandError("--sandbox-url must be an http(s) URL, e.g. http://127.0.0.1:8765")
        password = secrets.token_urlsafe(12)
        with transaction.atomic():
            stores = []
            for vendor, name in DEMO_STORES.items():
                credentials: dict[str, Any] = dict(SANDBOX_CREDENTIALS[vendor])
                store, _ = Store.objects.update_or_create(
                    catalog_id=f"demo-{vendor}",
                    defaults={
                        "name": name,
                        "pos_vendor": vendor,
                        "pos_base_url": f"{sandbox_url}/{vendor}",
                        "pos_credentials": credentials,
                        "sync_enabled": True,
                        "sync_interval_minutes": 5,
                    },
                )
                store.full_clean()
                store.schedule_customer_sync()
                stores.append(store)
            user, _ = get_user_model().objects.get_or_create(username=username)
            user.is_staff = user.is_superuser = True
            user.set_password(password)
            user.save()
            for old in ApiKey.objects.filter(name=DEMO_KEY_NAME, revoked_at__isnull=True):
                api_key_revoke(key=old)
            _, raw_key = api_key_create(name=DEMO_KEY_NAME, stores=None)
        if not no_sync:
            for store in stores:
                async_task(SYNC_TASK, store.pk, trigger="manual", cluster=SYNC_CLUSTER)
        self.stdout.write(self.style.SUCCESS(f"Demo ready: {len(stores)} stores on the sandbox at {sandbox_url}"))
        self.stdout.write(f"  staff login: {username} / {password}")
        self.stdout.write(f"  API key:     {raw_key}")
        api = f"{web_url.rstrip('/')}/api/v1/customers?catalog_id=demo-treez"
        self.stdout.write(f"  try: curl -H 'Authorization: Api-Key {raw_key}' '{api}'")

"""Demo data: a store per vendor pointing at the POS sandbox, a staff login and an API key."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, transaction
from django_q.tasks import async_task

from pos_sandbox import SANDBOX_CREDENTIALS
from stores.models import SYNC_CLUSTER, SYNC_TASK, ApiKey, PosVendor, Store, hash_api_key
from stores.services import api_key_create, api_key_revoke
from syncs.models import SyncTrigger

DEMO_KEY_NAME = "demo"
# The stores the README's examples name: (catalog id, name) per vendor.
DEMO_STORES: dict[str, tuple[str, str]] = {
    PosVendor.LEAFLOGIX: ("greenleaf-berkeley", "Green Leaf Berkeley"),
    PosVendor.TREEZ: ("greenleaf-oakland", "Green Leaf Oakland"),
    PosVendor.FLOWHUB: ("denver-leaf", "Denver Leaf"),
    PosVendor.COVASOFT: ("seattle-canopy", "Seattle Canopy"),
    PosVendor.BLAZE: ("la-bloom", "LA Bloom"),
}


def default_credentials_file() -> Path:
    """Where the demo keeps what it printed for its next run: beside a SQLite database, else in var/."""
    db = connection.settings_dict
    name = str(db["NAME"])
    if db["ENGINE"].endswith("sqlite3") and name and ":memory:" not in name and not name.startswith("file:"):
        return Path(name).with_suffix(".demo-credentials.json")
    which = hashlib.sha256(f"{db['ENGINE']}|{db.get('HOST')}|{db.get('PORT')}|{name}".encode()).hexdigest()
    return Path(settings.BASE_DIR) / "var" / f"demo-credentials-{which[:12]}.json"


def _read(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, str)} if isinstance(data, dict) else {}


def _write(path: Path, data: dict[str, str]) -> None:
    # The demo's login and key in a file only this user can read: printed anyway, but not for everyone.
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(data, out)


class Command(BaseCommand):
    help = (
        "Create or refresh the demo: one store per POS vendor pointing at the sandbox, a staff login and an "
        "API key, printed. Idempotent and non-interactive: a second run prints the same login and key (new "
        "ones only with --reset-credentials)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--sandbox-url", default="http://127.0.0.1:8765", help="Where `pos_sandbox` listens.")
        parser.add_argument("--web-url", default="http://127.0.0.1:8000", help="Where the web server listens.")
        parser.add_argument("--username", default="admin")
        parser.add_argument("--no-sync", action="store_true", help="Don't queue a first sync of each store.")
        parser.add_argument(
            "--reset-credentials",
            action="store_true",
            help="A new staff password and a new API key; the demo's earlier keys are revoked.",
        )
        parser.add_argument(
            "--credentials-file",
            type=Path,
            default=None,
            help="Where the printed login and key are kept for the next run (default: beside the SQLite file).",
        )

    def handle(
        self,
        *args: Any,
        sandbox_url: str,
        web_url: str,
        username: str,
        no_sync: bool,
        reset_credentials: bool,
        credentials_file: Path | None,
        **options: Any,
    ) -> None:
        sandbox_url = sandbox_url.rstrip("/")
        if not sandbox_url.startswith(("http://", "https://")):
            raise CommandError("--sandbox-url must be an http(s) URL, e.g. http://127.0.0.1:8765")
        path = credentials_file or default_credentials_file()
        saved = {} if reset_credentials else _read(path)
        with transaction.atomic():
            stores = [self.demo_store(vendor, sandbox_url) for vendor in DEMO_STORES]
            password, password_note = self.staff_login(username, saved, reset=reset_credentials)
            raw_key, key_note = self.api_key(saved, reset=reset_credentials)
        _write(path, {"username": username, "password": password or "", "api_key": raw_key})
        if not no_sync:
            for store in stores:
                async_task(SYNC_TASK, store.pk, trigger=SyncTrigger.DEMO, cluster=SYNC_CLUSTER)
        self.stdout.write(self.style.SUCCESS(f"Demo ready: {len(stores)} stores on the sandbox at {sandbox_url}"))
        self.stdout.write(
            "  stores:      " + ", ".join(f"{s.catalog_id} ({s.get_pos_vendor_display()})" for s in stores)
        )
        self.stdout.write(f"  staff login: {username} / {password or '(unchanged)'}{password_note}")
        self.stdout.write(f"  API key:     {raw_key}{key_note}")
        api = f"{web_url.rstrip('/')}/api/v1/customers?catalog_id={DEMO_STORES[PosVendor.TREEZ][0]}"
        self.stdout.write(f"  try:         export KEY={raw_key}")
        self.stdout.write(f"               curl -H \"Authorization: Api-Key $KEY\" '{api}'")

    @staticmethod
    def demo_store(vendor: str, sandbox_url: str) -> Store:
        catalog_id, name = DEMO_STORES[vendor]
        credentials: dict[str, Any] = dict(SANDBOX_CREDENTIALS[vendor])
        # Demos made before the stores had the README's names carried "demo-<vendor>": rename, don't duplicate.
        if not Store.objects.filter(catalog_id=catalog_id).exists():
            Store.objects.filter(catalog_id=f"demo-{vendor}").update(catalog_id=catalog_id)
        store, _ = Store.objects.update_or_create(
            catalog_id=catalog_id,
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
        return store

    @staticmethod
    def staff_login(username: str, saved: dict[str, str], *, reset: bool) -> tuple[str | None, str]:
        """The staff user's password to print (None: kept, but not known here) and a note about it."""
        user, created = get_user_model().objects.get_or_create(username=username)
        user.is_staff = user.is_superuser = True
        known = saved.get("password") if saved.get("username") == username else None
        if reset or created or not user.has_usable_password():
            password: str | None = secrets.token_urlsafe(12)
            user.set_password(password)
            note = "  (new)"
        elif known and user.check_password(known):
            password, note = known, "  (unchanged)"
        else:
            # Someone set this user's password after the demo did: keep theirs.
            password, note = None, " — a password set outside the demo; --reset-credentials makes a new one"
        user.save()
        return password, note

    @staticmethod
    def api_key(saved: dict[str, str], *, reset: bool) -> tuple[str, str]:
        """The demo's API key to print, and a note: the one printed before while it still works."""
        if reset:
            for old in ApiKey.objects.filter(name=DEMO_KEY_NAME, revoked_at__isnull=True):
                api_key_revoke(key=old)
        else:
            raw = saved.get("api_key", "")
            if raw and ApiKey.objects.usable().filter(name=DEMO_KEY_NAME, hashed_key=hash_api_key(raw)).exists():
                return raw, "  (unchanged)"
        _, raw_key = api_key_create(name=DEMO_KEY_NAME, stores=None)
        return raw_key, "  (new)"

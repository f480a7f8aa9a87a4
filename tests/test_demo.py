"""`manage.py demo`: idempotent demo stores for every vendor, a staff login and an API key, printed, and the
same login and key printed again by a second run (new ones only when asked)."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import CommandError, call_command
from django_q.models import Schedule

from stores.models import ApiKey, PosVendor, Store, hash_api_key
from syncs.management.commands import demo
from tests.factories import StoreFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def run_demo(tmp_path: Path) -> Any:
    def run(*args: str, **options: Any) -> dict[str, str]:
        out = io.StringIO()
        options.setdefault("no_sync", True)
        call_command("demo", *args, credentials_file=tmp_path / "demo.json", stdout=out, **options)
        text = out.getvalue()
        return {
            "output": text,
            "password": re.search(r"staff login: admin / (\S+)", text)[1],
            "key": re.search(r"API key:\s+(\S+)", text)[1],
        }

    return run


def key_works(raw: str) -> bool:
    return ApiKey.objects.usable().filter(hashed_key=hash_api_key(raw)).exists()


def test_demo_creates_a_store_per_vendor_a_login_and_a_key(run_demo):
    printed = run_demo(sandbox_url="http://127.0.0.1:9999/")
    stores = {s.pos_vendor: s for s in Store.objects.all()}
    assert set(stores) == set(PosVendor.values)
    assert stores["treez"].pos_base_url == "http://127.0.0.1:9999/treez"
    # The README's examples name these stores.
    assert stores["treez"].catalog_id == "greenleaf-oakland"
    assert stores["leaflogix"].catalog_id == "greenleaf-berkeley"
    for store in stores.values():
        store.full_clean()  # credentials complete for its vendor
    assert Schedule.objects.filter(name__startswith="customer-sync:").count() == 5

    user = authenticate(username="admin", password=printed["password"])
    assert user is not None
    assert user.is_staff
    key = ApiKey.objects.get(hashed_key=hash_api_key(printed["key"]))
    assert key.all_stores
    assert key.revoked_at is None
    assert f"export KEY={printed['key']}" in printed["output"]


def test_a_second_run_prints_the_same_login_and_key_and_both_keep_working(run_demo):
    first = run_demo()
    second = run_demo()
    assert Store.objects.count() == 5
    assert Schedule.objects.filter(name__startswith="customer-sync:").count() == 5
    assert (second["password"], second["key"]) == (first["password"], first["key"])
    assert "(unchanged)" in second["output"]
    assert key_works(first["key"])
    assert authenticate(username="admin", password=first["password"]) is not None
    assert ApiKey.objects.filter(name="demo").count() == 1


def test_reset_credentials_issues_new_ones_and_revokes_the_old_key(run_demo):
    first = run_demo()
    reset = run_demo(reset_credentials=True)
    assert reset["key"] != first["key"]
    assert reset["password"] != first["password"]
    assert not key_works(first["key"])
    assert key_works(reset["key"])
    assert authenticate(username="admin", password=first["password"]) is None
    assert authenticate(username="admin", password=reset["password"]) is not None
    # And the next plain run keeps the new ones.
    assert run_demo()["key"] == reset["key"]


def test_a_password_set_after_the_demo_is_kept(run_demo):
    run_demo()
    user = get_user_model().objects.get(username="admin")
    user.set_password("chosen-by-staff-42")
    user.save()
    again = run_demo()
    assert "set outside the demo" in again["output"]
    assert authenticate(username="admin", password="chosen-by-staff-42") is not None


def test_a_key_revoked_elsewhere_is_replaced_not_reprinted(run_demo):
    first = run_demo()
    ApiKey.objects.filter(hashed_key=hash_api_key(first["key"])).update(revoked_at="2026-01-01T00:00:00Z")
    second = run_demo()
    assert second["key"] != first["key"]
    assert key_works(second["key"])


def test_the_credentials_file_is_private(run_demo, tmp_path):
    run_demo()
    assert (tmp_path / "demo.json").stat().st_mode & 0o077 == 0


def test_stores_of_an_older_demo_are_renamed_not_duplicated(run_demo):
    StoreFactory(catalog_id="demo-treez", pos_vendor="treez")
    run_demo()
    assert Store.objects.count() == 5
    assert not Store.objects.filter(catalog_id="demo-treez").exists()


def test_the_first_syncs_are_queued_as_the_demo_s(run_demo, monkeypatch):
    queued: list[dict[str, Any]] = []
    monkeypatch.setattr(demo, "async_task", lambda *args, **kwargs: queued.append(kwargs))
    run_demo(no_sync=False)
    assert [q["trigger"] for q in queued] == ["demo"] * 5


def test_demo_rejects_a_bad_sandbox_url(run_demo):
    with pytest.raises(CommandError, match="sandbox-url"):
        run_demo(sandbox_url="localhost:8765")

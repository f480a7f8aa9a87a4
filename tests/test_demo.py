"""`manage.py demo`: idempotent demo stores for every vendor, a staff login and an API key, printed."""

import io
import re

import pytest
from django.contrib.auth import authenticate
from django.core.management import CommandError, call_command
from django_q.models import Schedule

from stores.models import ApiKey, PosVendor, Store, hash_api_key

pytestmark = pytest.mark.django_db


def run_demo(**options: str) -> str:
    out = io.StringIO()
    call_command("demo", "--no-sync", stdout=out, **options)
    return out.getvalue()


def test_demo_creates_a_store_per_vendor_a_login_and_a_key():
    output = run_demo(sandbox_url="http://127.0.0.1:9999/")
    stores = {s.pos_vendor: s for s in Store.objects.all()}
    assert set(stores) == set(PosVendor.values)
    assert stores["treez"].pos_base_url == "http://127.0.0.1:9999/treez"
    for store in stores.values():
        store.full_clean()  # credentials complete for its vendor
    assert Schedule.objects.filter(name__startswith="customer-sync:").count() == 5

    password = re.search(r"staff login: admin / (\S+)", output)[1]
    user = authenticate(username="admin", password=password)
    assert user is not None and user.is_staff
    raw_key = re.search(r"API key:\s+(\S+)", output)[1]
    key = ApiKey.objects.get(hashed_key=hash_api_key(raw_key))
    assert key.all_stores and key.revoked_at is None


def test_demo_is_idempotent_and_issues_a_fresh_key():
    first = re.search(r"API key:\s+(\S+)", run_demo())[1]
    second = re.search(r"API key:\s+(\S+)", run_demo())[1]
    assert Store.objects.count() == 5
    assert Schedule.objects.filter(name__startswith="customer-sync:").count() == 5
    assert ApiKey.objects.get(hashed_key=hash_api_key(first)).revoked_at is not None
    assert ApiKey.objects.get(hashed_key=hash_api_key(second)).revoked_at is None


def test_demo_rejects_a_bad_sandbox_url():
    with pytest.raises(CommandError, match="sandbox-url"):
        run_demo(sandbox_url="localhost:8765")

"""One smoke test per ModelAdmin: its pages open for staff."""

import pytest
from django.contrib import admin
from django.urls import reverse

from tests.factories import CustomerFactory, CustomerSyncFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def populated():
    customer = CustomerFactory()
    sync = CustomerSyncFactory(store=customer.store)
    sync.record_errors.create(
        store=sync.store, source="sync", customer_id="x1", reason="birthday: not a date", payload={"id": "x1"}
    )
    return customer


@pytest.mark.parametrize("model", list(admin.site._registry), ids=lambda m: m._meta.label)
def test_changelist_and_change_page_open(admin_client, populated, model):
    meta = model._meta
    response = admin_client.get(reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist"))
    assert response.status_code == 200
    obj = model._default_manager.first()
    if obj is not None:
        response = admin_client.get(reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[obj.pk]))
        assert response.status_code == 200


def test_store_form_never_renders_stored_secrets(admin_client, populated):
    store = populated.store
    response = admin_client.get(reverse("admin:stores_store_change", args=[store.pk]))
    html = response.content.decode()
    for secret in store.pos_credentials.values():
        assert secret not in html

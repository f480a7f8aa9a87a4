"""A store's time zone: validated, defaulted to the US west coast, editable in the admin, handed to its POS client."""

from datetime import UTC, date, datetime

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from stores.forms import StoreAdminForm
from stores.models import Store
from tests.factories import StoreFactory

pytestmark = pytest.mark.django_db

BLAZE = {"partner_key": "partner-key", "api_key": "dispensary-key"}


def test_a_new_store_is_on_the_us_west_coast() -> None:
    assert StoreFactory().time_zone == "America/Los_Angeles"


def test_an_unknown_zone_is_refused() -> None:
    store = StoreFactory.build(time_zone="Mars/Olympus_Mons")
    with pytest.raises(ValidationError) as caught:
        store.full_clean()
    assert "time_zone" in caught.value.message_dict


def test_the_pos_client_reads_blaze_birthdays_in_the_stores_zone() -> None:
    tokyo_midnight = int(datetime(1989, 12, 31, 15, 0, tzinfo=UTC).timestamp() * 1000)
    member = {"id": "a" * 24, "firstName": "A", "lastName": "B", "dob": tokyo_midnight}
    tokyo = StoreFactory(pos_vendor="blaze", pos_credentials=BLAZE, time_zone="Asia/Tokyo")
    west = StoreFactory(pos_vendor="blaze", pos_credentials=BLAZE)
    assert tokyo.pos_client().parse_record(member).birthday == date(1990, 1, 1)
    assert west.pos_client().parse_record(member).birthday == date(1989, 12, 31)


def form_data(**overrides: str) -> dict[str, str]:
    return {
        "name": "Mission Buds",
        "catalog_id": "mission-buds",
        "pos_vendor": "blaze",
        "pos_base_url": "",
        "sync_enabled": "on",
        "sync_interval_minutes": "30",
        "cred_partner_key": "partner-key",
        "cred_api_key": "dispensary-key",
        **overrides,
    }


def test_the_admin_form_sets_a_zone_and_keeps_it_when_left_out() -> None:
    form = StoreAdminForm(data=form_data(time_zone="America/Denver"))
    assert form.is_valid(), form.errors
    store = form.save()
    assert Store.objects.get(pk=store.pk).time_zone == "America/Denver"
    edit = StoreAdminForm(data=form_data(name="Mission Buds 2"), instance=store)
    assert edit.is_valid(), edit.errors
    assert edit.save().time_zone == "America/Denver"
    assert not StoreAdminForm(data=form_data(time_zone="Nowhere/Else")).is_valid()


def test_the_store_admin_page_offers_the_zone(admin_client) -> None:  # type: ignore[no-untyped-def]
    store = StoreFactory(time_zone="America/Chicago")
    page = admin_client.get(reverse("admin:stores_store_change", args=[store.pk])).content.decode()
    assert 'name="time_zone"' in page
    assert '<option value="America/Chicago" selected>' in page

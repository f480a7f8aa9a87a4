import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.management import call_command
from django.db import connection

from stores.models import Store
from tests.factories import StoreFactory

pytestmark = pytest.mark.django_db


def raw_column(store: Store) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pos_credentials FROM stores_store WHERE id = %s", [store.pk])
        return cursor.fetchone()[0]


def test_credentials_are_encrypted_in_the_database_column():
    store = StoreFactory(
        pos_vendor="blaze", pos_credentials={"partner_key": "partner-SECRET-1", "api_key": "dispensary-SECRET-2"}
    )
    raw = raw_column(store)
    assert "SECRET" not in raw
    assert "partner_key" not in raw
    assert Store.objects.get(pk=store.pk).pos_credentials == {
        "partner_key": "partner-SECRET-1",
        "api_key": "dispensary-SECRET-2",
    }


def test_key_rotation_keeps_credentials_readable(settings):
    store = StoreFactory(pos_vendor="leaflogix", pos_credentials={"api_key": "location-key"})
    old_token = raw_column(store)
    new_key = Fernet.generate_key().decode()
    settings.POS_CREDENTIALS_KEYS = [new_key, *settings.POS_CREDENTIALS_KEYS]
    call_command("rotate_pos_credentials", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert raw_column(store) != old_token
    # Only the new key is needed from now on.
    settings.POS_CREDENTIALS_KEYS = [new_key]
    assert Store.objects.get(pk=store.pk).pos_credentials == {"api_key": "location-key"}


def test_removing_the_key_is_a_clear_error(settings):
    store = StoreFactory(pos_vendor="leaflogix", pos_credentials={"api_key": "location-key"})
    settings.POS_CREDENTIALS_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(ImproperlyConfigured, match="cannot be decrypted"):
        Store.objects.get(pk=store.pk)


@pytest.mark.parametrize(
    ("vendor", "credentials", "missing"),
    [
        ("leaflogix", {}, "api_key"),
        ("flowhub", {"client_id": "c", "api_key": "k"}, "store_id"),
        ("covasoft", {"company_id": "1", "username": "u", "password": "p", "client_id": "c"}, "client_secret"),
        ("blaze", {"api_key": "k"}, "partner_key"),
        ("treez", {"client_id": "c", "api_key": "k"}, "dispensary"),
    ],
)
def test_store_validation_names_missing_credentials(vendor, credentials, missing):
    store = Store(name="S", catalog_id="s", pos_vendor=vendor, pos_credentials=credentials)
    with pytest.raises(ValidationError) as excinfo:
        store.full_clean()
    assert missing in str(excinfo.value.message_dict["pos_credentials"])


def test_treez_accepts_either_auth_generation():
    for credentials in (
        {"dispensary": "d", "client_id": "c", "api_key": "k"},
        {"dispensary": "d", "certificate_id": "cert", "organization_id": "org", "private_key": "PEM"},
    ):
        Store(name="S", catalog_id="s", pos_vendor="treez", pos_credentials=credentials).full_clean()

"""get_client: vendor lookup, credential checks naming what is missing, production URLs, capabilities."""

from __future__ import annotations

import pytest

from pos_integrations import (
    CLIENTS,
    VENDORS,
    Capabilities,
    CredentialsError,
    PosError,
    get_client,
)
from pos_integrations.vendors import validate_credentials

from .conftest import CREDENTIALS

PRODUCTION = {
    "leaflogix": "https://api.pos.dutchie.com",
    "treez": "https://api.treez.io/v2.0/dispensary",
    "flowhub": "https://api.flowhub.co",
    "covasoft": "https://api.covasoft.net/crm",
    "blaze": "https://api.partners.blaze.me",
}


def test_every_vendor_has_a_client() -> None:
    assert set(CLIENTS) == set(VENDORS)


@pytest.mark.parametrize("vendor", VENDORS)
def test_blank_base_url_means_production(vendor: str) -> None:
    client = get_client(vendor, base_url="", credentials=CREDENTIALS[vendor])
    assert client.base_url == PRODUCTION[vendor]
    assert get_client(vendor, base_url="http://127.0.0.1:8765/x/", credentials=CREDENTIALS[vendor]).base_url == (
        "http://127.0.0.1:8765/x"
    )


def test_missing_credentials_are_named() -> None:
    with pytest.raises(CredentialsError) as caught:
        get_client("flowhub", credentials={"client_id": "x", "api_key": " "})
    assert caught.value.missing == ["api_key", "store_id"]
    assert isinstance(caught.value, PosError)
    assert isinstance(caught.value, ValueError)
    assert "store_id" in str(caught.value)


def test_unknown_vendor() -> None:
    with pytest.raises(CredentialsError, match="Unknown POS vendor"):
        get_client("squareup", credentials={})
    with pytest.raises(CredentialsError):
        validate_credentials("squareup", {})


def test_capabilities() -> None:
    caps = {v: CLIENTS[v].capabilities for v in VENDORS}
    assert {v for v, c in caps.items() if c.can_create} == {"leaflogix", "treez"}
    assert all(c.incremental and c.can_search for c in caps.values())
    assert caps["flowhub"].search_fields == frozenset({"phone"})
    assert "drivers_license" not in caps["leaflogix"].search_fields  # Dutchie only has a licence hash
    assert not Capabilities(can_create=False, search_fields=frozenset(), incremental=False).can_search
    # What the API can tell a client before calling the POS: Treez's create schema requires these.
    assert caps["treez"].create_requires == frozenset({"first_name", "last_name", "birthday"})
    assert caps["leaflogix"].create_requires == frozenset()

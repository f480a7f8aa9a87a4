"""The OpenAPI schema and the offline docs (schemathesis checks the schema against the API: test_schemathesis)."""

from __future__ import annotations

import re

import pytest
from rest_framework.test import APIClient

from customers.filters import FILTERS

FUZZ_EXAMPLES = 40
AUTH_HEADERS = {"authorization", "x-api-key"}
OPERATIONS = {
    ("get", "/api/v1/customers"),
    ("post", "/api/v1/customers"),
    ("post", "/api/v1/customers/search"),
    ("get", "/api/v1/customers/{id}"),
    ("get", "/customers/search"),
    ("get", "/api/v1/syncs"),
    ("post", "/api/v1/syncs"),
}


@pytest.fixture
def openapi(db) -> dict:
    response = APIClient().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return response.json()


def test_schema_lists_every_endpoint_with_examples_and_the_error_shape(openapi):
    operations = {(m, p) for p, item in openapi["paths"].items() for m in item}
    assert operations == OPERATIONS
    for path, item in openapi["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            assert {"200", "201", "202"} & set(responses), (method, path)
            assert "401" in responses, (method, path)
            assert "429" in responses, (method, path)
            for status, response in responses.items():
                content = response["content"]["application/json"]
                assert content.get("examples"), f"{method} {path} {status} has no example"
            if method == "post":
                assert operation["requestBody"]["content"]["application/json"]["examples"], (method, path)
    assert "ErrorDetail" in openapi["components"]["schemas"]
    schemes = openapi["components"]["securitySchemes"]
    assert {schemes[name]["name"] for name in schemes} == {"Authorization", "X-API-Key"}


def test_the_list_documents_each_filter_it_takes_and_its_pages(openapi):
    parameters = {p["name"] for p in openapi["paths"]["/api/v1/customers"]["get"]["parameters"]}
    listed = {name for name, spec in FILTERS.items() if spec.query is not None}
    assert listed >= {"catalog_id", "phone", "email", "driver_license", "medical_card_number", "birthday", "search"}
    assert parameters == listed | {"cursor", "page_size"}


def test_the_identity_lookups_are_documented_as_never_empty_and_other_text_as_may_be(openapi):
    listed = {p["name"]: p["schema"] for p in openapi["paths"]["/api/v1/customers"]["get"]["parameters"]}
    for name in ("phone", "email", "driver_license", "medical_card_number"):
        assert listed[name]["minLength"] == 1, name
        assert not re.search(listed[name]["pattern"], " "), name
    for name in ("first_name", "last_name", "search", "catalog_id"):
        assert "minLength" not in listed[name], name
        assert re.search(listed[name]["pattern"], ""), name


def test_the_body_search_documents_the_lists_parameters_as_its_fields(openapi):
    listed = {p["name"]: p["schema"] for p in openapi["paths"]["/api/v1/customers"]["get"]["parameters"]}
    body = openapi["paths"]["/api/v1/customers/search"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["additionalProperties"] is False
    assert {
        name: {k: v for k, v in field.items() if k != "description"} for name, field in body["properties"].items()
    } == {name: {k: v for k, v in schema.items() if k != "description"} for name, schema in listed.items()}
    assert "x-body-from-query" not in openapi["paths"]["/api/v1/customers/search"]["post"]


def test_the_create_says_what_each_pos_requires(openapi):
    operation = openapi["paths"]["/api/v1/customers"]["post"]
    assert operation["x-required-by-pos"] == {"leaflogix": [], "treez": ["birthday", "first_name", "last_name"]}
    assert "Treez needs birthday" in operation["description"]
    customer = openapi["components"]["schemas"]["NewCustomerRequest"]
    assert "Required for Treez stores." in customer["properties"]["birthday"]["description"]
    assert "birthday" not in customer["required"]  # other POS take a customer without one
    examples = operation["responses"]["400"]["content"]["application/json"]["examples"]
    assert any(
        e["value"]["error"].get("fields") == {"customer.birthday": ["Treez requires this field."]}
        for e in examples.values()
    )


def test_docs_pages_and_their_assets_are_served_locally(db):
    client = APIClient()
    for page in ("/api/docs/", "/api/redoc/"):
        response = client.get(page)
        assert response.status_code == 200
        html = response.content.decode()
        assert "cdn.jsdelivr.net" not in html
        assert "unpkg.com" not in html
    html = client.get("/api/docs/").content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    asset = client.get("/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js")
    assert asset.status_code == 200
    assert b"".join(asset.streaming_content)[:100]

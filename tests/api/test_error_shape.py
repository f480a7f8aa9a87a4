"""Every endpoint (each path and method in the schema, /customers/search among them), sent each kind of bad
request, answers the one error shape with the right status: never an HTML page, never a 500."""

from __future__ import annotations

import json

import pytest
from rest_framework.test import APIClient

from api.parsers import MAX_DEPTH
from api.renderers import FastJSONRenderer
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

# (method, path as the schema names it)
OPERATIONS = [
    ("get", "/api/v1/customers"),
    ("post", "/api/v1/customers"),
    ("post", "/api/v1/customers/search"),
    ("get", "/api/v1/customers/{id}"),
    ("get", "/customers/search"),
    ("get", "/api/v1/syncs"),
    ("post", "/api/v1/syncs"),
]
BODY_OPERATIONS = [(m, p) for m, p in OPERATIONS if m == "post"]
QUERY_OPERATIONS = [(m, p) for m, p in OPERATIONS if m == "get" and "{id}" not in p]
IDS = [f"{m.upper()} {p}" for m, p in OPERATIONS]
TEN_MB = 10 * 1024 * 1024


@pytest.fixture
def client(key, store) -> APIClient:
    client = APIClient(raise_request_exception=False)
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key.raw}")
    return client


@pytest.fixture
def customer(store):
    return CustomerFactory(store=store, customer_id="5027")


def url(path: str, customer) -> str:
    return path.replace("{id}", str(customer.pk))


def valid_query(path: str) -> str:
    return "customer_id=5027" if path == "/customers/search" else ""


def assert_error(response, status: int, code: str | None = None) -> dict:
    """The answer is the error shape, as JSON, with this status (and code)."""
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = json.loads(response.content)
    error = body["error"]
    assert set(error) <= {"code", "message", "fields", "retry_after"}
    assert isinstance(error["code"], str)
    assert isinstance(error["message"], str)
    assert error["message"]
    if code is not None:
        assert error["code"] == code, body
    return body


def test_the_walk_covers_every_operation_in_the_schema(db):
    schema = APIClient().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    assert {(m, p) for p, item in schema["paths"].items() for m in item} == set(OPERATIONS)


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=IDS)
def test_a_ten_megabyte_body_is_413(client, customer, method, path):
    body = b"[" + b"0," * (TEN_MB // 2) + b"0]"
    response = client.generic(method.upper(), url(path, customer), body, content_type="application/json")
    assert_error(response, 413, "body_too_large")


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=IDS)
def test_a_trailing_slash_is_a_json_404_that_says_so(client, customer, method, path):
    response = client.generic(method.upper(), url(path, customer) + "/")
    body = assert_error(response, 404, "not_found")
    assert "no trailing slash" in body["error"]["message"]


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=IDS)
def test_no_key_or_two_different_keys_are_401(client, key, customer, method, path):
    response = APIClient().generic(method.upper(), url(path, customer))
    assert_error(response, 401, "not_authenticated")
    response = client.generic(method.upper(), url(path, customer), HTTP_X_API_KEY=key.raw + "x")
    assert_error(response, 401, "invalid_api_key")


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=IDS)
def test_a_method_the_endpoint_lacks_is_405_with_allow(client, customer, method, path):
    response = client.generic("PATCH", url(path, customer))
    assert_error(response, 405, "method_not_allowed")
    assert method.upper() in response["Allow"]


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=IDS)
def test_an_accept_header_the_api_cannot_answer_is_406(client, customer, method, path):
    response = client.generic(method.upper(), url(path, customer), HTTP_ACCEPT="text/html")
    assert_error(response, 406, "not_acceptable")


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=IDS)
def test_too_many_query_parameters_are_400(client, customer, method, path):
    query = "&".join(f"p{i}=1" for i in range(1001))
    response = client.generic(method.upper(), f"{url(path, customer)}?{query}")
    assert_error(response, 400, "invalid_parameters")


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=IDS)
def test_a_bad_host_header_is_400_in_the_error_shape(client, customer, method, path):
    response = client.generic(method.upper(), url(path, customer), HTTP_HOST="evil.example")
    assert_error(response, 400, "bad_request")


@pytest.mark.parametrize(("method", "path"), QUERY_OPERATIONS, ids=[f"GET {p}" for _, p in QUERY_OPERATIONS])
@pytest.mark.parametrize("bad", ["colour=red", "catalog_id=%00", "catalog_id=" + "x" * 101])
def test_unknown_nul_or_overlong_query_parameters_are_400(client, method, path, bad):
    query = "&".join(q for q in (valid_query(path), bad) if q)
    body = assert_error(client.get(f"{path}?{query}"), 400, "invalid_parameters")
    assert bad.split("=")[0] in body["error"]["fields"]


@pytest.mark.parametrize(("method", "path"), BODY_OPERATIONS, ids=[f"POST {p}" for _, p in BODY_OPERATIONS])
@pytest.mark.parametrize(
    "body",
    [
        b"[" * 1000 + b"]" * 1000,  # the stdlib decoder's RecursionError
        b'{"catalog_id": ' + b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1) + b"}",
        b'{"kind": "\\ud800"}',  # a lone surrogate
        b'{"catalog_id": "x", "customer": {"first_name": "A", "last_name": "B", "gender": "\\udc00"}}',
        b'{"catalog_id": "x"',
        b"\xff\xfe",
        b'{"catalog_id": NaN}',
    ],
    ids=["1000-deep", "too-deep-value", "lone-surrogate", "lone-surrogate-gender", "truncated", "not-utf8", "nan"],
)
def test_malformed_json_bodies_are_400(client, method, path, body):
    assert_error(client.post(path, body, content_type="application/json"), 400, "malformed_body")


@pytest.mark.parametrize(("method", "path"), BODY_OPERATIONS, ids=[f"POST {p}" for _, p in BODY_OPERATIONS])
def test_a_body_that_is_not_json_is_415(client, method, path):
    assert_error(client.post(path, "catalog_id=x", content_type="text/plain"), 415, "unsupported_media_type")
    assert_error(client.post(path, {"catalog_id": "x"}, format="multipart"), 415, "unsupported_media_type")


@pytest.mark.parametrize(("method", "path"), BODY_OPERATIONS, ids=[f"POST {p}" for _, p in BODY_OPERATIONS])
def test_every_unknown_field_is_reported_at_once(client, store, method, path):
    body = {"catalog_id": store.catalog_id, "colour": "red", "size": 1}
    if path == "/api/v1/customers":
        body["customer"] = {"first_name": "Ann", "last_name": "Lee", "shoe": 9, "birthday": "tomorrow"}
    fields = assert_error(client.post(path, body, format="json"), 400, "invalid_request")["error"]["fields"]
    expected = {"colour", "size"} | ({"customer.shoe", "customer.birthday"} if "customer" in body else set())
    assert set(fields) == expected


def test_unknown_and_malformed_query_parameters_are_reported_at_once(client):
    response = client.get("/api/v1/customers?colour=red&page_size=0&cursor=nope&birthday=")
    fields = assert_error(response, 400, "invalid_parameters")["error"]["fields"]
    assert set(fields) == {"colour", "page_size", "cursor", "birthday"}


@pytest.mark.parametrize("param", ["birthday", "modified_after", "active"])
def test_an_empty_typed_parameter_is_400_not_ignored(client, param):
    fields = assert_error(client.get(f"/api/v1/customers?{param}="), 400, "invalid_parameters")["error"]["fields"]
    assert list(fields) == [param]


@pytest.mark.parametrize("customer_id", ["", "%20%20", "%00", "5027%00"])
def test_older_search_with_a_blank_or_nul_customer_id_is_400(client, customer_id):
    assert_error(client.get(f"/customers/search?customer_id={customer_id}"), 400, "invalid_parameters")


@pytest.mark.parametrize(
    "path", ["/api/v1/nothing", "/api", "/api/", "/api/v2/customers", "/customers", "/customers/", "/customers/x"]
)
def test_unknown_paths_are_json_404(client, path):
    assert_error(client.get(path), 404, "not_found")


@pytest.mark.parametrize("path", ["/api/schema", "/api/docs", "/api/redoc"])
def test_the_docs_pages_redirect_to_their_slash(client, path):
    response = client.get(path)
    assert response.status_code == 301
    assert response["Location"] == f"{path}/"


def test_a_body_over_the_limit_read_by_a_view_is_413_too(client, settings):
    # Without the middleware's early check, Django's own RequestDataTooBig (raised when DRF reads the body).
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if not m.endswith("ApiBodyLimitMiddleware")]
    response = client.post(
        "/api/v1/syncs", b'{"catalog_id": "' + b"x" * TEN_MB + b'"}', content_type="application/json"
    )
    assert_error(response, 413, "body_too_large")


@pytest.mark.parametrize("value", ["\ud800", "a\udfffb", {"\ud800": ["\udc00"]}])
def test_the_renderer_encodes_lone_surrogates(value):
    # A message may quote what a request held; whatever it is, the answer is valid UTF-8 JSON.
    for media_type in ("application/json", "application/json; indent=2"):
        out = FastJSONRenderer().render({"error": {"code": "x", "message": value}}, media_type)
        assert "\ud800" not in json.loads(out.decode("utf-8"))["error"]["message"]

"""The POS sandbox over real HTTP: each vendor's auth, paging, filters, lookups, create, control API and faults."""

from __future__ import annotations

import base64
import json
import time
import tracemalloc
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from pos_sandbox import SANDBOX_CREDENTIALS, Dataset, FaultSpecError, SandboxServer
from pos_sandbox.data import digits_of
from pos_sandbox.faults import parse_spec
from pos_sandbox.render import LOCAL_OFFSET_MS
from pos_sandbox.vendors import DIALECTS
from pos_sandbox.vendors.treez import treez_v3_credentials, treez_v3_private_key

N = 240
SEED = 7
C = SANDBOX_CREDENTIALS
DISPENSARY = C["treez"]["dispensary"]
COMPANY = C["covasoft"]["company_id"]
ID_KEY = {"leaflogix": "customerId", "treez": "customer_id", "flowhub": "id", "covasoft": "Id", "blaze": "id"}
MODIFIED_KEY = {
    "leaflogix": "lastModifiedDateUTC",
    "treez": "last_update",
    "flowhub": "updatedAt",
    "covasoft": "LastModifiedDateUtc",
    "blaze": "modified",
}


# --- speaking each dialect ----------------------------------------------------------------------------------
def auth_headers(sb: SandboxServer, http: requests.Session, vendor: str) -> dict[str, str]:
    cred = C[vendor]
    if vendor == "leaflogix":
        return {"Authorization": "Basic " + base64.b64encode(f"{cred['api_key']}:".encode()).decode()}
    if vendor == "treez":
        r = http.post(
            f"{sb.url}/treez/{DISPENSARY}/config/api/gettokens",
            data={"client_id": cred["client_id"], "apikey": cred["api_key"]},
        )
        assert r.status_code == 200, r.text
        return {"Authorization": f"Bearer {r.json()['access_token']}", "client_id": cred["client_id"]}
    if vendor == "flowhub":
        return {"clientId": cred["client_id"], "key": cred["api_key"]}
    if vendor == "covasoft":
        form = {
            "grant_type": "password",
            **{k: cred[k] for k in ("username", "password", "client_id", "client_secret")},
        }
        r = http.post(f"{sb.url}/covasoft/oauth2/token", data=form)
        assert r.status_code == 200, r.text
        assert r.json()["expires_in"] == 43200
        return {"Authorization": f"Bearer {r.json()['access_token']}"}
    return {"partner_key": cred["partner_key"], "Authorization": cred["api_key"]}


def list_page(
    sb: SandboxServer, http: requests.Session, vendor: str, headers: dict[str, str], page: int, since: Any = None
) -> requests.Response:
    """GET 0-based page `page` of the vendor's listing, optionally filtered in the vendor's own format."""
    params: dict[str, Any]
    if vendor == "leaflogix":
        params = {"PageNumber": page + 1, "PageSize": 100}
        if since:
            params["fromLastModifiedDateUTC"] = since
        return http.get(f"{sb.url}/leaflogix/customer/customers-paginated", params=params, headers=headers)
    if vendor == "treez":
        after = quote(since or "1970-01-01T00:00:00.000+00:00", safe="")
        url = f"{sb.url}/treez/{DISPENSARY}/customer/lastUpdated/after/{after}/page/{page + 1}/pagesize/50"
        return http.get(url, headers=headers)
    if vendor == "flowhub":
        params = {"page": page + 1, "page_size": 100}
        if since:
            params["updated_after"] = since
        return http.get(f"{sb.url}/flowhub/v1/customers/", params=params, headers=headers)
    if vendor == "covasoft":
        params = {"$skip": page * 100, "$top": 100}
        if since:
            params["$filter"] = f"LastModifiedDateUtc ge datetime'{since}'"
        return http.get(f"{sb.url}/covasoft/v1/Companies({COMPANY})/CustomerFull", params=params, headers=headers)
    params = {"skip": page * 100, "limit": 100}
    if since:
        params.update(startDate=since[0], endDate=since[1])
    return http.get(f"{sb.url}/blaze/api/v1/partner/members", params=params, headers=headers)


def records_of(vendor: str, body: Any) -> list[dict[str, Any]]:
    return {"treez": lambda b: b["data"], "flowhub": lambda b: b["data"], "blaze": lambda b: b["values"]}.get(
        vendor, lambda b: b
    )(body)


def list_all(sb: SandboxServer, http: requests.Session, vendor: str, since: Any = None) -> list[dict[str, Any]]:
    headers = auth_headers(sb, http, vendor)
    out: list[dict[str, Any]] = []
    for page in range(10_000):
        r = list_page(sb, http, vendor, headers, page, since)
        assert r.status_code == 200, r.text
        got = records_of(vendor, r.json())
        out += got
        if len(got) < (50 if vendor == "treez" else 100):
            return out
    raise AssertionError("the listing never ended")


def ids(records: list[dict[str, Any]], vendor: str) -> list[str]:
    return [str(r[ID_KEY[vendor]]) for r in records]


def modified_ms(vendor: str, record: dict[str, Any]) -> int:
    value = record[MODIFIED_KEY[vendor]]
    if vendor == "blaze":
        return int(value)
    moment = datetime.fromisoformat(value)
    return int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp() * 1000)


VENDORS = list(C)


# --- auth ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("vendor", "path", "headers", "status", "body"),
    [
        (
            "leaflogix",
            "/leaflogix/customer/customers-paginated",
            {},
            401,
            {"message": "Authorization has been denied for this request."},
        ),
        (
            "leaflogix",
            "/leaflogix/whoami",
            {"Authorization": "Basic " + base64.b64encode(b"wrong:").decode()},
            401,
            {"message": "Authorization has been denied for this request."},
        ),
        ("treez", f"/treez/{DISPENSARY}/customer/1001", {}, 403, {"message": "Forbidden"}),
        (
            "treez",
            f"/treez/{DISPENSARY}/customer/1001",
            {"Authorization": "Bearer nope", "client_id": "x"},
            401,
            {"resultCode": "FAIL", "resultReason": "Full authentication is required to access this resource"},
        ),
        ("treez", "/treez/otherdispensary/customer/1001", {}, 403, {"message": "Forbidden"}),
        ("flowhub", "/flowhub/v1/customers/", {}, 401, None),
        ("flowhub", "/flowhub/v1/customers/", {"clientId": "x", "key": "y"}, 403, None),
        (
            "covasoft",
            f"/covasoft/v1/Companies({COMPANY})/CustomerFull",
            {"Authorization": "Bearer nope"},
            401,
            {"Message": "Authorization has been denied for this request."},
        ),
        ("blaze", "/blaze/api/v1/partner/members", {"partner_key": "x", "Authorization": "y"}, 401, None),
    ],
)
def test_wrong_credentials_get_the_vendors_error(
    sb: SandboxServer,
    http: requests.Session,
    vendor: str,
    path: str,
    headers: dict[str, str],
    status: int,
    body: dict[str, Any] | None,
) -> None:
    r = http.get(sb.url + path, headers=headers)
    assert r.status_code == status
    if body is not None:
        assert {k: r.json().get(k) for k in body} == body
    if vendor == "flowhub":
        assert "message" in r.json()
    if vendor == "blaze":
        assert r.json()["errorType"].endswith("BlazeAuthException")


def test_token_endpoints_refuse_wrong_secrets(sb: SandboxServer, http: requests.Session) -> None:
    r = http.post(f"{sb.url}/treez/{DISPENSARY}/config/api/gettokens", data={"client_id": "x", "apikey": "y"})
    assert r.status_code == 401
    assert r.json()["resultCode"] == "FAIL"
    cova = {"grant_type": "password", **{k: C["covasoft"][k] for k in ("username", "client_id", "client_secret")}}
    r = http.post(f"{sb.url}/covasoft/oauth2/token", data={**cova, "password": "wrong"})
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_grant"
    r = http.post(f"{sb.url}/covasoft/oauth2/token", data={**cova, "password": "x", "client_secret": "wrong"})
    assert r.status_code == 401
    assert r.json()["error"] == "invalid_client"


def test_cova_refuses_another_company(sb: SandboxServer, http: requests.Session) -> None:
    headers = auth_headers(sb, http, "covasoft")
    r = http.get(f"{sb.url}/covasoft/v1/Companies(999)/CustomerFull", headers=headers)
    assert r.status_code == 403
    assert "Message" in r.json()


def _jwt(url: str, *, iat: int | None = None, lifetime: int = 30_000, jti: str | None = None) -> str:
    creds = treez_v3_credentials()
    issued = iat if iat is not None else int(time.time() * 1000)
    claims = {
        "aud": url,
        "iss": creds["certificate_id"],
        "oid": creds["organization_id"],
        "iat": issued,
        "exp": issued + lifetime,
        "jti": jti or str(uuid.uuid4()),
    }
    return jwt.encode(claims, treez_v3_private_key(), algorithm="RS256")


def test_treez_v3_jwt(sb: SandboxServer, http: requests.Session) -> None:
    url = f"{sb.url}/treez/{DISPENSARY}/customer/1001"
    token = _jwt(url)
    assert http.get(url, headers={"Authorization": token}).status_code == 200
    assert http.get(url, headers={"Authorization": token}).status_code == 401  # jti replayed
    assert http.get(url, headers={"Authorization": _jwt(url + "0")}).status_code == 401  # another endpoint
    assert http.get(url, headers={"Authorization": _jwt(url, lifetime=60_000)}).status_code == 400
    assert http.get(url, headers={"Authorization": _jwt(url, iat=int(time.time() * 1000) - 120_000)}).status_code == 401
    header, claims, signature = _jwt(url).split(".")
    forged = f"{header}.{claims}.{'A' * len(signature)}"
    answer = http.get(url, headers={"Authorization": forged})
    assert (answer.status_code, answer.json()["resultDetail"]) == (401, "signature does not verify")
    # The two-part form (claims.signature, no JOSE header) we sent before is not a JWT.
    claims_part = _jwt(url).split(".")[1]
    old = treez_v3_private_key().sign(claims_part.encode(), padding.PKCS1v15(), hashes.SHA256())
    refused = http.get(url, headers={"Authorization": f"{claims_part}.{base64.urlsafe_b64encode(old).decode()}"})
    assert (refused.status_code, refused.json()["resultDetail"]) == (
        401,
        "token is not a JWT signed RS256 (header.claims.signature, base64url)",
    )


# --- listing ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("vendor", VENDORS)
def test_full_listing_pages_to_the_end_and_matches_the_ground_truth(
    sb: SandboxServer, http: requests.Session, vendor: str
) -> None:
    served = list_all(sb, http, vendor)
    truth = list(sb.vendor_records(vendor))
    assert len(served) == N
    assert served == truth
    assert len(set(ids(served, vendor))) == N


@pytest.mark.parametrize("vendor", ["leaflogix", "treez", "covasoft"])
def test_modified_since_filter(sb: SandboxServer, http: requests.Session, vendor: str) -> None:
    truth = list(sb.vendor_records(vendor))
    pivot = modified_ms(vendor, truth[N // 2]) // 1000 * 1000
    moment = datetime.fromtimestamp(pivot / 1000, UTC)
    since = {
        "leaflogix": moment.strftime("%Y-%m-%dT%H:%M:%S"),
        "treez": (moment + timedelta(milliseconds=LOCAL_OFFSET_MS)).strftime("%Y-%m-%dT%H:%M:%S.000-07:00"),
        "covasoft": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }[vendor]
    served = list_all(sb, http, vendor, since)
    expected = [r for r in truth if modified_ms(vendor, r) >= pivot]
    assert served == expected
    assert 0 < len(served) < N


def test_leaflogix_accepts_the_month_day_year_format(sb: SandboxServer, http: requests.Session) -> None:
    assert len(list_all(sb, http, "leaflogix", "01/01/2100 00:00:00")) == 0
    assert len(list_all(sb, http, "leaflogix", "01/01/2000 00:00:00")) == N


def test_flowhub_filters_on_store_local_dates_only(sb: SandboxServer, http: requests.Session) -> None:
    truth = list(sb.vendor_records("flowhub"))
    day = datetime.fromtimestamp(modified_ms("flowhub", truth[N // 2]) / 1000, UTC).date()
    served = list_all(sb, http, "flowhub", day.isoformat())
    local_midnight = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000) - LOCAL_OFFSET_MS
    assert served == [r for r in truth if modified_ms("flowhub", r) >= local_midnight]
    headers = auth_headers(sb, http, "flowhub")
    r = http.get(f"{sb.url}/flowhub/v1/customers/", params={"updated_after": "2024-01-01T00:00:00Z"}, headers=headers)
    assert r.status_code == 404
    assert "yyyy-mm-dd" in r.json()["message"]


def test_blaze_windows_of_at_most_seven_days(sb: SandboxServer, http: requests.Session) -> None:
    truth = list(sb.vendor_records("blaze"))
    start = truth[N // 2]["modified"]
    end = start + 7 * 86_400_000
    served = list_all(sb, http, "blaze", (start, end))
    assert served == [r for r in truth if start <= r["modified"] <= end]
    headers = auth_headers(sb, http, "blaze")
    too_long = list_page(sb, http, "blaze", headers, 0, (start, end + 1))
    assert too_long.status_code == 400
    assert too_long.json()["field"] == "endDate"
    backwards = list_page(sb, http, "blaze", headers, 0, (end, start))
    assert backwards.status_code == 400


def test_blaze_lists_newest_modified_first_without_dates(sb: SandboxServer, http: requests.Session) -> None:
    """As a real listing came: a change moves a member to the front, and the dated windows keep their order."""
    served = list_all(sb, http, "blaze")
    assert [r["modified"] for r in served] == sorted((r["modified"] for r in served), reverse=True)
    [changed] = sb.modify("blaze", ids=[served[N // 2]["id"]])
    [created] = sb.create("blaze", 1)
    again = list_all(sb, http, "blaze")
    assert [r["id"] for r in again[:2]] == [created, changed]
    assert [r["id"] for r in again[2:]] == [r["id"] for r in served if r["id"] != changed]
    start, end = served[-1]["modified"], served[-1]["modified"] + 7 * 86_400_000
    window = list_all(sb, http, "blaze", (start, end))
    assert [r["modified"] for r in window] == sorted(r["modified"] for r in window)


def test_blaze_members_look_like_a_real_listing(sb: SandboxServer) -> None:
    """The facts of a real `/partner/members` listing: `sex` 0, phones in `cpn`, birthdays in three fields."""
    members = list(Dataset(customers=2000, seed=SEED, vendors=["blaze"]).iter_people("blaze"))
    records = [json.loads(DIALECTS["blaze"].record(sb.dataset.generator("blaze"), p, False)) for p in members]
    by_id = {r["id"]: (r, p) for r, p in zip(records, members, strict=True)}
    sexes = [r["sex"] for r in records]
    assert sexes.count(0) > 0.8 * len(records)
    assert set(sexes) == {0, "MALE", "FEMALE"}  # no integer but 0: no source says what others mean
    with_phone = [(r, p) for r, p in by_id.values() if p.phone]
    assert all(r["cpn"] == "+1" + digits_of(p.phone) for r, p in with_phone)
    only_cpn = [r for r, _ in with_phone if r["primaryPhone"] == ""]
    assert 0.02 * len(with_phone) < len(only_cpn) < 0.15 * len(with_phone)
    dated = [(r, p) for r, p in by_id.values() if p.birthday]
    assert all(r.get("localDob", p.birthday) == p.birthday for r, p in dated)
    assert any(set(r) & {"dob", "birthdate", "localDob"} == {"localDob"} for r, _ in dated)
    assert any(set(r) & {"dob", "birthdate", "localDob"} == {"dob"} for r, _ in dated)
    assert any(r.get("birthdate") == "" for r, _ in dated)
    zone = ZoneInfo("America/Los_Angeles")
    for r, p in dated:
        if "dob" in r:  # local midnight in Los Angeles: 07:00 or 08:00 UTC
            moment = datetime.fromtimestamp(r["dob"] / 1000, UTC)
            assert (moment.hour, moment.minute) in ((7, 0), (8, 0))
            assert moment.astimezone(zone).date().isoformat() == p.birthday
    assert not any(set(r) & {"dob", "birthdate", "localDob"} for r, p in by_id.values() if not p.birthday)
    types = [i["type"] for r in records for i in r["identifications"]]
    assert 0.1 * len(types) < types.count(None) < 0.4 * len(types)
    assert set(types) == {None, "Drivers"}


def test_flowhub_filters_on_creation_dates_too(sb: SandboxServer, http: requests.Session) -> None:
    """`created_after` / `created_before` (a published client sends the first) are store-local dates too."""
    truth = list(sb.vendor_records("flowhub"))
    created = sorted(datetime.fromisoformat(r["createdAt"]) for r in truth)
    day = created[N // 2].date()
    local_midnight = datetime(day.year, day.month, day.day, tzinfo=UTC) - timedelta(milliseconds=LOCAL_OFFSET_MS)
    headers = auth_headers(sb, http, "flowhub")
    for name, keep in (
        ("created_after", lambda r: datetime.fromisoformat(r["createdAt"]) >= local_midnight),
        ("created_before", lambda r: datetime.fromisoformat(r["createdAt"]) < local_midnight),
    ):
        r = http.get(
            f"{sb.url}/flowhub/v1/customers/", params={name: day.isoformat(), "page_size": 500}, headers=headers
        )
        assert r.status_code == 200, r.text
        expected = [t for t in truth if keep(t)]
        assert r.json()["data"] == expected
        assert r.json()["total"] == len(expected)
        assert 0 < len(expected) < N
    both = http.get(
        f"{sb.url}/flowhub/v1/customers/",
        params={"created_after": day.isoformat(), "updated_after": day.isoformat(), "page": 2, "page_size": 10},
        headers=headers,
    )
    assert [r["id"] for r in both.json()["data"]] == [
        t["id"] for t in truth if datetime.fromisoformat(t["createdAt"]) >= local_midnight
    ][10:20]


def test_cova_takes_the_documented_filter_literal(sb: SandboxServer, http: requests.Session) -> None:
    """The documentation writes `datetime'2019-01-01T00:00:00z'`, with a lower-case z."""
    headers = auth_headers(sb, http, "covasoft")
    url = f"{sb.url}/covasoft/v1/Companies({COMPANY})/CustomerFull"
    truth = list(sb.vendor_records("covasoft"))
    pivot = truth[N // 2]["LastModifiedDateUtc"][:19]
    answers = [
        http.get(url, params={"$filter": f"LastModifiedDateUtc ge datetime'{pivot}{zone}'"}, headers=headers)
        for zone in ("z", "Z")
    ]
    assert [a.status_code for a in answers] == [200, 200]
    assert answers[0].json() == answers[1].json() == [r for r in truth if r["LastModifiedDateUtc"][:19] >= pivot]


@pytest.mark.parametrize(
    ("vendor", "path"),
    [
        ("leaflogix", "/leaflogix/customer/customers-paginated?PageSize=101"),
        ("treez", f"/treez/{DISPENSARY}/customer/lastUpdated/after/2020-01-01/page/1/pagesize/51"),
        ("flowhub", "/flowhub/v1/customers/?page_size=501"),
        ("covasoft", f"/covasoft/v1/Companies({COMPANY})/CustomerFull?$top=1001"),
        ("blaze", "/blaze/api/v1/partner/members?limit=1001"),
        ("leaflogix", "/leaflogix/customer/customers-paginated?fromLastModifiedDateUTC=yesterday"),
        ("covasoft", f"/covasoft/v1/Companies({COMPANY})/CustomerFull?$filter=Name eq 'x'"),
    ],
)
def test_bad_paging_gets_the_vendors_400(sb: SandboxServer, http: requests.Session, vendor: str, path: str) -> None:
    r = http.get(sb.url + path, headers=auth_headers(sb, http, vendor))
    assert r.status_code == 400
    assert r.json()  # the vendor's error body, not a stack trace


def test_paging_is_stable_while_customers_change(sb: SandboxServer, http: requests.Session) -> None:
    headers = auth_headers(sb, http, "leaflogix")
    first = list_page(sb, http, "leaflogix", headers, 0).json()
    sb.modify("leaflogix", ids=[str(first[0]["customerId"]), str(first[50]["customerId"])])
    sb.create("leaflogix", 3)
    rest = list_all(sb, http, "leaflogix")[100:]
    assert len(first) + len(rest) == N + 3
    assert len(set(ids(first, "leaflogix")) | set(ids(rest, "leaflogix"))) == N + 3


# --- lookups ---------------------------------------------------------------------------------------------
def _with(vendor: str, predicate: Any, sb: SandboxServer) -> dict[str, Any]:
    return next(r for r in sb.vendor_records(vendor) if predicate(r))


def test_leaflogix_lookups(sb: SandboxServer, http: requests.Session) -> None:
    headers = auth_headers(sb, http, "leaflogix")
    rec = _with("leaflogix", lambda r: r["phone"] and r["emailAddress"] and "@" in r["emailAddress"], sb)
    got = http.get(f"{sb.url}/leaflogix/customer/customers", params={"customerID": rec["customerId"]}, headers=headers)
    assert got.json() == [rec]
    for body in (
        {"phone": digits_of(rec["phone"])},
        {"emailAddress": rec["emailAddress"].swapcase()},
        {"firstName": rec["firstName"], "lastName": rec["lastName"]},
    ):
        r = http.post(f"{sb.url}/leaflogix/customer/customerLookup", json=body, headers=headers)
        assert r.status_code == 200, body
        assert r.json()["customerId"] == rec["customerId"], body
    miss = http.post(f"{sb.url}/leaflogix/customer/customerLookup", json={"phone": "0000000000"}, headers=headers)
    assert (miss.status_code, miss.json()) == (200, None)  # a body a client can read, not a bare 204
    assert http.get(f"{sb.url}/leaflogix/customer/customers", params={"customerID": "1"}, headers=headers).json() == []


def test_treez_lookups(sb: SandboxServer, http: requests.Session) -> None:
    headers = auth_headers(sb, http, "treez")
    rec = _with("treez", lambda r: r["phone"] and r["drivers_license"] and r["email"], sb)
    base = f"{sb.url}/treez/{DISPENSARY}/customer"
    namesake = next(
        r
        for r in sb.vendor_records("treez")
        if (r["first_name"], r["last_name"]) == (rec["first_name"], rec["last_name"])
    )
    for path, expected in (
        (rec["customer_id"], rec),
        (f"phone/{rec['phone']}", rec),
        (f"email/{rec['email']}", rec),
        (f"driverlicense/{rec['drivers_license']}", rec),
        (f"firstname/{rec['first_name']}/lastname/{rec['last_name']}", namesake),  # one customer, the oldest
    ):
        body = http.get(f"{base}/{path}", headers=headers).json()
        assert body == {"resultCode": "SUCCESS", "resultReason": None, "resultDetail": None, "data": expected}, path
    # A miss is a 404 in the spec's words for each path.
    nothing = {"resultCode": "FAIL", "resultReason": "NOT_FOUND", "resultDetail": "Nothing was found"}
    doesnt_exist = {"resultCode": "FAIL", "resultReason": "CUSTOMER_DOESNT_EXIST", "resultDetail": None}
    for path, answer in (
        ("999999", doesnt_exist),
        ("driverlicense/Q0000000", doesnt_exist),
        ("phone/5550000000", nothing),
        ("email/nobody@example.org", nothing),
        ("firstname/Nobody/lastname/Atall", nothing),
    ):
        missing = http.get(f"{base}/{path}", headers=headers)
        assert (missing.status_code, missing.json()) == (404, answer), path


def test_flowhub_cova_and_blaze_lookups(sb: SandboxServer, http: requests.Session) -> None:
    fh = auth_headers(sb, http, "flowhub")
    rec = _with("flowhub", lambda r: r["phone"], sb)
    assert http.get(f"{sb.url}/flowhub/v1/customers/{rec['id']}", headers=fh).json() == rec
    found = http.get(
        f"{sb.url}/flowhub/v1/customers/findByPhoneNumber", params={"phone_number": rec["phone"]}, headers=fh
    ).json()
    assert rec in found
    assert http.get(f"{sb.url}/flowhub/v1/customers/{uuid.uuid4()}", headers=fh).status_code == 404

    cova = auth_headers(sb, http, "covasoft")
    rec = _with("covasoft", lambda r: len(r["ContactMethods"]) == 2, sb)
    base = f"{sb.url}/covasoft/v1/Companies({COMPANY})"
    assert http.get(f"{base}/CustomerFull({rec['Id']})", headers=cova).json() == rec
    missing = http.get(f"{base}/CustomerFull({uuid.uuid4()})", headers=cova)
    assert missing.status_code == 404
    assert missing.json() == {"Message": "Resource cannot be found"}
    email = rec["ContactMethods"][0]["Value"]
    for field, value in (("Contact", email), ("Phone", rec["ContactMethods"][1]["Value"])):
        body = {"Criteria": [{"Criteria": value, "Field": field, "Operation": "Equals"}]}
        assert rec in http.post(f"{base}/Search", json=body, headers=cova).json()["Results"]

    bz = auth_headers(sb, http, "blaze")
    rec = _with("blaze", lambda r: r["email"] and r["primaryPhone"] and r["identifications"] and r.get("dob"), sb)
    base = f"{sb.url}/blaze/api/v1/partner/members"
    assert http.get(f"{base}/{rec['id']}", headers=bz).json() == rec
    assert http.get(f"{base}/email/{rec['email']}", headers=bz).json() == rec
    licence = rec["identifications"][0]["licenseNumber"]
    assert rec in http.get(f"{base}/search", params={"licenceNumber": licence}, headers=bz).json()["values"]
    phone = digits_of(rec["primaryPhone"])
    assert rec in http.get(f"{base}/search/phone", params={"phoneNumber": phone}, headers=bz).json()["values"]
    assert rec in http.get(f"{base}/search/dob", params={"dob": rec["dob"]}, headers=bz).json()["values"]
    missing = http.get(f"{base}/{'0' * 24}", headers=bz)
    assert missing.status_code == 404
    assert missing.json()["message"] == "Member not found"


# --- create ----------------------------------------------------------------------------------------------
def test_leaflogix_create_then_lookup_finds_it(sb: SandboxServer, http: requests.Session) -> None:
    headers = auth_headers(sb, http, "leaflogix")
    body = {
        "firstName": "Zoë",
        "lastName": "Quill",
        "emailAddress": "zoe.quill@example.net",
        "phone": "4155550199",
        "dateOfBirth": "1991-04-05",
        "customerType": "Medical",
        "mmjidNumber": "MMJ-1",
    }
    r = http.post(f"{sb.url}/leaflogix/customer/customer", json=body, headers=headers)
    assert r.status_code == 200
    created = r.json()
    assert created["firstName"] == "Zoë"
    assert created["customerType"] == "Medical"
    assert created["dateOfBirth"] == "1991-04-05T00:00:00"
    found = http.post(f"{sb.url}/leaflogix/customer/customerLookup", json={"phone": "4155550199"}, headers=headers)
    assert found.json()["customerId"] == created["customerId"]
    assert sb.record("leaflogix", str(created["customerId"])) == created
    assert sb.state()["vendors"]["leaflogix"]["created"] == 1
    bad = http.post(f"{sb.url}/leaflogix/customer/customer", json={"lastName": "Only"}, headers=headers)
    assert bad.status_code == 400
    assert "firstName" in bad.json()["message"]


def test_treez_create_and_duplicate(sb: SandboxServer, http: requests.Session) -> None:
    headers = auth_headers(sb, http, "treez")
    url = f"{sb.url}/treez/{DISPENSARY}/customer/detailcustomer"
    body = {
        "first_name": "Ada",
        "last_name": "Byron",
        "email": "ada@example.org",
        "phone": "(510) 555-0123",
        "birthday": "1985-12-10",
        "drivers_license": "Z1234567",
        "patient_type": "ADULT",
    }
    r = http.post(url, json=body, headers=headers)
    assert r.status_code == 200
    assert r.json()["resultCode"] == "SUCCESS"
    new = r.json()["data"]
    assert new["first_name"] == "ADA"
    assert new["phone"] == "5105550123"
    again = http.post(url, json={**body, "email": "ADA@example.org", "phone": None}, headers=headers)
    assert again.status_code == 400
    assert again.json()["resultCode"] == "FAIL"
    assert "duplicate" in again.json()["resultReason"].lower()
    assert again.json()["data"]["customer_id"] == new["customer_id"]
    existing = _with("treez", lambda r: r["drivers_license"], sb)
    other = {"first_name": "X", "last_name": "Y", "birthday": "1990-01-01", "patient_type": "ADULT"}
    dup = http.post(url, json={**other, "drivers_license": existing["drivers_license"]}, headers=headers)
    assert dup.json()["data"]["customer_id"] == existing["customer_id"]
    assert sb.state()["vendors"]["treez"]["created"] == 1


@pytest.mark.parametrize(
    ("change", "reason", "detail"),
    [
        ({"first_name": ""}, "CUSTOMER_FIRST_NAME_BLANK", "Field first_name cannot be blank"),  # the spec's example
        ({"last_name": None}, "CUSTOMER_LAST_NAME_BLANK", "Field last_name cannot be blank"),
        ({"birthday": None}, "CUSTOMER_BIRTHDAY_BLANK", "Field birthday cannot be blank"),
        ({"patient_type": None}, "CUSTOMER_PATIENT_TYPE_BLANK", "Field patient_type cannot be blank"),
        (
            {"birthday": "12/10/1985"},
            "INVALID_DATE_FORMAT",
            "12/10/1985 date does not match the expected format i.e. yyyy-MM-dd",
        ),
        (
            {"patient_type": "RECREATIONAL"},
            "INVALID_PATIENT_TYPE",
            "patient_type must be one of ADULT, MEDICAL, MEDICAL_MMID",
        ),
        (
            {"patient_type": "MEDICAL_MMID", "permit_expiration": "2027-01-31"},
            "CUSTOMER_STATE_MEDICAL_ID_BLANK",
            "Field state_medical_id cannot be blank for MEDICAL_MMID",
        ),
        (
            {"patient_type": "MEDICAL_MMID", "state_medical_id": "MED-1"},
            "CUSTOMER_PERMIT_EXPIRATION_BLANK",
            "Field permit_expiration cannot be blank for MEDICAL_MMID",
        ),
        ({"gender": "X"}, "INVALID_GENDER", "gender must be one of M, F, U, N"),
        (
            {"addresses": [{"type": "ADDRESS_OF_RECORD", "street1": "1 Main St", "state": "CA", "zipcode": "94601"}]},
            "CUSTOMER_ADDRESS_CITY_BLANK",
            "Field addresses[0].city cannot be blank",
        ),
    ],
)
def test_treez_create_refuses_what_the_write_schema_forbids(
    sb: SandboxServer, http: requests.Session, change: dict[str, Any], reason: str, detail: str
) -> None:
    url = f"{sb.url}/treez/{DISPENSARY}/customer/detailcustomer"
    body = {"first_name": "Ada", "last_name": "Byron", "birthday": "1985-12-10", "patient_type": "ADULT", **change}
    r = http.post(url, json=body, headers=auth_headers(sb, http, "treez"))
    assert (r.status_code, r.json()) == (400, {"resultCode": "FAIL", "resultReason": reason, "resultDetail": detail})
    assert sb.state()["vendors"]["treez"]["created"] == 0


def test_treez_create_takes_what_the_write_schema_has(sb: SandboxServer, http: requests.Session) -> None:
    headers = auth_headers(sb, http, "treez")
    body = {
        "first_name": "Ada",
        "last_name": "Byron",
        "birthday": "1985-12-10",
        "patient_type": "MEDICAL_MMID",
        "state_medical_id": "MED-7",
        "permit_expiration": "2027-01-31",
        "gender": "N",
        "drivers_license": "Z7654321",
        "drivers_license_expiration": "2030-01-01",  # not in the write schema: ignored
        "addresses": [
            {"type": "ADDRESS_OF_RECORD", "street1": "1 Main St", "city": "Oakland", "state": "CA", "zipcode": "94601"}
        ],
    }
    r = http.post(f"{sb.url}/treez/{DISPENSARY}/customer/detailcustomer", json=body, headers=headers)
    assert r.status_code == 200, r.text
    new = r.json()["data"]
    assert {k: new[k] for k in ("patient_type", "state_medical_id", "permit_expiration", "gender")} == {
        "patient_type": "MEDICAL_MMID",
        "state_medical_id": "MED-7",
        "permit_expiration": "2027-01-31 00:00:00.000",
        "gender": "N",
    }
    assert new["drivers_license_expiration"] == ""
    assert (new["addresses"][0]["street1"], new["addresses"][0]["city"]) == ("1 MAIN ST", "OAKLAND")


def test_treez_update_is_a_patch(sb: SandboxServer, http: requests.Session) -> None:
    headers = auth_headers(sb, http, "treez")
    rec = _with("treez", lambda r: r["patient_type"] == "ADULT", sb)
    url = f"{sb.url}/treez/{DISPENSARY}/customer/update/{rec['customer_id']}"
    assert http.post(url, json={"notes": "x"}, headers=headers).status_code == 405
    r = http.patch(url, json={"notes": "Prefers mornings"}, headers=headers)  # the required fields may be left out
    assert r.status_code == 200, r.text
    assert r.json()["data"] == {**rec, "notes": "Prefers mornings", "last_update": r.json()["data"]["last_update"]}
    assert sb.record("treez", rec["customer_id"]) == r.json()["data"]
    blank = http.patch(url, json={"birthday": ""}, headers=headers)
    assert blank.json()["resultReason"] == "CUSTOMER_BIRTHDAY_BLANK"
    mmid = http.patch(url, json={"patient_type": "MEDICAL_MMID"}, headers=headers)
    assert mmid.json()["resultReason"] == "CUSTOMER_STATE_MEDICAL_ID_BLANK"
    not_json = http.patch(url, data=b"{", headers={**headers, "Content-Type": "application/json"})
    assert not_json.status_code == 400
    assert {k: not_json.json()[k] for k in ("resultCode", "message")} == {
        "resultCode": "FAIL",
        "message": "Input is not valid JSON.",
    }
    gone = http.patch(f"{sb.url}/treez/{DISPENSARY}/customer/update/999999", json={"notes": "x"}, headers=headers)
    assert (gone.status_code, gone.json()["resultReason"]) == (404, "CUSTOMER_DOESNT_EXIST")


def test_treez_token_answer_says_when_it_expires(sb: SandboxServer, http: requests.Session) -> None:
    cred = C["treez"]
    before = datetime.now(UTC)
    r = http.post(
        f"{sb.url}/treez/{DISPENSARY}/config/api/gettokens",
        data={"client_id": cred["client_id"], "apikey": cred["api_key"]},
    )
    body = r.json()
    assert (body["resultCode"], body["expires_in"]) == ("SUCCESS", "7200")
    # Store-local with a colon-less offset, as a published client parses it.
    expires = datetime.strptime(body["expires_at"], "%Y-%m-%dT%H:%M:%S.%f%z")
    assert body["expires_at"].endswith("-0700")
    assert timedelta(hours=2) - timedelta(seconds=5) <= expires - before <= timedelta(hours=2, seconds=5)


@pytest.mark.parametrize(
    ("after", "size", "reason", "detail"),
    [
        (
            "2020-01-01",
            "50",
            "INVALID_DATE_FORMAT",
            "2020-01-01 date does not match the expected format i.e. yyyy-MM-dd'T'HH:mm:ss.SSSXXX",
        ),
        (
            "2020-01-01T00:00:00.000-07:00",
            "100",
            "RESPONSE_LIMIT_EXCEEDS",
            "The response limit requested is 100 which exceeds the maximum response limit. Do not exceed 50",
        ),
    ],
)
def test_treez_listing_refusals_are_the_specs(
    sb: SandboxServer, http: requests.Session, after: str, size: str, reason: str, detail: str
) -> None:
    path = f"/treez/{DISPENSARY}/customer/lastUpdated/after/{quote(after, safe='')}/page/1/pagesize/{size}"
    r = http.get(sb.url + path, headers=auth_headers(sb, http, "treez"))
    assert r.status_code == 400
    assert r.json() == {"resultCode": "FAIL", "resultReason": reason, "resultDetail": detail, "data": None}


@pytest.mark.parametrize(
    ("vendor", "path"),
    [
        ("flowhub", "/flowhub/v1/customer?store_id=sandbox-store-1"),
        ("covasoft", f"/covasoft/v1/Companies({COMPANY})/CustomerFull"),
        ("blaze", "/blaze/api/v1/partner/members"),
    ],
)
def test_create_is_not_offered_by_the_other_vendors(
    sb: SandboxServer, http: requests.Session, vendor: str, path: str
) -> None:
    r = http.post(sb.url + path, json={"name": "A B"}, headers=auth_headers(sb, http, vendor))
    assert r.status_code == 405


# --- routing ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("vendor", "method", "path", "allow"),
    [
        ("leaflogix", "GET", "/leaflogix/customer/customerLookup", "POST"),
        ("treez", "PUT", f"/treez/{DISPENSARY}/customer/1001", "GET"),
        ("treez", "GET", f"/treez/{DISPENSARY}/config/api/gettokens", "POST"),  # no credentials needed
        ("flowhub", "DELETE", "/flowhub/v1/customers/", "GET"),
        ("covasoft", "GET", "/covasoft/oauth2/token", "POST"),  # no credentials needed
        ("covasoft", "DELETE", f"/covasoft/v1/Companies({COMPANY})/CustomerFull", "GET"),
        ("blaze", "PUT", "/blaze/api/v1/partner/members/5f1e0b7c2a9d4e0012ab34cd", "GET"),
    ],
)
def test_a_known_path_with_another_method_is_a_405_naming_the_methods(
    sb: SandboxServer, http: requests.Session, vendor: str, method: str, path: str, allow: str
) -> None:
    headers = {} if path.endswith("token") or path.endswith("gettokens") else auth_headers(sb, http, vendor)
    r = http.request(method, sb.url + path, headers=headers)
    assert r.status_code == 405
    assert r.headers["Allow"] == allow
    assert isinstance(r.json(), dict)  # the vendor's error body


@pytest.mark.parametrize(
    ("vendor", "path", "body"),
    [
        (
            "leaflogix",
            "/leaflogix/customer/nothing",
            {"message": "No HTTP resource was found that matches the request URI '/leaflogix/customer/nothing'."},
        ),
        ("treez", f"/treez/{DISPENSARY}/customer/email/a/b", {"resultCode": "FAIL", "resultReason": "NOT_FOUND"}),
        ("flowhub", "/flowhub/v2/customers/", {"message": "Not found"}),
        ("covasoft", f"/covasoft/v1/Companies({COMPANY})/Nothing", {"Message": "Resource cannot be found"}),
        ("blaze", "/blaze/api/v1/partner/members/a/b/c", {"message": "Resource not found"}),
    ],
)
def test_an_unknown_path_is_the_vendors_404(
    sb: SandboxServer, http: requests.Session, vendor: str, path: str, body: dict[str, str]
) -> None:
    r = http.get(sb.url + path, headers=auth_headers(sb, http, vendor))
    assert r.status_code == 404
    assert {k: r.json().get(k) for k in body} == body


def test_double_and_trailing_slashes_are_ignored(sb: SandboxServer, http: requests.Session) -> None:
    headers = auth_headers(sb, http, "treez")
    plain = http.get(f"{sb.url}/treez/{DISPENSARY}/customer/1001", headers=headers)
    assert plain.status_code == 200
    assert http.get(f"{sb.url}/treez/{DISPENSARY}//customer/1001/", headers=headers).json() == plain.json()
    fh = auth_headers(sb, http, "flowhub")
    assert (
        http.get(f"{sb.url}/flowhub/v1/customers", headers=fh).json()
        == http.get(f"{sb.url}/flowhub/v1/customers/", headers=fh).json()
    )


# --- control API -----------------------------------------------------------------------------------------
def test_control_api_modify_create_delete_drive_incremental_listing(sb: SandboxServer, http: requests.Session) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    changed = http.post(f"{sb.url}/_control/modify", json={"vendor": "treez", "count": 5}).json()["modify"]["treez"]
    created = http.post(f"{sb.url}/_control/create", json={"vendor": "treez", "count": 2}).json()["created"]["treez"]
    deleted = http.post(f"{sb.url}/_control/delete", json={"vendor": "treez", "ids": changed[:1]}).json()["delete"]
    assert deleted == {"treez": changed[:1]}
    since = before.astimezone(UTC).isoformat(timespec="milliseconds")
    recent = list_all(sb, http, "treez", since)
    assert sorted(ids(recent, "treez")) == sorted(changed[1:] + created)
    state = http.get(f"{sb.url}/_control/state").json()["vendors"]["treez"]
    assert (state["customers"], state["modified"], state["created"], state["deleted"]) == (N + 1, 4, 2, 1)
    headers = auth_headers(sb, http, "treez")
    assert http.get(f"{sb.url}/treez/{DISPENSARY}/customer/{changed[0]}", headers=headers).status_code == 404
    assert len(list_all(sb, http, "treez")) == N + 1
    assert http.post(f"{sb.url}/_control/reset").status_code == 200
    assert len(list(sb.vendor_records("treez"))) == N


def test_control_api_for_every_vendor_and_bad_calls(sb: SandboxServer, http: requests.Session) -> None:
    out = http.post(f"{sb.url}/_control/modify", json={"count": 2}).json()["modify"]
    assert {v: len(x) for v, x in out.items()} == dict.fromkeys(VENDORS, 2)
    assert http.post(f"{sb.url}/_control/modify", json={"vendor": "square", "count": 1}).status_code == 400
    assert http.post(f"{sb.url}/_control/delete", json={"vendor": "treez", "ids": ["nope"]}).status_code == 400
    assert http.post(f"{sb.url}/_control/create", json={"vendor": "treez", "count": -1}).status_code == 400
    assert http.post(f"{sb.url}/_control/faults", json={"vendor": "treez", "rate_5xx": 2}).status_code == 400
    assert http.post(f"{sb.url}/_control/faults", json={"spec": "5xx=lots"}).status_code == 400
    assert http.get(f"{sb.url}/_control/nothing").status_code == 404
    on = http.post(f"{sb.url}/_control/faults", json={"vendor": "treez", "rate_5xx": "10%", "slow": "1ms"}).json()
    assert on["effective"]["treez"]["rate_5xx"] == 0.1
    assert on["effective"]["flowhub"]["rate_5xx"] == 0
    swapped = http.post(f"{sb.url}/_control/faults", json={"vendor": "treez", "clear": True, "drop": 0.5}).json()
    assert swapped["layers"] == {"treez": {"drop": 0.5}}
    assert http.delete(f"{sb.url}/_control/faults").json()["layers"] == {}
    page = http.get(f"{sb.url}/_control/records/blaze", params={"limit": 3}).json()
    assert page["total"] == N
    assert page["records"] == list(sb.vendor_records("blaze"))[:3]


# --- faults ----------------------------------------------------------------------------------------------
def test_fault_429_with_retry_after(sb: SandboxServer, http: requests.Session) -> None:
    http.post(f"{sb.url}/_control/faults", json={"vendor": "leaflogix", "rate_429": 1, "retry_after": 3})
    r = list_page(sb, http, "leaflogix", auth_headers(sb, http, "leaflogix"), 0)
    assert r.status_code == 429
    assert r.headers["Retry-After"] == "3"
    assert list_page(sb, http, "flowhub", auth_headers(sb, http, "flowhub"), 0).status_code == 200  # one vendor only


@pytest.mark.parametrize("vendor", VENDORS)
def test_fault_5xx_in_the_vendors_shape(sb: SandboxServer, http: requests.Session, vendor: str) -> None:
    headers = auth_headers(sb, http, vendor)
    sb.set_faults(f"{vendor}:5xx=1")
    r = list_page(sb, http, vendor, headers, 0)
    assert r.status_code in (500, 502, 503)
    assert isinstance(r.json(), dict)


def test_fault_5xx_rate_is_seeded(sb: SandboxServer, http: requests.Session) -> None:
    def run() -> list[int]:
        sb.reset()
        headers = auth_headers(sb, http, "flowhub")
        sb.set_faults("flowhub:5xx=0.3")
        return [list_page(sb, http, "flowhub", headers, 0).status_code for _ in range(40)]

    first = run()
    assert first == run()
    assert 3 <= sum(s != 200 for s in first) <= 25


def test_fault_slow(sb: SandboxServer, http: requests.Session) -> None:
    headers = auth_headers(sb, http, "blaze")
    sb.set_faults("blaze:slow=300ms")
    start = time.monotonic()
    assert list_page(sb, http, "blaze", headers, 0).status_code == 200
    assert time.monotonic() - start >= 0.3


def test_fault_drop(sb: SandboxServer, http: requests.Session) -> None:
    headers = auth_headers(sb, http, "flowhub")
    sb.set_faults("flowhub:drop=1")
    with pytest.raises(requests.ConnectionError):
        list_page(sb, http, "flowhub", headers, 0)
    sb.clear_faults()
    assert list_page(sb, http, "flowhub", headers, 0).status_code == 200


def test_fault_malformed_page_only_hits_listings(sb: SandboxServer, http: requests.Session) -> None:
    headers = auth_headers(sb, http, "covasoft")
    sb.set_faults("covasoft:malformed_page=1")
    r = list_page(sb, http, "covasoft", headers, 0)
    assert r.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(r.content)
    rec = next(sb.vendor_records("covasoft"))
    assert http.get(f"{sb.url}/covasoft/v1/Companies({COMPANY})/CustomerFull({rec['Id']})", headers=headers).json()


@pytest.mark.parametrize("vendor", VENDORS)
def test_fault_malformed_records_are_stable_and_listed(sb: SandboxServer, http: requests.Session, vendor: str) -> None:
    sb.set_faults(vendor=vendor, malformed_record="1/10")
    served = list_all(sb, http, vendor)
    bad = {str(r[ID_KEY[vendor]]) for r in served if r[MODIFIED_KEY[vendor]] == "not-a-date"}
    assert bad == sb.malformed_ids(vendor)
    assert 5 <= len(bad) <= 50
    assert served == list_all(sb, http, vendor)  # the same records every time
    good = [r for r in served if str(r[ID_KEY[vendor]]) not in bad]
    assert good == [r for r in sb.vendor_records(vendor) if str(r[ID_KEY[vendor]]) not in bad]


@pytest.mark.parametrize("vendor", ["treez", "covasoft"])
def test_fault_expiring_tokens(sb: SandboxServer, http: requests.Session, vendor: str) -> None:
    sb.set_faults(f"{vendor}:token_ttl=2")
    headers = auth_headers(sb, http, vendor)
    assert [list_page(sb, http, vendor, headers, 0).status_code for _ in range(3)] == [200, 200, 401]
    assert list_page(sb, http, vendor, auth_headers(sb, http, vendor), 0).status_code == 200  # a new token works
    sb.set_faults(f"{vendor}:token_ttl=200ms")
    headers = auth_headers(sb, http, vendor)
    time.sleep(0.3)
    assert list_page(sb, http, vendor, headers, 0).status_code == 401


def test_fault_rate_limits_as_each_vendor_answers(sb: SandboxServer, http: requests.Session) -> None:
    sb.set_faults("ratelimit=3/60s")
    for vendor in VENDORS:
        headers = auth_headers(sb, http, vendor)  # token calls count too
        statuses = [list_page(sb, http, vendor, headers, 0) for _ in range(4)]
        assert statuses[-1].status_code == 429, vendor
        last = statuses[-1]
        if vendor == "leaflogix":
            assert 1 <= int(last.headers["Retry-After"]) <= 60
        else:
            assert "Retry-After" not in last.headers
        if vendor == "covasoft":
            assert last.headers["X-RateLimit-Limit"] == "3"
            assert last.headers["X-RateLimit-Remaining"] == "0"
            assert int(last.headers["X-RateLimit-ResetSeconds"]) <= 60


def test_fault_vendor_rate_limit_defaults(sb: SandboxServer, http: requests.Session) -> None:
    sb.set_faults("leaflogix:ratelimit=on;covasoft:ratelimit=on")
    headers = auth_headers(sb, http, "leaflogix")
    codes = [list_page(sb, http, "leaflogix", headers, 0).status_code for _ in range(121)]
    assert codes[:120] == [200] * 120
    assert codes[120] == 429
    cova = auth_headers(sb, http, "covasoft")
    assert list_page(sb, http, "covasoft", cova, 0).headers["X-RateLimit-Limit"] == "1000"


def test_fault_spec_grammar() -> None:
    spec = "5xx=0.1,429=5%,retry_after=2s;treez:drop=1/100,slow=200ms;leaflogix:ratelimit=on"
    assert parse_spec(spec, VENDORS) == {
        "*": {"rate_5xx": 0.1, "rate_429": 0.05, "retry_after": 2},
        "treez": {"drop": 0.01, "slow": 0.2},
        "leaflogix": {"ratelimit": True, "ratelimit_requests": None, "ratelimit_window": None},
    }
    assert parse_spec("token_ttl=30s", VENDORS) == {"*": {"token_ttl_requests": None, "token_ttl_seconds": 30.0}}
    for bad in ("5xx=2", "nope=1", "square:5xx=0.1", "5xx", "slow=fast", "ratelimit=sometimes", "token_ttl=x"):
        with pytest.raises(FaultSpecError):
            parse_spec(bad, VENDORS)


# --- data ------------------------------------------------------------------------------------------------
def test_same_seed_same_data_other_seed_other_data() -> None:
    def sample(seed: int) -> list[str]:
        ds = Dataset(customers=500, seed=seed, vendors=VENDORS)
        return [DIALECTS[v].record(ds.generator(v), p, False) for v in VENDORS for p in ds.people(v, [0, 17, 499])]

    assert sample(3) == sample(3)
    assert sample(3) != sample(4)


def test_data_is_realistic_and_messy(sb: SandboxServer) -> None:
    ds = Dataset(customers=3000, seed=SEED, vendors=VENDORS)
    people = list(ds.iter_people("leaflogix"))
    emails = [p.email for p in people]
    assert 0.03 < sum(e is None for e in emails) / len(people) < 0.12
    assert any(e and "@" not in e for e in emails)
    assert any(e and e.endswith("@gmail") for e in emails)
    assert any(e and e != e.lower() for e in emails)
    phones = {p.phone for p in people if p.phone}
    assert any(x.startswith("(") for x in phones)
    assert any(x.startswith("+1") for x in phones)
    assert any("." in x for x in phones)
    assert any(x.isdigit() for x in phones)
    assert any(p.birthday == "1900-01-01" for p in people)
    assert 0.15 < sum(p.medical for p in people) / len(people) < 0.35
    assert all(p.card and p.card_exp for p in people if p.medical)
    assert {p.status for p in people} == {"active", "inactive", "merged"}
    assert all(p.merged_into is not None and p.merged_into < p.index for p in people if p.status == "merged")
    years = {datetime.fromtimestamp(p.modified_ms / 1000, UTC).year for p in people}
    assert min(years) == 2019
    assert max(years) == 2026
    assert all(p.created_ms <= p.modified_ms for p in people)
    assert [p.modified_ms for p in people] == sorted(p.modified_ms for p in people)


def test_a_million_customers_without_building_them() -> None:
    tracemalloc.start()
    try:
        ds = Dataset(customers=1_000_000, seed=SEED, vendors=VENDORS)
        last = ds.person("blaze", 999_999)
        assert last is not None
        assert last.index == 999_999
        since = ds.generator("blaze").modified_ms(999_000)
        page, total = ds.select("blaze", since, None, 900, 100)
        assert total >= 1000
        assert page[-1] == 999_999
        ds.modify("blaze", count=100)
        if last.phone:
            assert last in ds.search("blaze", phone=last.phone)
        if last.birthday:
            assert 999_999 in {p.index for p in ds.search("blaze", birthday=last.birthday)}
        assert 999_999 in {p.index for p in ds.search("blaze", first_name=last.first, last_name=last.last)}
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 5_000_000
    assert ds.count("blaze") == 1_000_000


def test_birthday_lookup_by_day(sb: SandboxServer) -> None:
    rec = _with("treez", lambda r: r["birthday"] and r["birthday"] != "1900-01-01", sb)
    found = sb.dataset.search("treez", birthday=rec["birthday"])
    assert rec["customer_id"] in {str(1001 + p.index) for p in found}
    assert date.fromisoformat(rec["birthday"])


def test_pages_show_changes_made_between_requests(sb: SandboxServer, http: requests.Session) -> None:
    headers = auth_headers(sb, http, "treez")
    list_page(sb, http, "treez", headers, 0)
    second = list_page(sb, http, "treez", headers, 1).json()["data"]
    [changed] = sb.modify("treez", ids=[second[3]["customer_id"]])
    list_page(sb, http, "treez", headers, 0)
    again = list_page(sb, http, "treez", headers, 1).json()["data"]
    assert again[3]["customer_id"] == changed
    assert again[3] != second[3]
    assert again[3] == sb.record("treez", changed)
    sb.set_faults("treez:malformed_record=1")
    assert list_page(sb, http, "treez", headers, 1).json()["data"][0]["last_update"] == "not-a-date"

"""The sandbox's Treez and Blaze answers against the vendors' published specs, over real HTTP.

Each answer (listing, incremental listing, every lookup, a miss of each, create, duplicate, refusals) is checked
with openapi-core's response validation against the schema the spec gives for that operation and status,
through the loaders in tests/pos_integrations/contracts/specs.py. A property the schema does not name is an
error there, so the sandbox sends nothing the vendors' specs lack.

Where the vendor's spec and its API differ, the sandbox follows the API, and only there:
- Treez models a listing's `data` as one customer where the API sends an array: each element is checked as
  the envelope's `data`.
- Blaze's members carry what a real listing has where the swagger says otherwise (../shared/vendor-specs
  README): an integer `sex` (0, not set), null `middleName` and `lastVisitDate`, an identification's null
  `type`. Those departures, and only they, are allowed; the listing must show each of them.
- The Blaze swagger declares no error answers; its description gives their shape (`field`, `message`,
  `errorType`), which is what its refusals are checked for.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pytest
import requests

from pos_sandbox import SANDBOX_CREDENTIALS, SandboxServer
from pos_sandbox.data import digits_of
from tests.pos_integrations.contracts.specs import answer_problems

N = 600
SEED = 23
DISPENSARY = SANDBOX_CREDENTIALS["treez"]["dispensary"]
# A Blaze departure from the swagger is allowed where a real listing shows it: (member path, the value there).
BLAZE_KNOWN = {
    ("sex",): 0,
    ("middleName",): None,
    ("lastVisitDate",): None,
    ("identifications", "*", "type"): None,
}


@pytest.fixture
def treez(sb: SandboxServer, http: requests.Session) -> Callable[..., requests.Response]:
    """`call(method, target, **kwargs)`: a Treez request (target: the path under the spec's server), the answer."""
    cred = SANDBOX_CREDENTIALS["treez"]
    token = http.post(
        f"{sb.vendor_url('treez')}/{DISPENSARY}/config/api/gettokens",
        data={"client_id": cred["client_id"], "apikey": cred["api_key"]},
    ).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}", "client_id": cred["client_id"]}

    def call(method: str, target: str, **kwargs: Any) -> requests.Response:
        kwargs["headers"] = {**headers, **kwargs.get("headers", {})}
        return http.request(method, sb.vendor_url("treez") + target, **kwargs)

    return call


def treez_problems(method: str, target: str, answer: requests.Response, *, listing: bool = False) -> list[str]:
    body = answer.json()
    if not listing or not isinstance(body.get("data"), list):
        return answer_problems("treez", method, target, answer.status_code, body)
    envelope = {k: v for k, v in body.items() if k != "data"}
    found = answer_problems("treez", method, target, answer.status_code, envelope)
    for i, item in enumerate(body["data"]):  # the API's array, each element as the spec's one `data`
        found += [
            f"[{i}] {p}" for p in answer_problems("treez", method, target, answer.status_code, {**body, "data": item})
        ]
    return found


def test_treez_answers_follow_the_spec(sb: SandboxServer, treez: Any) -> None:
    records = list(sb.vendor_records("treez"))
    rec = next(r for r in records if r["phone"] and r["email"] and r["drivers_license"] and r["state_medical_id"])
    pivot = quote(records[N // 2]["last_update"], safe="")
    base = f"/{DISPENSARY}/customer"
    write = {"first_name": "Ada", "last_name": "Byron", "birthday": "1985-12-10", "patient_type": "ADULT"}
    listing_ = "/lastUpdated/after/{}/page/{}/pagesize/{}"
    cases: list[tuple[str, str, dict[str, Any], int, bool]] = [  # method, target, request, status, is a listing
        ("GET", base + listing_.format("1970-01-01T00%3A00%3A00.000%2B00%3A00", 1, 50), {}, 200, True),
        ("GET", base + listing_.format("1970-01-01T00%3A00%3A00.000%2B00%3A00", 99, 50), {}, 200, True),  # past the end
        ("GET", base + listing_.format(pivot, 2, 50), {}, 200, True),  # incremental
        ("GET", f"{base}/{rec['customer_id']}", {}, 200, False),
        ("GET", f"{base}/email/{quote(rec['email'], safe='')}", {}, 200, False),
        ("GET", f"{base}/phone/{rec['phone']}", {}, 200, False),
        ("GET", f"{base}/driverlicense/{rec['drivers_license']}", {}, 200, False),
        ("GET", f"{base}/firstname/{rec['first_name']}/lastname/{rec['last_name']}", {}, 200, False),
        ("GET", f"{base}/999999", {}, 404, False),
        ("GET", f"{base}/email/nobody%40example.org", {}, 404, False),
        ("GET", f"{base}/phone/5550000000", {}, 404, False),
        ("GET", f"{base}/driverlicense/Q0000000", {}, 404, False),
        ("GET", f"{base}/firstname/Nobody/lastname/Atall", {}, 404, False),
        ("POST", f"{base}/detailcustomer", {"json": {**write, "email": "ada@example.org"}}, 200, False),
        ("POST", f"{base}/detailcustomer", {"json": {**write, "email": "ADA@example.org"}}, 400, False),  # duplicate
        ("POST", f"{base}/detailcustomer", {"json": {**write, "first_name": ""}}, 400, False),
        ("POST", f"{base}/detailcustomer", {"json": {**write, "patient_type": "MEDICAL_MMID"}}, 400, False),
        ("PATCH", f"{base}/update/{rec['customer_id']}", {"json": {"notes": "Prefers mornings"}}, 200, False),
        ("GET", f"{base}/{rec['customer_id']}", {"headers": {"Authorization": "Bearer expired"}}, 401, False),
        ("GET", base + listing_.format("2024-01-01", 1, 50), {}, 400, True),
        ("GET", base + listing_.format(pivot, 1, 100), {}, 400, True),
    ]
    found = []
    for method, target, request, status, listing in cases:
        answer = treez(method, target, **request)
        assert answer.status_code == status, (method, target, answer.text)
        found += [f"{method} {target} {status}: {p}" for p in treez_problems(method, target, answer, listing=listing)]
    assert found == []


def _value_at(body: Any, path: list[str]) -> Any:
    for step in path:
        body = body[int(step)] if isinstance(body, list) else body[step]
    return body


def blaze_departures(method: str, target: str, answer: requests.Response) -> tuple[set[tuple[str, ...]], list[str]]:
    """The known departures an answer shows (member paths), and every other problem."""
    known: set[tuple[str, ...]] = set()
    other: list[str] = []
    body = answer.json()
    for problem in answer_problems("blaze", method, target, answer.status_code, body):
        where, _, _ = problem.partition(": ")
        path = where.split("/") if where else []
        member = path[2:] if path[:1] == ["values"] else path  # the path inside one member
        pattern = tuple("*" if step.isdigit() else step for step in member)
        if pattern in BLAZE_KNOWN and _value_at(body, path) == BLAZE_KNOWN[pattern]:
            known.add(pattern)
        else:
            other.append(f"{method} {target}: {problem}")
    return known, other


def test_blaze_answers_follow_the_swagger_but_where_a_real_listing_departs(
    sb: SandboxServer, http: requests.Session
) -> None:
    cred = SANDBOX_CREDENTIALS["blaze"]
    headers = {"partner_key": cred["partner_key"], "Authorization": cred["api_key"]}
    records = list(sb.vendor_records("blaze"))
    rec = next(r for r in records if r["email"] and r["primaryPhone"] and r["identifications"] and "dob" in r)
    members = "/api/v1/partner/members"
    start = records[N // 2]["modified"]
    cases = [
        f"{members}?skip=0&limit=500",
        f"{members}?skip=500&limit=500",
        f"{members}?startDate={start}&endDate={start + 7 * 86_400_000}&skip=0&limit=500",  # incremental
        f"{members}/{rec['id']}",
        f"{members}/email/{quote(rec['email'], safe='')}",
        f"{members}/search?licenceNumber={rec['identifications'][0]['licenseNumber']}",
        f"{members}/search/phone?phoneNumber={digits_of(rec['primaryPhone'])}",
        f"{members}/search/dob?dob={rec['dob']}",
        f"{members}/search/phone?phoneNumber=5550000000",
    ]
    shown: set[tuple[str, ...]] = set()
    found: list[str] = []
    for target in cases:
        answer = http.get(sb.vendor_url("blaze") + target, headers=headers)
        assert answer.status_code == 200, (target, answer.text)
        known, other = blaze_departures("GET", target, answer)
        shown |= known
        found += other
    assert found == []
    assert shown == set(BLAZE_KNOWN)  # the sandbox shows what a real listing does

    refusals = [
        (f"{members}/{'0' * 24}", headers, 404),
        (f"{members}/email/nobody%40example.org", headers, 404),
        (f"{members}?startDate={start}&endDate={start + 8 * 86_400_000}", headers, 400),
        (members, {"partner_key": "x", "Authorization": "y"}, 401),
    ]
    for target, sent, status in refusals:
        answer = http.get(sb.vendor_url("blaze") + target, headers=sent)
        assert answer.status_code == status, target
        assert set(answer.json()) == {"field", "message", "errorType"}, target
        assert re.fullmatch(r"[\w.]+Exception", answer.json()["errorType"]), target

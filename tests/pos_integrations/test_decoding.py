"""What the clients make of a page a POS sends broken: one bad record is read as it came (for the mirror's writer to
quarantine), a page that cannot be read at all fails with a reason that says so."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import responses

from pos_integrations import PosBadResponse, PosClient, PosUnreadableCustomer

from .conftest import leaflogix_record, treez_record

MakeClient = Callable[..., PosClient]
LIST = "https://ll.test/customer/customers-paginated"


def nested(levels: int) -> Any:
    value: Any = "bottom"
    for _ in range(levels - 1):
        value = {"in": value}
    return value


def page_body(records: list[dict[str, Any]], *, replace: tuple[bytes, bytes] | None = None) -> bytes:
    body = json.dumps(records).encode()
    if replace is not None:
        assert replace[0] in body
        body = body.replace(*replace)
    return body


@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8", ""])
def test_bytes_that_are_not_utf8_in_one_record_are_kept_in_that_record_and_the_rest_read_unchanged(
    rsps: responses.RequestsMock, make_client: MakeClient, content_type: str
) -> None:
    records = [leaflogix_record(1, firstName="BADNAME"), leaflogix_record(2, firstName="Zoë")]
    body = page_body(records, replace=(b"BADNAME", b"Se\xff\xfean"))
    rsps.add(responses.GET, LIST, body=body, content_type=content_type or None)

    [page] = list(make_client("leaflogix").iter_customers())

    bad, good = page.records
    # Not replaced by U+FFFD (stored as if the POS had sent it): kept as lone surrogates, which the mirror's writer
    # refuses and quarantines with the bytes shown (customers.quarantine).
    assert bad.first_name == "Se\udcff\udcfean"
    assert bad.raw["firstName"] == "Se\udcff\udcfean"
    assert good.first_name == "Zoë"


def test_a_lone_surrogate_escape_is_read_as_it_came(rsps: responses.RequestsMock, make_client: MakeClient) -> None:
    body = page_body([leaflogix_record(1, firstName="Se\ud800an"), leaflogix_record(2)])
    assert b"\\ud800" in body
    rsps.add(responses.GET, LIST, body=body, content_type="application/json")

    [page] = list(make_client("leaflogix").iter_customers())

    assert [r.first_name for r in page.records] == ["Se\ud800an", "Ann2"]


def test_a_record_nested_500_levels_deep_is_read(rsps: responses.RequestsMock, make_client: MakeClient) -> None:
    rsps.add(responses.GET, LIST, json=[leaflogix_record(1, extra=nested(500)), leaflogix_record(2)])

    [page] = list(make_client("leaflogix").iter_customers())

    assert [r.customer_id for r in page.records] == ["1001", "1002"]


def test_a_page_nested_too_deeply_to_read_fails_saying_so(
    rsps: responses.RequestsMock, make_client: MakeClient
) -> None:
    body = b'[{"customerId": 1, "extra": ' + b"[" * 5000 + b"]" * 5000 + b"}]"
    rsps.add(responses.GET, LIST, body=body, content_type="application/json")

    with pytest.raises(
        PosBadResponse, match=r"LeafLogix \(Dutchie POS\) sent JSON nested too deeply to read for /customer/"
    ):
        list(make_client("leaflogix").iter_customers())


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(
            page_body([leaflogix_record(1)], replace=(b'"firstName"', b'"first\xffName" \xff')), id="bad-byte"
        ),
        pytest.param(page_body([leaflogix_record(1)])[:-40], id="cut-short"),
    ],
)
def test_a_page_that_is_not_json_fails_saying_so(
    rsps: responses.RequestsMock, make_client: MakeClient, body: bytes
) -> None:
    rsps.add(responses.GET, LIST, body=body, content_type="application/json")

    with pytest.raises(PosBadResponse, match=r"LeafLogix \(Dutchie POS\) sent malformed JSON for /customer/"):
        list(make_client("leaflogix").iter_customers())


def test_a_page_in_another_declared_charset_is_read_in_it(
    rsps: responses.RequestsMock, make_client: MakeClient
) -> None:
    body = json.dumps([leaflogix_record(1, firstName="Zoë")], ensure_ascii=False).encode("latin-1")
    rsps.add(responses.GET, LIST, body=body, content_type="application/json; charset=iso-8859-1")

    [page] = list(make_client("leaflogix").iter_customers())

    assert page.records[0].first_name == "Zoë"


def test_a_created_customer_answered_unreadable_is_an_error_that_keeps_the_pos_answer(
    rsps: responses.RequestsMock, make_client: MakeClient
) -> None:
    from .test_treez import JANE, ROOT, ok, token

    token(rsps)
    answer = treez_record(40, birthday="31/02/1990")
    rsps.add(responses.POST, ROOT + "/customer/detailcustomer", json=ok(answer))

    with pytest.raises(PosUnreadableCustomer) as caught:
        make_client("treez").create_customer(JANE)

    assert isinstance(caught.value, PosBadResponse)
    assert (caught.value.customer_id, caught.value.payload) == (str(answer["customer_id"]), answer)
    assert "birthday" in caught.value.reason

"""The README's table of error answers names every (status, code) the API can answer with."""

from __future__ import annotations

import re
from pathlib import Path

from api.errors import _DRF_CODES, DOMAIN_ERRORS, REQUEST_ERRORS
from customers.api.errors import CUSTOMER_ERRORS

README = Path(__file__).resolve().parents[2] / "README.md"
# Answered by the views and handlers themselves, not through a table.
DIRECT = {
    (400, "invalid_parameters"),
    (400, "invalid_request"),
    (400, "invalid_idempotency_key"),
    (401, "revoked_api_key"),
    (404, "not_found"),
    (500, "server_error"),
}
# No endpoint refuses a live key (api.permissions), so DRF's PermissionDenied is never answered.
NEVER = {(403, "forbidden")}


def _readme_answers() -> set[tuple[int, str]]:
    answers = set()
    for status, codes in re.findall(r"^\| (\d{3}) \| ([^|]+) \|", README.read_text(), flags=re.MULTILINE):
        answers |= {(int(status), code) for code in re.findall(r"`([a-z_]+)`", codes)}
    return answers


def test_the_readme_table_lists_every_answer():
    tables = {**DOMAIN_ERRORS, **REQUEST_ERRORS, **CUSTOMER_ERRORS}.values()
    answers = {(a.status, a.code) for a in tables} | DIRECT
    answers |= {(cls.status_code, code) for cls, code in _DRF_CODES.items()}
    answers -= NEVER
    assert (415, "unsupported_media_type") in answers
    assert (413, "body_too_large") in answers
    assert answers - _readme_answers() == set()

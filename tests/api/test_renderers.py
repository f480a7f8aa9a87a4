"""The orjson renderer answers what DRF's JSONRenderer would."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from decimal import Decimal

import pytest
from django.utils.translation import gettext_lazy
from rest_framework.exceptions import ErrorDetail
from rest_framework.renderers import JSONRenderer

from api.renderers import FastJSONRenderer

BODIES = [
    {"customers": [{"id": 1, "name": "Zoë 🌿", "points": 10.98, "active": True, "email": None}], "next": None},
    {"when": dt.datetime(2026, 3, 27, 3, 36, 4, 123456, tzinfo=dt.UTC), "day": dt.date(2026, 3, 27)},
    {
        "naive": dt.datetime(2026, 3, 27, 3, 36, 4),  # noqa: DTZ001 -- a naive time on purpose
        "time": dt.time(3, 36, 4, 500000),
    },
    {"amount": Decimal("27.50"), "uuid": uuid.UUID(int=7), "lazy": gettext_lazy("This field is required.")},
    {"error": {"code": ErrorDetail("invalid", code="invalid"), "fields": {"a.b": ["x"]}}, "big": 2**70},
    {"separators": "a\u2028b\u2029c", "escapes": '"\\/\n\t\x00'},
    [1, 2.5, "three", [], {}],
    {1: "int key"},
]


@pytest.mark.parametrize("body", BODIES)
def test_same_json_as_drf(body):
    ours = FastJSONRenderer().render(body, "application/json")
    drf = JSONRenderer().render(body, "application/json")
    assert json.loads(ours) == json.loads(drf)
    assert ours == drf


def test_nothing_renders_as_empty():
    assert FastJSONRenderer().render(None) == b""


def test_indent_is_honoured():
    body = {"a": [1]}
    assert FastJSONRenderer().render(body, "application/json; indent=2") == JSONRenderer().render(
        body, "application/json; indent=2"
    )

"""The text rules the schema states are the ones the API applies: each pattern, as a JSON Schema validator reads
it (ECMA 262), accepts exactly what the field's validation accepts."""

from __future__ import annotations

import sys

import jsonschema_rs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rest_framework.exceptions import ValidationError

from api.pagination import CURSOR_PATTERN, decode_cursor, encode_cursor
from api.serializers import NO_NUL, NOT_BLANK, SPACE, TextRule, blank_or
from customers.api.serializers import LICENCE, NAME, PHONE
from customers.api.views import IDEMPOTENCY_KEY_PATTERN

# Letters, digits, the marks names and phones use, white space of every kind, NUL and a few others; kept to
# scripts whose letters Python's and the validator's Unicode tables agree on.
ALPHABET = st.sampled_from(
    "aZéßøΩжЖ中ñ0159٣²'-.\u2019()+ /_@\x00\t\n\x0b\x0c\r\x1c\x1f\x85\xa0\u2000\u2028\u3000\ufeff\u200bx#"
)
TEXT = st.text(ALPHABET, max_size=30)


def schema_accepts(pattern: str, value: str) -> bool:
    return jsonschema_rs.validator_for({"type": "string", "pattern": pattern}).is_valid(value)


def rule_accepts(rule: TextRule, value: str, *, allow_blank: bool) -> bool:
    # As DRF applies it: surrounding white space trimmed; blank text taken as "" (where allowed) unvalidated.
    trimmed = value.strip()
    if not trimmed:
        return allow_blank
    try:
        rule(trimmed)
    except ValidationError:
        return False
    return True


def test_space_is_what_python_strips():
    pattern = f"^[{SPACE}]$"
    assert [c for c in map(chr, range(sys.maxunicode + 1)) if c.isspace()] == [
        c for c in map(chr, range(0x3001)) if schema_accepts(pattern, c)
    ]


@settings(max_examples=400, deadline=None)
@given(TEXT)
def test_name_pattern_is_the_name_rule(value):
    assert schema_accepts(NAME.pattern, value) == rule_accepts(NAME, value, allow_blank=False)


@pytest.mark.parametrize("rule", [LICENCE, PHONE], ids=["licence", "phone"])
@settings(max_examples=400, deadline=None)
@given(value=st.one_of(TEXT, st.from_regex(r"\A[ 1-]{0,3}(?:[0-9A-z][ ()-]{0,2}){4,12}\Z")))
def test_optional_text_patterns_are_their_rules(rule, value):
    assert schema_accepts(blank_or(rule.pattern), value) == rule_accepts(rule, value, allow_blank=True)


@settings(max_examples=300, deadline=None)
@given(TEXT)
def test_plain_text_patterns(value):
    assert schema_accepts(NO_NUL, value) == ("\x00" not in value)
    assert schema_accepts(NOT_BLANK, value) == ("\x00" not in value and bool(value.strip()))


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.integers(0, 10**18 - 1).map(encode_cursor), st.text(st.sampled_from("aWQ6MNOTjzDAw0-_=\n"))))
def test_cursor_pattern_is_exactly_the_cursors_taken(cursor):
    try:
        decode_cursor(cursor)
        taken = True
    except ValueError:
        taken = False
    assert schema_accepts(CURSOR_PATTERN, cursor) == taken


@pytest.mark.parametrize(
    ("key", "ok"),
    [
        ("7f1c9a52-0d3e-4b8e-a0a4-1f5e0d2c9b11", True),
        ("a b", True),
        ("x" * 255, True),
        ("x" * 256, False),
        ("", False),
        (" a", False),
        ("a ", False),
        ("é", False),
        ("a\tb", False),
    ],
)
def test_idempotency_key_pattern(key, ok):
    assert schema_accepts(IDEMPOTENCY_KEY_PATTERN, key) == ok

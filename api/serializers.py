"""Serializers every endpoint shares: strict request bodies, the rules of text fields as the schema states them,
and the one error shape (for the schema)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rest_framework import serializers

# Text rules as patterns that JSON Schema validators (ECMA 262: \d and \w are ASCII only, \s is not Python's)
# and Python's re read alike: no \d, \w or \s, but these classes.
# What Python calls white space (str.isspace: what str.strip() and str.split() remove, as DRF and Django do).
SPACE = r"\t\n\u000b\u000c\r\u001c-\u001f \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
# Any text without NUL (Django and DRF refuse NUL in text: PostgreSQL cannot store it).
NO_NUL = r"^[^\u0000]*$"
# Text without NUL and with something besides white space (what a required text field takes).
NOT_BLANK = rf"^[{SPACE}]*[^{SPACE}\u0000][^\u0000]*$"


def blank_or(pattern: str) -> str:
    """A pattern that also takes empty or white-space-only text (an optional text left blank)."""
    return rf"^[{SPACE}]*$|{pattern}"


@dataclass(frozen=True, slots=True)
class TextRule:
    """A validator whose rule the schema states as `pattern` (api.schema puts it there), anchored (each
    alternative from ^ to $). `valid` checks the same rule in Python: by default the pattern itself, matched
    whole (as JSON Schema reads $: the end, not before a last newline); a rule Python's re cannot spell
    (letters: \\p{L}) says it in `valid` instead."""

    pattern: str
    message: str
    valid: Callable[[str], bool] | None = None

    def __call__(self, value: Any) -> None:
        text = str(value)
        ok = self.valid(text) if self.valid is not None else re.fullmatch(self.pattern, text) is not None
        if not ok:
            raise serializers.ValidationError(self.message, code="invalid")


class StrictSerializer(serializers.Serializer):
    """Rejects keys it does not know, so a misspelt field is an error rather than silently dropped."""

    # (Its docstring is the schema's description of each request body.) Unknown keys are reported with every other
    # field error, at every level, at once; api.schema says additionalProperties: false.

    def to_internal_value(self, data: Any) -> Any:
        unknown = (
            {str(name): ["Unknown field."] for name in data if name not in self.fields}
            if isinstance(data, dict)
            else {}
        )
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            if unknown and isinstance(exc.detail, dict):
                raise serializers.ValidationError({**unknown, **exc.detail}) from None
            raise
        if unknown:
            raise serializers.ValidationError(unknown)
        return value


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Stable, machine-readable, e.g. invalid_request, store_not_found.")
    message = serializers.CharField(help_text="For people.")
    # DRF's SerializerMetaclass pops declared fields off the class, so this doesn't shadow Serializer.fields at
    # runtime; the stubs can't express that.
    fields = serializers.DictField(  # type: ignore[assignment]
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="Per field (or query parameter), what is wrong.",
    )
    retry_after = serializers.IntegerField(required=False, help_text="Seconds to wait before retrying.")


class ErrorSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()

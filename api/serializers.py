"""Serializers every endpoint shares: strict request bodies and the one error shape (for the schema)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers


class StrictSerializer(serializers.Serializer):
    """Rejects keys it does not know, so a misspelt field is an error rather than silently dropped."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return super().to_internal_value(data)


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

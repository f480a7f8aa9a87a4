"""Request validation and documented response shapes. Responses are built with Customer.to_peak_customer()."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from django.utils import timezone
from drf_spectacular.utils import extend_schema_serializer
from rest_framework import serializers

from api.serializers import ErrorSerializer, StrictSerializer
from customers.models import Gender, licence_key, phone_digits
from pos_integrations.records import CustomerInput

# Letters of any script, with spaces, apostrophes (straight or typographic), hyphens and periods between.
_NAME = re.compile(r"^[^\W\d_](?:[^\W\d_]|[ '\-.\u2019])*$")
_LICENCE = re.compile(r"^[A-Z0-9]{4,20}$")
OLDEST_BIRTHDAY_YEARS = 120


class NewCustomerSerializer(StrictSerializer):
    first_name = serializers.CharField(max_length=150)
    last_name = serializers.CharField(max_length=150)
    gender = serializers.ChoiceField(
        choices=[Gender.MALE, Gender.FEMALE, Gender.OTHER],
        required=False,
        allow_blank=True,
        help_text="M, F or X (other / non-binary); blank or absent for unknown.",
    )
    birthday = serializers.DateField(required=False, allow_null=True, help_text="YYYY-MM-DD, in the past.")
    email = serializers.EmailField(max_length=254, required=False, allow_blank=True)
    phone = serializers.CharField(
        max_length=40, required=False, allow_blank=True, help_text="Any format; stored as its 10 digits."
    )
    drivers_license = serializers.CharField(
        max_length=64,
        required=False,
        allow_blank=True,
        help_text="4 to 20 letters and digits (spaces and dashes are dropped).",
    )
    notes = serializers.CharField(max_length=2000, required=False, allow_blank=True)

    def _name(self, value: str) -> str:
        value = " ".join(value.split())
        if not _NAME.match(value):
            raise serializers.ValidationError("Use letters, spaces, apostrophes, hyphens and periods.")
        return value

    def validate_first_name(self, value: str) -> str:
        return self._name(value)

    def validate_last_name(self, value: str) -> str:
        return self._name(value)

    def validate_birthday(self, value: date | None) -> date | None:
        if value is None:
            return None
        today = timezone.localdate()
        if value >= today:
            raise serializers.ValidationError("A birthday must be in the past.")
        if value.year < today.year - OLDEST_BIRTHDAY_YEARS:
            raise serializers.ValidationError(f"A birthday must be within the last {OLDEST_BIRTHDAY_YEARS} years.")
        return value

    def validate_email(self, value: str) -> str:
        return value.strip().lower()

    def validate_phone(self, value: str) -> str:
        if not value.strip():
            return ""
        digits = phone_digits(value)
        if len(digits) != 10:
            raise serializers.ValidationError("Enter a 10-digit phone number (any format).")
        return digits

    def validate_drivers_license(self, value: str) -> str:
        if not value.strip():
            return ""
        key = licence_key(value)
        if not _LICENCE.match(key):
            raise serializers.ValidationError("Enter 4 to 20 letters and digits.")
        return key

    @staticmethod
    def to_input(data: dict[str, Any]) -> CustomerInput:
        """Validated customer data as the POS client takes it."""
        return CustomerInput(
            first_name=data["first_name"],
            last_name=data["last_name"],
            gender=data.get("gender", ""),
            birthday=data.get("birthday"),
            email=data.get("email", ""),
            phone=data.get("phone", ""),
            drivers_license=data.get("drivers_license", ""),
            notes=data.get("notes", ""),
        )


class CustomerCreateSerializer(StrictSerializer):
    catalog_id = serializers.CharField(max_length=100, help_text="The store to create the customer at.")
    customer = NewCustomerSerializer()


# ---- response shapes (documentation; the data comes from to_peak_customer) ---------------------------


class AddressSerializer(serializers.Serializer):
    street = serializers.CharField()
    city = serializers.CharField()
    state = serializers.CharField()
    postal_code = serializers.CharField()


class PeakCustomerSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    customer_id = serializers.CharField(help_text="The POS's own id.")
    catalog_id = serializers.CharField()
    pos_vendor = serializers.ChoiceField(choices=["leaflogix", "treez", "flowhub", "covasoft", "blaze"])
    first_name = serializers.CharField()
    last_name = serializers.CharField()
    email = serializers.CharField(allow_null=True)
    phone = serializers.CharField(allow_null=True, help_text="Digits only.")
    birthday = serializers.DateField(allow_null=True)
    gender = serializers.ChoiceField(choices=["M", "F", "X"], allow_null=True)
    drivers_license = serializers.CharField(allow_null=True)
    drivers_license_expiration = serializers.DateField(allow_null=True)
    medical_card_number = serializers.CharField(allow_null=True)
    medical_card_expiration = serializers.DateField(allow_null=True)
    customer_type = serializers.ChoiceField(choices=["recreational", "medical"])
    active = serializers.BooleanField()
    address = AddressSerializer()
    loyalty_points = serializers.FloatField()
    notes = serializers.CharField()
    pos_created_at = serializers.DateTimeField(allow_null=True)
    pos_updated_at = serializers.DateTimeField(allow_null=True)
    synced_at = serializers.DateTimeField(allow_null=True)


@extend_schema_serializer(many=False)
class CustomerListResponseSerializer(serializers.Serializer):
    customers = PeakCustomerSerializer(many=True)
    next = serializers.URLField(allow_null=True, help_text="The next page, or null on the last one.")
    # DRF's SerializerMetaclass pops declared fields off the class, so this doesn't shadow Field.source at
    # runtime; the stubs can't express that.
    source = serializers.ChoiceField(  # type: ignore[assignment]
        choices=["mirror", "pos"], help_text="mirror: the local copy; pos: found by asking the store's POS live."
    )
    warning = serializers.CharField(
        required=False,
        help_text="Present when a live POS lookup failed, or the POS answered customers the mirror cannot store.",
    )


class CustomerResponseSerializer(serializers.Serializer):
    customer = PeakCustomerSerializer()


class CustomerCreatedResponseSerializer(serializers.Serializer):
    customer = PeakCustomerSerializer(
        allow_null=True, help_text="The new customer; null when the POS answered a record the mirror cannot store."
    )
    warning = serializers.CharField(required=False, help_text="Present when the mirror could not store the answer.")


class LegacySearchResponseSerializer(serializers.Serializer):
    customers = PeakCustomerSerializer(many=True)


class DuplicateErrorSerializer(ErrorSerializer):
    customer = PeakCustomerSerializer(allow_null=True, help_text="The customer the POS already has, where known.")

"""Request validation and documented response shapes. Responses are built with Customer.to_peak_customer()."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.utils import timezone
from drf_spectacular.utils import extend_schema_serializer
from rest_framework import serializers

from api.serializers import SPACE, ErrorSerializer, StrictSerializer, TextRule
from customers.models import Gender, licence_key
from pos_integrations import CLIENTS, VENDOR_LABELS
from pos_integrations.records import CustomerInput

_NAME_MARKS = " '-.\u2019"
OLDEST_BIRTHDAY_YEARS = 120


def _is_name(value: str) -> bool:
    words = " ".join(value.split())
    return words[:1].isalpha() and all(c.isalpha() or c in _NAME_MARKS for c in words)


# Letters of any script, with white space, apostrophes (straight or typographic), hyphens and periods between.
NAME = TextRule(
    rf"^[{SPACE}]*\p{{L}}[\p{{L}}'\-.\u2019{SPACE}]*$",
    "Use letters, spaces, apostrophes, hyphens and periods.",
    valid=_is_name,
)
# 4 to 20 letters and digits (ASCII), with spaces and dashes anywhere (dropped).
LICENCE = TextRule(rf"^[{SPACE}\-]*(?:[A-Za-z0-9][{SPACE}\-]*){{4,20}}$", "Enter 4 to 20 letters and digits.")
# 10 digits (11 with a leading US country code 1), in any format: whatever else is between them.
PHONE = TextRule(
    r"^[^0-9\u0000]*(?:1[^0-9\u0000]*)?(?:[0-9][^0-9\u0000]*){10}$", "Enter a 10-digit phone number (any format)."
)


def required_by_pos() -> dict[str, list[str]]:
    """{vendor: the customer fields its POS refuses a create without} for each vendor that can create (its client's
    `capabilities.create_requires`: the create checks the same before asking the POS)."""
    return {
        vendor: sorted(cls.capabilities.create_requires)
        for vendor, cls in CLIENTS.items()
        if cls.capabilities.can_create
    }


def _required_at(field: str) -> str:
    """ " Required for Treez stores." where some POS needs a field the body may leave out, else ""."""
    vendors = [VENDOR_LABELS[vendor] for vendor, fields in required_by_pos().items() if field in fields]
    return f" Required for {' and '.join(vendors)} stores." if vendors else ""


class NewCustomerSerializer(StrictSerializer):
    first_name = serializers.CharField(max_length=150, validators=[NAME])
    last_name = serializers.CharField(max_length=150, validators=[NAME])
    gender = serializers.ChoiceField(
        choices=[Gender.MALE, Gender.FEMALE, Gender.OTHER],
        required=False,
        allow_blank=True,
        allow_null=True,
        help_text="M, F or X (other / non-binary); null (as answers show it), blank or absent for unknown.",
    )
    birthday = serializers.DateField(
        required=False, allow_null=True, help_text="YYYY-MM-DD, in the past." + _required_at("birthday")
    )
    email = serializers.EmailField(max_length=254, required=False, allow_blank=True)
    phone = serializers.CharField(
        max_length=40,
        required=False,
        allow_blank=True,
        validators=[PHONE],
        help_text="Any format; stored as its 10 digits.",
    )
    drivers_license = serializers.CharField(
        max_length=64,
        required=False,
        allow_blank=True,
        validators=[LICENCE],
        help_text="4 to 20 letters and digits (spaces and dashes are dropped).",
    )
    notes = serializers.CharField(max_length=2000, required=False, allow_blank=True)

    def validate_first_name(self, value: str) -> str:
        return " ".join(value.split())

    def validate_last_name(self, value: str) -> str:
        return " ".join(value.split())

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
        # PHONE took it: 10 digits 0-9, or 11 beginning with the country code.
        digits = "".join(c for c in value if "0" <= c <= "9")
        return digits[-10:]

    def validate_drivers_license(self, value: str) -> str:
        return licence_key(value)

    @staticmethod
    def to_input(data: dict[str, Any]) -> CustomerInput:
        """Validated customer data as the POS client takes it."""
        return CustomerInput(
            first_name=data["first_name"],
            last_name=data["last_name"],
            gender=data.get("gender") or "",
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
    active = serializers.BooleanField(help_text="False for a customer inactive at the POS or merged into another.")
    banned = serializers.BooleanField(help_text="Banned at the POS; false where the POS has no ban flag.")
    merged_into_customer_id = serializers.CharField(
        allow_null=True,
        help_text="The POS merged this customer into the one with this POS id (same store); null when not merged.",
    )
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


class CustomerSearchResponseSerializer(serializers.Serializer):
    customers = PeakCustomerSerializer(many=True)
    next_cursor = serializers.CharField(
        allow_null=True, help_text="Send it as `cursor` in the next search's body for the next page; null on the last."
    )
    source = serializers.ChoiceField(  # type: ignore[assignment]  # see CustomerListResponseSerializer
        choices=["mirror", "pos"], help_text="mirror: the local copy; pos: found by asking the store's POS live."
    )
    warning = serializers.CharField(
        required=False,
        help_text="Present when a live POS lookup failed, or the POS answered customers the mirror cannot store.",
    )


class CustomerResponseSerializer(serializers.Serializer):
    customer = PeakCustomerSerializer()


class PosCustomerSerializer(PeakCustomerSerializer):
    """A customer as the POS has it, which the mirror may not hold (see `warning`): then `id` and `synced_at` are
    null and the fields are what the POS answered (text longer than 10,000 characters cut, with a marker)."""

    id = serializers.IntegerField(allow_null=True, help_text="Our id; null when the mirror cannot store it.")
    # Declared fields are popped off the class by DRF's SerializerMetaclass; the stubs see a narrowed override.
    gender = serializers.CharField(  # type: ignore[assignment]
        allow_null=True, help_text="M, F, X; as the POS has it when not one of them."
    )
    customer_type = serializers.CharField(  # type: ignore[assignment]
        help_text="recreational or medical; as the POS has it when not one of them."
    )
    loyalty_points = serializers.FloatField(allow_null=True)


class CustomerCreatedResponseSerializer(serializers.Serializer):
    customer = PosCustomerSerializer(
        help_text="The new customer. When the mirror cannot store what the POS answered (the `warning` says why): "
        "as the POS has it, with `id` null."
    )
    warning = serializers.CharField(
        required=False, help_text="Present when the mirror could not store the customer the POS created."
    )


class LegacySearchResponseSerializer(serializers.Serializer):
    customers = PeakCustomerSerializer(many=True)


class DuplicateErrorSerializer(ErrorSerializer):
    customer = PosCustomerSerializer(
        allow_null=True,
        help_text="The customer the POS already has, where known (as the POS has it, `id` null, where the mirror "
        "cannot store it).",
    )

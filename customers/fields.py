"""Model fields for personal data at rest (customers.crypto): encrypted text and JSON, and the blind indexes and
digest computed from them.

Python code sees plaintext: an encrypted field decrypts what it reads (`from_db_value`) and encrypts what it
writes (`get_prep_value`). The database holds ciphertexts only, which no comparison can use: a lookup on an
encrypted field other than `isnull` or "equals the empty text" raises FieldError instead of silently matching
nothing. Exact lookups go through the blind-index columns (CustomerQuerySet.licence_equal, card_number_equal).

The blind indexes, the digest and the id of the index key they were made with are computed on every ORM save,
bulk_create included (`pre_save`); QuerySet.update() and bulk_update() do not compute them, so they must not set
the encrypted fields. The mirror's writer (customers.writer) computes the same values itself (`pii_columns`).
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

import orjson
from django.core import validators
from django.core.exceptions import FieldError
from django.db import models
from django.db.models.lookups import Exact, IsNull

from customers import crypto

# The purposes (associated data of the ciphertexts, and what the blind indexes are bound to).
LICENCE_PURPOSE = "customers.drivers_license"
CARD_PURPOSE = "customers.medical_card_number"
RAW_PURPOSE = "customers.raw"
DIGEST_PURPOSE = "customers.pii_digest"
REJECTED_PAYLOAD_PURPOSE = "customers.rejected_payload"
IDEMPOTENCY_RESPONSE_PURPOSE = "customers.idempotency_response"

if TYPE_CHECKING:
    _TextField = models.TextField[str, str]
    _JSONTextField = models.TextField[Any, Any]
    _CharField = models.CharField[str, str]
else:
    _TextField = models.TextField
    _JSONTextField = models.TextField
    _CharField = models.CharField


_SPACES_AND_DASHES = re.compile(r"[\s-]")


def number_key(value: str | None) -> str:
    """A licence or medical card number as compared: upper case, without spaces or dashes."""
    if not value:
        return ""
    if value.isalnum():  # most numbers: nothing to take out (the writer calls this twice a record)
        return value.upper()
    return _SPACES_AND_DASHES.sub("", value).upper()


def canonical_json(value: Any) -> str:
    """A JSON value as the text that is encrypted and digested: compact, keys sorted (so a vendor's key order,
    or jsonb's, does not make a record look changed). orjson (several times faster than json; NaN becomes
    null); json's rules for what orjson refuses (integers over 64 bits)."""
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SORT_KEYS).decode()
    except orjson.JSONEncodeError:
        return json.dumps(value, sort_keys=True, separators=(",", ":"))


def licence_index(licence: str | None) -> str:
    """The blind index of a licence number under the current index key ('' for none)."""
    return crypto.blind_index(number_key(licence), purpose=LICENCE_PURPOSE)


def card_index(card: str | None) -> str:
    """The blind index of a medical card number under the current index key ('' for none)."""
    return crypto.blind_index(number_key(card), purpose=CARD_PURPOSE)


def licence_indexes(licence: str | None) -> tuple[str, ...]:
    """What a lookup by licence number matches: its blind index under every index key (current first)."""
    return crypto.blind_indexes(number_key(licence), purpose=LICENCE_PURPOSE)


def card_indexes(card: str | None) -> tuple[str, ...]:
    """What a lookup by medical card number matches: its blind index under every index key (current first)."""
    return crypto.blind_indexes(number_key(card), purpose=CARD_PURPOSE)


def pii_digest(licence: str, card: str, raw_json: str) -> str:
    """A keyed digest (current index key) of a customer's encrypted values in clear: the writer compares it, not
    the ciphertexts (a fresh nonce makes every ciphertext of the same value differ). `raw_json` is
    canonical_json of the vendor JSON."""
    return crypto.blind_index(_digested(licence, card, raw_json), purpose=DIGEST_PURPOSE)


def _digested(licence: str, card: str, raw_json: str) -> str:
    return f"{len(licence)}:{licence}{len(card)}:{card}{raw_json}"


_LICENCE_AD, _CARD_AD, _RAW_AD = (p.encode() for p in (LICENCE_PURPOSE, CARD_PURPOSE, RAW_PURPOSE))


def seal_customer_pii(
    sealer: crypto.Sealer, licence: str, card: str, raw_json: str
) -> tuple[str, str, str, tuple[str, str, str, str]]:
    """What a customer row stores of its licence, card number and vendor JSON (canonical_json): their ciphertexts
    and (licence index, card index, digest, index key id): what the model's fields compute on save, for the
    writer, which writes rows without the ORM."""
    return (
        sealer.encrypt(licence, purpose=_LICENCE_AD),
        sealer.encrypt(card, purpose=_CARD_AD),
        sealer.encrypt(raw_json, purpose=_RAW_AD),
        (
            sealer.blind_index(number_key(licence), purpose=LICENCE_PURPOSE) if licence else "",
            sealer.blind_index(number_key(card), purpose=CARD_PURPOSE) if card else "",
            sealer.blind_index(_digested(licence, card, raw_json), purpose=DIGEST_PURPOSE),
            sealer.index_key_id,
        ),
    )


class _EmptyExact(Exact):
    """`field=""` (nothing on file) is the one comparison a ciphertext column answers: the empty text stays empty."""

    def get_prep_lookup(self) -> Any:
        if self.rhs != "":
            raise _refused(self.lhs.output_field, "exact")
        return super().get_prep_lookup()


def _refused(field: Any, lookup_name: str) -> FieldError:
    return FieldError(
        f"{getattr(field, 'name', field)} is encrypted: the {lookup_name!r} lookup would compare ciphertexts. "
        "Look customers up through the blind index (Customer.objects.licence_equal / card_number_equal)."
    )


class _RefusesLookups:
    """Lookups on a ciphertext column: only isnull and the empty text."""

    def get_lookup(self, lookup_name: str) -> Any:
        if lookup_name == "isnull":
            return IsNull
        if lookup_name == "exact":
            return _EmptyExact
        raise _refused(self, lookup_name)

    def get_transform(self, lookup_name: str) -> Any:
        raise _refused(self, lookup_name)


class EncryptedTextField(_RefusesLookups, _TextField):
    """Text encrypted at rest for `purpose`; '' stays ''. `max_length` bounds the plaintext (the column is text)."""

    description = "Text encrypted at rest (customers.crypto)"

    def __init__(self, *args: Any, purpose: str, **kwargs: Any) -> None:
        self.purpose = purpose
        kwargs.setdefault("default", "")
        super().__init__(*args, **kwargs)
        if self.max_length is not None:
            self.validators.append(validators.MaxLengthValidator(self.max_length))

    def deconstruct(self) -> Any:
        name, path, args, kwargs = super().deconstruct()
        kwargs["purpose"] = self.purpose
        if kwargs.get("default") == "":
            del kwargs["default"]
        return name, path, args, kwargs

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> str | None:
        if not value:
            return value
        return crypto.decrypt(value, purpose=self.purpose)

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        if not value:
            return value
        return crypto.encrypt(value, purpose=self.purpose)

    def to_python(self, value: Any) -> Any:
        # loaddata hands back what value_to_string wrote: the ciphertext.
        value = super().to_python(value)
        return _from_serialised(value, self.purpose) if isinstance(value, str) else value

    def value_to_string(self, obj: models.Model) -> str:
        # Serialisation (dumpdata) writes the ciphertext, never the value in clear.
        return str(self.get_prep_value(self.value_from_object(obj)))


class EncryptedJSONField(_RefusesLookups, _JSONTextField):
    """A JSON value encrypted at rest for `purpose` (canonical_json, then customers.crypto); Python code sees the
    value. Null (SQL NULL) where the field is nullable and the value None; otherwise an empty column reads {}."""

    description = "JSON encrypted at rest (customers.crypto)"

    def __init__(self, *args: Any, purpose: str, **kwargs: Any) -> None:
        self.purpose = purpose
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> Any:
        name, path, args, kwargs = super().deconstruct()
        kwargs["purpose"] = self.purpose
        return name, path, args, kwargs

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> Any:
        if value is None:
            return None if self.null else {}
        if value == "":
            return {}
        # json, not orjson: orjson reads integers over 64 bits as floats. Reads are single records (the admin).
        return json.loads(crypto.decrypt(value, purpose=self.purpose))

    def to_python(self, value: Any) -> Any:
        if isinstance(value, str):
            text = _from_serialised(value, self.purpose)
            return json.loads(text) if text is not value else value
        return value

    def get_prep_value(self, value: Any) -> Any:
        if value is None:
            if self.null:
                return None
            value = {}
        return crypto.encrypt(canonical_json(value), purpose=self.purpose)

    def value_to_string(self, obj: models.Model) -> str:
        return str(self.get_prep_value(self.value_from_object(obj)))

    def formfield(self, **kwargs: Any) -> Any:
        from django.forms import JSONField as JSONFormField

        return super().formfield(**{"form_class": JSONFormField, **kwargs})


def _from_serialised(value: str, purpose: str) -> str:
    """A ciphertext of ours (as dumpdata writes these fields) in clear; any other text as it is."""
    if not value.startswith(f"{crypto.PREFIX}."):
        return value
    try:
        return crypto.decrypt(value, purpose=purpose)
    except crypto.PiiDecryptionError:
        return value


class _DerivedField(_CharField):
    """A column computed from other fields on every save (never edited): `compute(instance)`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 32)
        kwargs.setdefault("blank", True)
        kwargs.setdefault("default", "")
        kwargs.setdefault("editable", False)
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> Any:
        name, path, args, kwargs = super().deconstruct()
        for key, value in (("max_length", 32), ("blank", True), ("default", ""), ("editable", False)):
            if kwargs.get(key) == value:
                del kwargs[key]
        return name, path, args, kwargs

    def compute(self, instance: models.Model) -> str:
        raise NotImplementedError

    def pre_save(self, model_instance: models.Model, add: bool) -> Any:
        value = self.compute(model_instance)
        setattr(model_instance, self.attname, value)
        return value


class BlindIndexField(_DerivedField):
    """The blind index of another field's number (number_key, then crypto.blind_index for `purpose`)."""

    def __init__(self, *args: Any, source: str, purpose: str, **kwargs: Any) -> None:
        self.source = source
        self.purpose = purpose
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> Any:
        name, path, args, kwargs = super().deconstruct()
        kwargs["source"] = self.source
        kwargs["purpose"] = self.purpose
        return name, path, args, kwargs

    def compute(self, instance: models.Model) -> str:
        return crypto.blind_index(number_key(getattr(instance, self.source)), purpose=self.purpose)


class PiiDigestField(_DerivedField):
    """pii_digest of a customer's licence, card number and vendor JSON."""

    def compute(self, instance: models.Model) -> str:
        inst: Any = instance
        return pii_digest(
            inst.drivers_license or "",
            inst.medical_card_number or "",
            canonical_json(inst.raw if inst.raw is not None else {}),
        )


class IndexKeyIdField(_DerivedField):
    """The id of the blind-index key the row's indexes and digest were computed with (the current one on save)."""

    def compute(self, instance: models.Model) -> str:
        return crypto.index_keys().current_id

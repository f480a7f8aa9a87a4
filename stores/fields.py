"""A JSON model field encrypted at rest."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db import models

from stores.crypto import decrypt_json, encrypt_json

if TYPE_CHECKING:
    # To type checkers the attribute is a dict; in the database it is text.
    _TextField = models.TextField[dict[str, Any], dict[str, Any]]
else:
    _TextField = models.TextField


class EncryptedJSONField(_TextField):
    """Stores a JSON value as a Fernet token; Python code only ever sees the decrypted value."""

    description = "JSON encrypted with the POS credentials key"

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> Any:
        if value is None or value == "":
            return {}
        return decrypt_json(value)

    def to_python(self, value: Any) -> Any:
        if isinstance(value, dict):
            return value
        if value is None or value == "":
            return {}
        return decrypt_json(value)

    def get_prep_value(self, value: Any) -> Any:
        if value is None:
            value = {}
        return encrypt_json(value)

    def value_to_string(self, obj: models.Model) -> str:
        # Serialisation (dumpdata) never writes the secret out in clear.
        return self.get_prep_value(self.value_from_object(obj))

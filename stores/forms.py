"""Admin form for stores: POS credentials are write-only."""

from __future__ import annotations

import zoneinfo
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from pos_integrations.records import DEFAULT_TIME_ZONE
from pos_integrations.vendors import (
    OPTIONAL_CREDENTIALS,
    REQUIRED_CREDENTIALS,
    VENDOR_LABELS,
    CredentialsError,
    validate_credentials,
)
from stores.models import Store

# Credential keys in plain words; the rest read well with "_" as a space.
CREDENTIAL_LABELS = {
    "api_key": "API key",
    "client_id": "Client ID",
    "certificate_id": "Certificate ID",
    "organization_id": "Organization ID",
    "private_key": "Private key (PEM)",
    "store_id": "Store ID",
    "company_id": "Company ID",
    "token_url": "Token URL",
}


def credential_keys() -> list[str]:
    """Every credential key any vendor uses, in a stable order."""
    keys: list[str] = []
    for vendor, options in REQUIRED_CREDENTIALS.items():
        for key in [k for option in options for k in option] + list(OPTIONAL_CREDENTIALS[vendor]):
            if key not in keys:
                keys.append(key)
    return keys


def credential_label(key: str) -> str:
    """A credential key in plain words: "API key", "Client secret"."""
    return CREDENTIAL_LABELS.get(key, key.replace("_", " ").capitalize())


def credential_vendors() -> dict[str, list[str]]:
    """For each credential key, the vendors that use it (in vendor order)."""
    users: dict[str, list[str]] = {key: [] for key in credential_keys()}
    for vendor, options in REQUIRED_CREDENTIALS.items():
        for key in {k for option in options for k in option} | set(OPTIONAL_CREDENTIALS[vendor]):
            users[key].append(vendor)
    return users


def _vendor_use(key: str) -> str:
    """Which POS uses a key, and how: 'Treez (one sign-in method), LeafLogix (optional)'."""
    parts = []
    for vendor in credential_vendors()[key]:
        options = REQUIRED_CREDENTIALS[vendor]
        if all(key in option for option in options):
            how = ""
        elif any(key in option for option in options):
            how = " (one sign-in method)"
        else:
            how = " (optional)"
        parts.append(VENDOR_LABELS[vendor] + how)
    return "For " + ", ".join(parts) + "."


def _credential_field(key: str) -> forms.CharField:
    widget: forms.Widget
    if key == "private_key":
        widget = forms.Textarea(attrs={"rows": 3, "autocomplete": "off"})
    else:
        widget = forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"})
    return forms.CharField(
        label=credential_label(key), required=False, widget=widget, strip=True, help_text=_vendor_use(key)
    )


CREDENTIAL_FIELDS = [f"cred_{key}" for key in credential_keys()]


class _StoreAdminFormBase(forms.ModelForm):
    """One write-only field per credential key; a blank field keeps the stored value."""

    pos_base_url = forms.URLField(
        label="POS base URL",
        required=False,
        assume_scheme="https",
        help_text="Leave blank for the vendor's production API; the sandbox and tests point elsewhere.",
    )
    time_zone = forms.ChoiceField(
        required=False,
        choices=lambda: [(name, name) for name in sorted(zoneinfo.available_timezones())],
        initial=DEFAULT_TIME_ZONE,
        help_text=Store._meta.get_field("time_zone").help_text,
    )
    clear_credentials = forms.BooleanField(
        required=False, help_text="Forget every stored credential before applying the fields above."
    )

    class Meta:
        model = Store
        fields = [
            "name",
            "catalog_id",
            "pos_vendor",
            "pos_base_url",
            "time_zone",
            "sync_enabled",
            "sync_interval_minutes",
        ]
        labels = {
            "catalog_id": "Catalog ID",
            "pos_vendor": "POS vendor",
            "time_zone": "Time zone",
            "sync_enabled": "Sync on a schedule",
            "sync_interval_minutes": "Sync every (minutes)",
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        stored: dict[str, str] = self.instance.pos_credentials if self.instance.pk else {}
        for key in credential_keys():
            if stored.get(key):
                field = self.fields[f"cred_{key}"]
                field.help_text = f"Stored — leave blank to keep. {field.help_text}"

    def clean_time_zone(self) -> str:
        # Left out of a submission, the store keeps its zone (a new store gets the default).
        value: str = self.cleaned_data.get("time_zone") or ""
        return value or (self.instance.time_zone if self.instance.pk else DEFAULT_TIME_ZONE)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        vendor = data.get("pos_vendor")
        current: dict[str, str] = {} if data.get("clear_credentials") else dict(self.instance.pos_credentials or {})
        for key in credential_keys():
            value = data.get(f"cred_{key}")
            if value:
                current[key] = value
        if vendor:
            allowed = {k for option in REQUIRED_CREDENTIALS[vendor] for k in option} | set(OPTIONAL_CREDENTIALS[vendor])
            current = {k: v for k, v in current.items() if k in allowed}
            try:
                validate_credentials(vendor, current)
            except CredentialsError as exc:
                for key in exc.missing:
                    self.add_error(f"cred_{key}", "Required for this POS.")
                self.add_error(None, str(exc))
        self.instance.pos_credentials = current
        return data

    def _update_errors(self, errors: ValidationError) -> None:
        # Store.clean() checks the credentials again; clean() above already reported that per field, and the
        # model's error names `pos_credentials`, which is not a field of this form.
        if hasattr(errors, "error_dict"):
            errors.error_dict.pop("pos_credentials", None)
            if not errors.error_dict:
                return
        super()._update_errors(errors)  # type: ignore[misc]


StoreAdminForm = type(
    "StoreAdminForm",
    (_StoreAdminFormBase,),
    {name: _credential_field(name.removeprefix("cred_")) for name in CREDENTIAL_FIELDS},
)

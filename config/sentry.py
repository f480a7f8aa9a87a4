"""Scrubs Sentry events so no customer PII or secret leaves the service."""

from __future__ import annotations

from typing import Any

from customers.db_errors import POSTGRES_DETAIL, without_row_detail

SENSITIVE_KEYS = frozenset(
    {
        "email",
        "phone",
        "first_name",
        "last_name",
        "birthday",
        "drivers_license",
        "medical_card_number",
        "street",
        "postal_code",
        "raw",
        "payload",
        "pos_credentials",
        "credentials",
        "api_key",
        "password",
        "authorization",
        "token",
        "access_token",
        "client_secret",
        "private_key",
        "data",
    }
)
FILTERED = "[Filtered]"


def sentry_options(*, dsn: str, environment: str, traces_sample_rate: float) -> dict[str, Any]:
    """sentry_sdk.init's arguments (settings.py; the capture tests init the SDK with these): no default PII, no
    local variables, every event scrubbed before it leaves."""
    from sentry_sdk.integrations.django import DjangoIntegration

    return {
        "dsn": dsn,
        "integrations": [DjangoIntegration()],
        "send_default_pii": False,
        "environment": environment,
        "traces_sample_rate": traces_sample_rate,
        "include_local_variables": False,
        "before_send": scrub_event,
        # Transactions (SENTRY_TRACES_SAMPLE_RATE > 0) carry the request too: its body, its query string.
        "before_send_transaction": scrub_event,
    }


def _scrub(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: FILTERED if str(k).lower() in SENSITIVE_KEYS else _scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return value


def scrub_event(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
    """Drop request bodies, query strings and local variables that may carry PII or secrets."""
    request = event.get("request")
    if isinstance(request, dict):
        request.pop("data", None)
        request.pop("cookies", None)
        if request.get("query_string"):
            request["query_string"] = FILTERED
        headers = request.get("headers")
        if isinstance(headers, dict):
            request["headers"] = {
                k: FILTERED if k.lower() in {"authorization", "x-api-key", "cookie", "idempotency-key"} else v
                for k, v in headers.items()
            }
    for exc in (event.get("exception") or {}).get("values", []):
        for frame in (exc.get("stacktrace") or {}).get("frames", []):
            frame.pop("vars", None)
        value = exc.get("value")
        if isinstance(value, str) and POSTGRES_DETAIL in value:
            exc["value"] = without_row_detail(value) + POSTGRES_DETAIL + " " + FILTERED
    if "extra" in event:
        event["extra"] = _scrub(event["extra"])
        argv = event["extra"].get("sys.argv")
        if isinstance(argv, list) and len(argv) > 2:  # `manage.py erase_customer --customer-id ...`: the command
            event["extra"]["sys.argv"] = [*argv[:2], FILTERED]
    return event

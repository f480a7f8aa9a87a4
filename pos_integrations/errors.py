"""One error hierarchy for every POS vendor; messages never carry credentials or customer PII."""

from __future__ import annotations

from typing import Any


class PosError(Exception):
    """Base of every error a POS client raises."""

    def __init__(self, message: str, *, vendor: str = "", status_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.vendor = vendor
        self.status_code = status_code


class PosAuthError(PosError):
    """The POS rejected our credentials or token (401/403, or a failed token request)."""


class PosRateLimited(PosError):
    """The POS kept answering 429 beyond our retry budget."""

    def __init__(
        self, message: str, *, vendor: str = "", status_code: int | None = 429, retry_after: float | None = None
    ) -> None:
        super().__init__(message, vendor=vendor, status_code=status_code)
        self.retry_after = retry_after


class PosUnavailable(PosError):
    """The POS could not be reached or kept failing: 5xx after retries, timeouts, connection errors;
    `deadline_passed` when it did not answer within the call's deadline (trying again at once is no use)."""

    def __init__(
        self, message: str, *, vendor: str = "", status_code: int | None = None, deadline_passed: bool = False
    ) -> None:
        super().__init__(message, vendor=vendor, status_code=status_code)
        self.deadline_passed = deadline_passed


class PosBadResponse(PosError):
    """The POS answered something we cannot use: malformed JSON or envelope, a pagination loop."""


class PosUnreadableCustomer(PosBadResponse):
    """The POS answered a customer record we cannot read: why (`reason`), its POS id where readable, and the record
    as received (`payload`), so that what the POS answered to a create can be kept for staff."""

    def __init__(
        self,
        message: str,
        *,
        vendor: str = "",
        status_code: int | None = None,
        reason: str = "",
        customer_id: str | None = None,
        payload: Any = None,
    ) -> None:
        super().__init__(message, vendor=vendor, status_code=status_code)
        self.reason = reason
        self.customer_id = customer_id
        self.payload = payload


class PosNotFound(PosError):
    """The POS has no such resource (404)."""


class PosDuplicate(PosError):
    """The POS already has this customer; `existing_customer_id` is its id where known."""

    def __init__(
        self,
        message: str,
        *,
        vendor: str = "",
        status_code: int | None = None,
        existing_customer_id: str | None = None,
    ) -> None:
        super().__init__(message, vendor=vendor, status_code=status_code)
        self.existing_customer_id = existing_customer_id


class PosValidationError(PosError):
    """The POS rejected the data we sent; `field_errors` maps our field names (or the vendor's) to messages."""

    def __init__(
        self,
        message: str,
        *,
        vendor: str = "",
        status_code: int | None = None,
        field_errors: dict[str, list[str]] | None = None,
    ) -> None:
        super().__init__(message, vendor=vendor, status_code=status_code)
        self.field_errors: dict[str, list[str]] = field_errors or {}


class PosNotSupported(PosError):
    """The vendor (or this client) does not offer the operation."""


class RecordParseError(ValueError):
    """One vendor record could not be turned into a CustomerRecord (internal; surfaces as RecordError)."""

    def __init__(self, reason: str, *, customer_id: str | None = None, payload: Any = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.customer_id = customer_id
        self.payload = payload

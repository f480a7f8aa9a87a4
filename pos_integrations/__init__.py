"""Clients for the five POS vendors behind one interface; no Django models here."""

from .base import PosClient
from .deadlines import Deadlines
from .errors import (
    PosAuthError,
    PosBadResponse,
    PosDuplicate,
    PosError,
    PosNotFound,
    PosNotSupported,
    PosRateLimited,
    PosUnavailable,
    PosUnreadableCustomer,
    PosValidationError,
)
from .records import DEFAULT_TIME_ZONE, Capabilities, CustomerInput, CustomerPage, CustomerRecord, RecordError
from .registry import CLIENTS, get_client
from .vendors import VENDOR_LABELS, VENDORS, CredentialsError, validate_credentials

__all__ = [
    "CLIENTS",
    "DEFAULT_TIME_ZONE",
    "VENDORS",
    "VENDOR_LABELS",
    "Capabilities",
    "CredentialsError",
    "CustomerInput",
    "CustomerPage",
    "CustomerRecord",
    "Deadlines",
    "PosAuthError",
    "PosBadResponse",
    "PosClient",
    "PosDuplicate",
    "PosError",
    "PosNotFound",
    "PosNotSupported",
    "PosRateLimited",
    "PosUnavailable",
    "PosUnreadableCustomer",
    "PosValidationError",
    "RecordError",
    "get_client",
    "validate_credentials",
]

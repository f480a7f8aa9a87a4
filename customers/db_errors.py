"""What a database error may tell about a customer row, and how to keep that out of messages we store or send.

Plain Python (no Django import): the Sentry scrubber in config and the sync engine both use it.
"""

from __future__ import annotations

# Where PostgreSQL's error text starts quoting the values of the row at fault ("Failing row contains (...)").
POSTGRES_DETAIL = "\nDETAIL:"


def without_row_detail(message: str) -> str:
    """A database error's message without PostgreSQL's DETAIL (customer data of the row at fault)."""
    return message.split(POSTGRES_DETAIL)[0]

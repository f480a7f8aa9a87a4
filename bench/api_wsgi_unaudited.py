"""The service's WSGI application with API answers' access events not written: the baseline of
`bench_api.py --compare-pii` (a key with `pii`, answers whole, no INSERT). Bench only."""

from __future__ import annotations

from typing import Any

from config.wsgi import application  # first: sets Django up

import customers.api.pii  # isort: skip


def _not_recorded(**_: Any) -> int:
    return 0


customers.api.pii.access_events_record_answer = _not_recorded  # type: ignore[assignment]

__all__ = ["application"]

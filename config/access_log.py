"""Access logs without query values: what a URL's query holds (a phone, an email, a licence number looked up; the
older endpoint's `?api_key=`; an admin search) never reaches a log line. A request target keeps its path and its
parameters' names, each value replaced by `…`, so a log still says which lookup ran.

Used by the development server's log (`django.server`, settings.LOGGING) and by gunicorn's access log
(gunicorn.conf.py in the repository's root). A proxy in front should do the same (README, "Deployment")."""

from __future__ import annotations

import logging
import re
from urllib.parse import parse_qsl

REDACTED = "…"
# A parameter name is kept when it looks like one; anything else a client put there could be a value.
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]{0,39}")
_REQUEST_LINE = re.compile(r"^(?P<method>\S+) (?P<target>\S+)(?P<rest> .*)?$", re.DOTALL)


def redact_target(target: str) -> str:
    """`/api/v1/customers?phone=5551234567&page_size=5` → `/api/v1/customers?phone=…&page_size=…`."""
    path, sep, query = target.partition("?")
    if not sep:
        return target
    names = [name if _NAME.fullmatch(name) else REDACTED for name, _ in parse_qsl(query, keep_blank_values=True)]
    return f"{path}?{'&'.join(f'{name}={REDACTED}' for name in names)}" if names else f"{path}?{REDACTED}"


def redact_request_line(line: str) -> str:
    """`GET /path?query HTTP/1.1` with its target's values redacted; a line that is not one, whole."""
    match = _REQUEST_LINE.match(line)
    if match is None:
        return REDACTED if "?" in line else line
    return f"{match['method']} {redact_target(match['target'])}{match['rest'] or ''}"


class RedactQueryFilter(logging.Filter):
    """For `django.server` (runserver's access log): its records' first argument is the request line."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and record.args and isinstance(record.args[0], str):
            record.args = (redact_request_line(record.args[0]), *record.args[1:])
        return True

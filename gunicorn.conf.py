"""gunicorn's configuration, read when gunicorn runs from the repository's root: `gunicorn config.wsgi`.

The access log goes to standard output with query values redacted (config/access_log.py): lookups by phone,
email or licence and the older endpoint's `?api_key=` never reach it. Workers, bind address and timeout come
from the environment (README, "Deployment")."""

from __future__ import annotations

import os
from typing import Any

from gunicorn.glogging import Logger

from config.access_log import REDACTED, redact_request_line, redact_target

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
# A request's own deadlines are shorter (the POS's: at most 15 s); this bounds anything else.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "10"))
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-")
# Headers that carry the API key, never logged even if a format names them.
SECRET_HEADERS = frozenset({"{authorization}i", "{x-api-key}i", "{cookie}i"})


class RedactingLogger(Logger):
    """gunicorn's logger, its access-log atoms without query values or secret headers."""

    def atoms(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> dict[str, Any]:
        atoms: dict[str, Any] = super().atoms(resp, req, environ, request_time)
        atoms["r"] = redact_request_line(atoms["r"])
        atoms["q"] = redact_target(f"?{atoms['q']}")[1:] if atoms.get("q") else atoms.get("q")
        if atoms.get("f") not in (None, "-"):
            atoms["f"] = redact_target(atoms["f"])
        for name in SECRET_HEADERS & atoms.keys():
            atoms[name] = REDACTED
        return atoms


logger_class = RedactingLogger

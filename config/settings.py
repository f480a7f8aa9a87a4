"""Customer Flow settings: one module, everything read from the environment (see .env.example)."""

from __future__ import annotations

import copy
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from pos_integrations.ratelimit import parse_overrides
from pos_integrations.vendors import VENDORS

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
# A local .env is a convenience for development; real deployments set the environment.
if (BASE_DIR / ".env").is_file():
    env.read_env(str(BASE_DIR / ".env"), overwrite=False)


def project_path(value: str | Path) -> str:
    """A relative path from the environment (or .env) is relative to the project, not to the current directory."""
    path = Path(value)
    return str(path if path.is_absolute() else BASE_DIR / path)


DEBUG: bool = env.bool("DEBUG", default=False)

SECRET_KEY: str = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off (see .env.example).")
    SECRET_KEY = "django-insecure-development-only-key"

# Development always answers on loopback (scripts/run), whatever else ALLOWED_HOSTS names.
ALLOWED_HOSTS: list[str] = env.list("ALLOWED_HOSTS", default=[])
if DEBUG:
    ALLOWED_HOSTS += [host for host in ("localhost", "127.0.0.1", "[::1]") if host not in ALLOWED_HOSTS]
CSRF_TRUSTED_ORIGINS: list[str] = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.forms",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "pos_integrations.apps.PosIntegrationsConfig",
    "pos_sandbox.apps.PosSandboxConfig",  # only its `pos_sandbox` command; production code never imports it
    "stores.apps.StoresConfig",
    "customers.apps.CustomersConfig",
    "syncs.apps.SyncsConfig",
    "django_q",  # after syncs, whose `qcluster` (django-q2's, with a prompt stop: syncs.cluster) comes first
]

# Sessions, the logged-in user and messages are for the admin: REST API requests (API keys) skip them.
MIDDLEWARE = [
    "config.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "config.middleware.ApiBodyLimitMiddleware",
    "config.middleware.BrowserSessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "config.middleware.BrowserAuthenticationMiddleware",
    "config.middleware.BrowserMessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# Form widgets render from the same template directories as pages, so templates/ can correct a widget of
# Django's (admin/widgets/split_datetime.html labels its date and time inputs).
FORM_RENDERER = "django.forms.renderers.TemplatesSetting"

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------------
VAR_DIR.mkdir(exist_ok=True)
DATABASES = {"default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    if DATABASES["default"]["NAME"] not in ("", ":memory:"):
        DATABASES["default"]["NAME"] = project_path(DATABASES["default"]["NAME"])
    # WAL lets the web server read while the sync worker writes; IMMEDIATE avoids lock upgrades failing.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
    DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", env.bool("CONN_HEALTH_CHECKS", default=True))
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        # Django's backend with a health check that needs no round trip while the server has said nothing
        # (config/postgresql/base.py).
        DATABASES["default"]["ENGINE"] = "config.postgresql"
        # Server-side parameter binding + prepared statements (psycopg 3): a statement run DB_PREPARE_THRESHOLD
        # times on a connection is prepared once and then only executed, saving PostgreSQL the parse and plan.
        # Not behind a transaction-mode connection pooler that does not track prepared statements.
        _pg_options = DATABASES["default"].setdefault("OPTIONS", {})
        _pg_options.setdefault("server_side_binding", env.bool("DB_SERVER_SIDE_BINDING", default=False))
        _prepare_threshold = env.str("DB_PREPARE_THRESHOLD", default="")
        if _pg_options["server_side_binding"] and _prepare_threshold:
            _pg_options.setdefault("prepare_threshold", int(_prepare_threshold))
# The POS rate limiter's own connection to the same database (stores.ratelimit): never the default connection,
# which may have a page's COMMIT in flight; on SQLite it gives up on the write lock after 2 s.
DATABASES["pos_ratelimit"] = {**copy.deepcopy(DATABASES["default"]), "TEST": {"MIRROR": "default"}}
if DATABASES["pos_ratelimit"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["pos_ratelimit"]["OPTIONS"]["timeout"] = 2
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
# The admin writes times to the second with their time zone, and ISO dates (config/formats/en/formats.py).
FORMAT_MODULE_PATH = ["config.formats"]

STATIC_URL = "static/"
STATIC_ROOT = project_path(env.str("STATIC_ROOT", default=str(VAR_DIR / "static")))

# --- POS credentials encryption ---------------------------------------------------------------------
# Comma-separated Fernet keys: the first encrypts, all decrypt (prepend a new key to rotate, then run
# `manage.py rotate_pos_credentials`). Generate one with `manage.py generate_credentials_key`.
POS_CREDENTIALS_KEYS: list[str] = env.list("POS_CREDENTIALS_KEYS", default=[])
if not POS_CREDENTIALS_KEYS:
    if not DEBUG:
        raise ImproperlyConfigured("POS_CREDENTIALS_KEYS must be set when DEBUG is off (see .env.example).")
    # Development only: a key derived from the (development) SECRET_KEY.
    import base64
    import hashlib

    POS_CREDENTIALS_KEYS = [base64.urlsafe_b64encode(hashlib.sha256(SECRET_KEY.encode()).digest()).decode()]


# --- Personal data at rest (customers.crypto) ------------------------------------------------------
# Comma-separated `<key id>:<base64 32-byte key>` entries (`manage.py generate_pii_key` prints one). The first
# encrypts licence and medical card numbers and the vendor JSON; every key decrypts (the key id is in each
# ciphertext). To rotate: put a new key first, run `manage.py rotate_pii_keys`, then drop the old key.
def _pii_keys(name: str) -> list[str]:
    keys: list[str] = env.list(name, default=[])
    if keys:
        return keys
    if not DEBUG:
        raise ImproperlyConfigured(f"{name} must be set when DEBUG is off (see .env.example).")
    # Development only: a key derived from the (development) SECRET_KEY, its id "dev".
    import base64
    import hashlib

    return ["dev:" + base64.urlsafe_b64encode(hashlib.sha256(f"{name}:{SECRET_KEY}".encode()).digest()).decode()]


PII_ENCRYPTION_KEYS: list[str] = _pii_keys("PII_ENCRYPTION_KEYS")
# The same form, for the blind indexes that exact lookups by licence and card number use (keys of their own).
PII_BLIND_INDEX_KEYS: list[str] = _pii_keys("PII_BLIND_INDEX_KEYS")

# --- REST API -------------------------------------------------------------------------------------
# The largest request body taken (bytes); the API's largest is a few KB. Over it: 413 on the API, before reading it.
DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024
# Every endpoint needs an API key (api.authentication); views opt out explicitly (health, schema, docs).
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["api.authentication.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["api.permissions.HasApiKey"],
    "DEFAULT_THROTTLE_CLASSES": ["api.throttling.ApiKeyRateThrottle"],
    # Counted in the default cache: per process with the local-memory cache, shared once CACHES points at Redis.
    "DEFAULT_THROTTLE_RATES": {"api_key": env.str("API_THROTTLE_RATE", default="1200/min")},
    # DRF's JSON, encoded with orjson; negotiation that settles the usual Accept headers without parsing them.
    "DEFAULT_RENDERER_CLASSES": ["api.renderers.FastJSONRenderer"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "api.renderers.ContentNegotiation",
    # JSON bodies decoded by orjson, nested at most api.parsers.MAX_DEPTH deep.
    "DEFAULT_PARSER_CLASSES": ["api.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "api.schema.AutoSchema",
    "EXCEPTION_HANDLER": "api.errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
    # Ours (api.key_cache): seconds a worker keeps a looked-up API key, saving a query per request; a
    # key revoked or re-scoped in another process takes effect there up to this late. 0: look up every time.
    "API_KEY_CACHE_SECONDS": env.float("API_KEY_CACHE_SECONDS", default=0),
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Customer Flow API",
    "DESCRIPTION": (
        "Customers of every store, mirrored from their POS. Every endpoint needs an API key, sent as "
        "`Authorization: Api-Key <key>` (or `X-API-Key: <key>`); a key reaches only its stores. "
        'Every error has the same shape: `{"error": {"code", "message", "fields"?, "retry_after"?}}`. '
        "Times in answers are ISO 8601 in UTC, to the second: `2026-11-24T10:00:04Z`."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_AUTHENTICATION": [],
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SWAGGER_UI_DIST": "SIDECAR",
    # Deep links put a link inside each operation's toggle button: nested controls screen readers cannot use.
    "SWAGGER_UI_SETTINGS": {"deepLinking": False},
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "api.schema.body_from_query",
    ],
}

# --- Customer lists -------------------------------------------------------------------------------
# PostgreSQL: each worker keeps the SQL of each list shape once the ORM has built it (customers/list_sql.py) and
# runs it for later lists of that shape, saving building the queryset (~0.7 ms a list). Off: the ORM builds each.
CUSTOMER_LIST_SQL_CACHE: bool = env.bool("CUSTOMER_LIST_SQL_CACHE", default=True)

# --- Creates --------------------------------------------------------------------------------------
# A create request that died (its worker killed) leaves its Idempotency-Key in progress this long; then a retry
# with the key takes it over and looks for the customer the dead request may have created (in the mirror, then
# at the POS) before creating one. Longer than a create's own POS deadline, so a live request is not overtaken.
IDEMPOTENCY_LEASE_SECONDS: int = env.int("IDEMPOTENCY_LEASE_SECONDS", default=60)

# --- Caches ---------------------------------------------------------------------------------------
REDIS_URL: str = env.str("REDIS_URL", default="")
# "default" counts API throttles; "queue" holds django-q2's cluster status, which the web process reads for
# the health URL, so it must be shared between processes: a file cache on one machine, Redis beyond.
if REDIS_URL:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL},
        "queue": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL},
    }
else:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "queue": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": project_path(env.str("QUEUE_CACHE_DIR", default=str(VAR_DIR / "queue-cache"))),
        },
    }

# --- Task queue (django-q2) -----------------------------------------------------------------------
SYNC_TIMEOUT_SECONDS: int = env.int("SYNC_TIMEOUT_SECONDS", default=3600)
Q_CLUSTER: dict[str, object] = {
    "name": "customer_sync",
    "workers": env.int("Q_WORKERS", default=2),
    # A sync longer than `timeout` is killed; `retry` must exceed it or the task would run twice.
    "timeout": SYNC_TIMEOUT_SECONDS,
    "retry": SYNC_TIMEOUT_SECONDS + 300,
    "max_attempts": 1,
    "catch_up": False,
    "save_limit": 1000,
    "ack_failures": True,
    "label": "Task queue",
    "cache": "queue",
    # Every cluster runs django-q2's scheduler unless told not to; several on one broker are safe (syncs.slots).
    "scheduler": env.bool("Q_SCHEDULER", default=True),
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"
    Q_CLUSTER["poll"] = 1

# --- POS call deadlines ----------------------------------------------------------------------------
# The total time one POS call may take, retries, backoff and Retry-After waits included (README, "Deadlines"):
# a live lookup (then the API answers from the mirror with a warning), the admin's connection test, a create
# (then 503), one page of a sync (then the sync fails with PosUnavailable and frees its worker).
POS_LOOKUP_DEADLINE_SECONDS: float = env.float("POS_LOOKUP_DEADLINE_SECONDS", default=5.0)
POS_CONNECTION_TEST_DEADLINE_SECONDS: float = env.float("POS_CONNECTION_TEST_DEADLINE_SECONDS", default=10.0)
POS_CREATE_DEADLINE_SECONDS: float = env.float("POS_CREATE_DEADLINE_SECONDS", default=15.0)
POS_SYNC_PAGE_DEADLINE_SECONDS: float = env.float("POS_SYNC_PAGE_DEADLINE_SECONDS", default=45.0)
# --- POS rate limits --------------------------------------------------------------------------------
# A budget per POS credential from each vendor's published limit (pos_integrations.vendors), shared by every process
# (Redis when REDIS_URL is set, else the database): a sync's pages leave POS_RATE_LIMIT_RESERVE of each window to live
# lookups, creates and connection tests. POS_RATE_LIMITS overrides a vendor's limit ("leaflogix=100/min,treez=20/s";
# "VENDOR=off": none fixed, only what 429s teach). README, "POS rate limits".
POS_RATE_LIMIT_ENABLED: bool = env.bool("POS_RATE_LIMIT_ENABLED", default=True)
POS_RATE_LIMIT_RESERVE: float = env.float("POS_RATE_LIMIT_RESERVE", default=0.1)
if not 0 <= POS_RATE_LIMIT_RESERVE < 1:
    raise ImproperlyConfigured("POS_RATE_LIMIT_RESERVE is a share of the budget: at least 0 and below 1, e.g. 0.1.")
try:
    POS_RATE_LIMITS = parse_overrides(env.str("POS_RATE_LIMITS", default=""), VENDORS)
except ValueError as _exc:
    raise ImproperlyConfigured(f"POS_RATE_LIMITS: {_exc}") from None
# An in-progress sync with no heartbeat for this long shows as stalled (dashboard, /health/); queued work
# waiting longer than HEALTH_QUEUE_BACKLOG_SECONDS is a backlog (/health/).
SYNC_STALL_SECONDS: int = env.int("SYNC_STALL_SECONDS", default=180)
HEALTH_QUEUE_BACKLOG_SECONDS: int = env.int("HEALTH_QUEUE_BACKLOG_SECONDS", default=300)

# --- Sync engine ----------------------------------------------------------------------------------
SYNC_LEASE_SECONDS: int = env.int("SYNC_LEASE_SECONDS", default=600)
# A scheduled run that has not claimed its slot this long after it was due is taken as lost (a worker died with
# its task) and caught up once (syncs.slots). Above the scheduler's 30 s cycle plus the usual queue wait.
SYNC_CATCH_UP_GRACE_SECONDS: int = env.int("SYNC_CATCH_UP_GRACE_SECONDS", default=60)
SYNC_RATE_LIMIT_BUDGET_SECONDS: int = env.int("SYNC_RATE_LIMIT_BUDGET_SECONDS", default=120)
# The longest single wait for a POS's rate limit (a 429's Retry-After) a sync sleeps through in its worker; a longer
# one stops the sync at its checkpoint and frees the worker, and the every-minute catch-up carries it on once the
# wait is over (syncs.services.sync_resume_deferred).
SYNC_RATE_LIMIT_HOLD_SECONDS: int = env.int("SYNC_RATE_LIMIT_HOLD_SECONDS", default=30)
# Listing pages a sync may have requested at once from its POS where the vendor's paging lets the next ones be
# computed (pages are still written and checkpointed in order); 1 fetches them one after the other. The default
# comes from the WAN benchmark (bench/README.md, "WAN benchmark").
SYNC_PAGES_IN_FLIGHT: int = env.int("SYNC_PAGES_IN_FLIGHT", default=4)
if not 1 <= SYNC_PAGES_IN_FLIGHT <= 16:
    raise ImproperlyConfigured("SYNC_PAGES_IN_FLIGHT is a number of requests from 1 to 16 (1: one at a time).")
SYNC_MAX_INVALID_RATIO: float = env.float("SYNC_MAX_INVALID_RATIO", default=0.05)

# --- Personal data --------------------------------------------------------------------------------
# Who saw licence and medical card numbers, birthdays or vendor JSON unmasked (customers.AccessEvent) is kept this
# many days, then pruned by the daily `customers.tasks.prune_access_log` schedule.
PII_ACCESS_RETENTION_DAYS: int = env.int("PII_ACCESS_RETENTION_DAYS", default=365)
# An API answer's access event is written by a thread of its process with the others gathered meanwhile, every
# PII_ACCESS_WRITE_SECONDS or once PII_ACCESS_WRITE_EVENTS wait (one INSERT for many answers); 0 writes each
# answer's event on its own, before the worker takes its next request. What each costs and risks:
# customers.pii_access.AccessEventWriter.
PII_ACCESS_WRITE_SECONDS: float = env.float("PII_ACCESS_WRITE_SECONDS", default=0.2)
PII_ACCESS_WRITE_EVENTS: int = env.int("PII_ACCESS_WRITE_EVENTS", default=100)
if not 0 <= PII_ACCESS_WRITE_SECONDS <= 60 or PII_ACCESS_WRITE_EVENTS < 1:
    raise ImproperlyConfigured(
        "PII_ACCESS_WRITE_SECONDS is from 0 (each event on its own) to 60 seconds, PII_ACCESS_WRITE_EVENTS at least 1."
    )

# --- Logging and Sentry ---------------------------------------------------------------------------
LOG_LEVEL: str = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "django.server": {
            "()": "django.utils.log.ServerFormatter",
            "format": "[{server_time}] {message}",
            "style": "{",
        },
    },
    # The development server's access log (Django's own, as django.utils.log.DEFAULT_LOGGING has it) without query
    # values: no phone, email or `?api_key=` looked up in a URL reaches it (config.access_log).
    "filters": {"redact_query": {"()": "config.access_log.RedactQueryFilter"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
        "django.server": {"class": "logging.StreamHandler", "formatter": "django.server", "filters": ["redact_query"]},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        "django.server": {"handlers": ["django.server"], "level": "INFO", "propagate": False},
    },
}

SENTRY_DSN: str = env.str("SENTRY_DSN", default="")
if SENTRY_DSN:
    import sentry_sdk

    from config.sentry import sentry_options

    sentry_sdk.init(
        **sentry_options(
            dsn=SENTRY_DSN,
            environment=env.str("SENTRY_ENVIRONMENT", default="production"),
            traces_sample_rate=env.float("SENTRY_TRACES_SAMPLE_RATE", default=0.0),
        )
    )

# --- HTTPS ----------------------------------------------------------------------------------------
# Off by default so that plain-HTTP development works; production behind HTTPS turns them on (README,
# "Configuration"), and `manage.py check --deploy` is then clean.
SECURE_SSL_REDIRECT: bool = env.bool("SECURE_SSL_REDIRECT", default=False)
# A load balancer probes the health check over plain HTTP inside the network.
SECURE_REDIRECT_EXEMPT = [r"^health/$"]
SECURE_HSTS_SECONDS: int = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS: bool = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD: bool = env.bool("SECURE_HSTS_PRELOAD", default=False)
SESSION_COOKIE_SECURE: bool = env.bool("SESSION_COOKIE_SECURE", default=False)
CSRF_COOKIE_SECURE: bool = env.bool("CSRF_COOKIE_SECURE", default=False)
# Behind a proxy that terminates TLS: the header it sets on every request, and the value meaning HTTPS, e.g.
# "HTTP_X_FORWARDED_PROTO,https". Only when the proxy always sets (or overwrites) that header itself.
_proxy_ssl_header: list[str] = env.list("SECURE_PROXY_SSL_HEADER", default=[])
if _proxy_ssl_header:
    if len(_proxy_ssl_header) != 2 or not _proxy_ssl_header[0].startswith("HTTP_"):
        raise ImproperlyConfigured(
            "SECURE_PROXY_SSL_HEADER is HEADER,VALUE with the header as Django names it, "
            "e.g. HTTP_X_FORWARDED_PROTO,https (see .env.example)."
        )
    SECURE_PROXY_SSL_HEADER = (_proxy_ssl_header[0], _proxy_ssl_header[1])

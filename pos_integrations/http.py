"""The one HTTP layer every POS client uses: pooled session, timeouts, retries, Retry-After, tokens, errors, logs."""

from __future__ import annotations

import codecs
import json
import logging
import math
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import orjson
import requests
from requests.adapters import HTTPAdapter

from .deadlines import DEFAULT_DEADLINES, MIN_TRY_SECONDS, Deadline
from .errors import (
    PosAuthError,
    PosBadResponse,
    PosDuplicate,
    PosError,
    PosNotFound,
    PosNotSupported,
    PosRateLimited,
    PosUnavailable,
    PosValidationError,
)
from .ratelimit import BudgetUnavailable, RateLimiter, http_date_seconds

logger = logging.getLogger("pos_integrations.http")

Timeout = tuple[float, float]
DEFAULT_TIMEOUT: Timeout = (5.0, 30.0)
DEFAULT_MAX_WAIT_SECONDS = 60.0
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504}) | frozenset(range(505, 600))
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
ErrorHook = Callable[[requests.Response, Any], PosError | None]


class Auth:
    """How a vendor authenticates a request; the default sends nothing."""

    refreshable = False

    def headers(self, http: HttpClient, method: str, url: str) -> dict[str, str]:
        """Headers to add to this request."""
        return {}

    def invalidate(self) -> None:
        """Forget any cached token (after a 401)."""


class StaticAuth(Auth):
    """Fixed headers on every request (Basic keys, partner keys)."""

    def __init__(self, headers: Mapping[str, str]) -> None:
        self._headers = dict(headers)

    def headers(self, http: HttpClient, method: str, url: str) -> dict[str, str]:
        return dict(self._headers)

    def __repr__(self) -> str:
        return f"StaticAuth(<{len(self._headers)} headers hidden>)"


class TokenAuth(Auth):
    """A bearer-style token fetched once, cached until shortly before expiry, refreshed once on a 401."""

    refreshable = True

    def __init__(
        self,
        fetch: Callable[[HttpClient], tuple[str, float | None]],
        header: Callable[[str], dict[str, str]],
        *,
        default_ttl: float,
        clock: Callable[[], float] = time.monotonic,
        skew: float = 60.0,
    ) -> None:
        self._fetch = fetch
        self._header = header
        self._default_ttl = default_ttl
        self._clock = clock
        self._skew = skew
        self._token: str | None = None
        self._expires_at = 0.0
        self.fetch_count = 0

    def headers(self, http: HttpClient, method: str, url: str) -> dict[str, str]:
        if self._token is None or self._clock() >= self._expires_at:
            token, ttl = self._fetch(http)
            self.fetch_count += 1
            lifetime = ttl if ttl and ttl > 0 else self._default_ttl
            self._token = token
            self._expires_at = self._clock() + max(lifetime - self._skew, lifetime / 2)
        return self._header(self._token)

    def invalidate(self) -> None:
        self._token = None

    def __repr__(self) -> str:
        return "TokenAuth(<token hidden>)"


def request_token(
    http: HttpClient, url: str, form: Mapping[str, str], *, log_path: str | None = None
) -> tuple[str, float | None]:
    """POST a form to a token endpoint; (access_token, expires_in). Any refusal is a PosAuthError."""
    try:
        body = http.post_json(url, data=form, authenticate=False, idempotent=True, log_path=log_path)
    except (PosValidationError, PosNotFound, PosAuthError) as exc:
        raise PosAuthError(
            f"{http.label} refused to issue a token", vendor=http.vendor, status_code=exc.status_code
        ) from None
    token = body.get("access_token") if isinstance(body, Mapping) else None
    refused = isinstance(body, Mapping) and str(body.get("resultCode", "SUCCESS")).upper() != "SUCCESS"
    if not token or refused:
        raise PosAuthError(f"{http.label} did not issue a token", vendor=http.vendor)
    expires = body.get("expires_in")
    try:
        return str(token), float(expires) if expires is not None else None
    except (TypeError, ValueError):
        return str(token), None


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date; None if absent or unreadable."""
    if not value:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        date_seconds = http_date_seconds(text, now)
        if date_seconds is None:
            return None
        seconds = date_seconds
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


class TooDeep(ValueError):
    """JSON nested deeper than the decoders read (orjson: 1024 levels; json: Python's recursion limit)."""


def loads(response: requests.Response) -> Any:
    """The body as JSON: orjson for UTF-8 JSON (listing pages are large: it decodes them several times faster),
    json for the rest (NaN, "\\ud800" escapes, bytes that are not UTF-8), requests' decoder for other charsets.
    Raises ValueError when it is not JSON.

    A UTF-8 body with a few bytes that are not UTF-8 (inside a record's text) is read with those bytes kept as
    lone surrogates (`surrogateescape`) rather than replaced: the record holding them is refused by the
    mirror's writer and quarantined for staff, the rest of the page is written, nothing is silently altered."""
    content = response.content
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError:
        pass
    try:
        encoding = response.encoding
        if encoding is None or codecs.lookup(encoding).name == "utf-8":
            try:
                return json.loads(content.decode("utf-8", "surrogateescape"))
            except ValueError:
                pass  # a UTF-16 or BOM-prefixed body, say: requests' decoder knows those
        return response.json()
    except RecursionError:
        raise TooDeep("JSON nested too deeply") from None
    except LookupError:
        raise ValueError(f"unknown charset {response.encoding!r}") from None


def response_json(response: requests.Response) -> Any:
    """The decoded body, None when empty, {} when not JSON (for error bodies)."""
    if not response.content:
        return None
    try:
        return loads(response)
    except ValueError:
        return {}


def field_errors_from(body: Any) -> dict[str, list[str]]:
    """Field errors out of the error shapes the vendors use (Blaze field/message, `errors` lists or dicts…)."""
    result: dict[str, list[str]] = {}

    def add(field: Any, message: Any) -> None:
        name = str(field) if field not in (None, "") else "__all__"
        result.setdefault(name, []).append(str(message) if message not in (None, "") else "invalid")

    if not isinstance(body, Mapping):
        return result
    errors = body.get("errors")
    if isinstance(errors, Mapping):
        for field, messages in errors.items():
            for message in messages if isinstance(messages, list) else [messages]:
                add(field, message)
    elif isinstance(errors, list):
        for item in errors:
            if isinstance(item, Mapping):
                add(item.get("field") or item.get("param"), item.get("message") or item.get("msg"))
            else:
                add(None, item)
    if not result:
        message = body.get("message") or body.get("Message") or body.get("resultReason") or body.get("error")
        if message:
            add(body.get("field"), message)
    return result


class HttpClient:
    """Session, base URL, timeouts, retries with backoff, Retry-After, auth hook, error mapping and logging."""

    def __init__(
        self,
        *,
        vendor: str,
        label: str,
        base_url: str,
        store_label: str | None = None,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        max_wait_seconds: float = DEFAULT_MAX_WAIT_SECONDS,
        timeout: Timeout = DEFAULT_TIMEOUT,
        max_retries: int = 4,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        retry_after_cap: float = 120.0,
        wall_clock: Callable[[], float] = time.time,
        rng: Callable[[], float] = random.random,
        error_hook: ErrorHook | None = None,
        accept: str = "application/json",
        clock: Callable[[], float] = time.monotonic,
        default_deadline: float = DEFAULT_DEADLINES.page,
    ) -> None:
        self.vendor = vendor
        self.label = label
        self.base_url = base_url.rstrip("/")
        self.store_label = store_label or ""
        self.session = session or self._new_session()
        self._shared_session = session is not None  # a caller's session (tests) serves every thread
        self.sleep = sleep
        self.max_wait_seconds = max_wait_seconds
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.retry_after_cap = retry_after_cap
        self.wall_clock = wall_clock
        self.rng = rng
        self.error_hook = error_hook
        self.accept = accept
        self.auth: Auth = Auth()
        self.field_names: Mapping[str, str] = {}
        self.clock = clock
        self.default_deadline = default_deadline
        self._scope = threading.local()  # the deadline of the call this thread is making
        self.limiter: RateLimiter | None = None  # the credential's rate budget (pos_integrations.ratelimit)

    @contextmanager
    def deadline(self, seconds: float, *, interactive: bool = False) -> Iterator[Deadline]:
        """Make the requests inside one call with a total deadline of `seconds`: every try's timeouts are cut to
        the time left, and no retry or wait goes past it. Inside another call's deadline (a create's read-back,
        a token fetched for a lookup), that one holds. `interactive`: someone waits for this call (the rate
        limiter serves it before background calls)."""
        outer: Deadline | None = getattr(self._scope, "deadline", None)
        if outer is not None:
            yield outer
            return
        current = Deadline(seconds, clock=self.clock, interactive=interactive)
        self._scope.deadline = current
        try:
            yield current
        finally:
            self._scope.deadline = None

    @contextmanager
    def own_session(self) -> Iterator[None]:
        """This thread's requests inside the block go through a session of its own (requests.Session is not
        guaranteed thread-safe), closed when the block ends: for the threads that fetch a listing's pages ahead."""
        if self._shared_session:
            yield
            return
        self._scope.session = session = self._new_session()
        try:
            yield
        finally:
            self._scope.session = None
            session.close()
            if self.limiter is not None:
                self.limiter.thread_done()

    @staticmethod
    def _new_session() -> requests.Session:
        session = requests.Session()
        from .transport import DeadlineAdapter  # every read of an answer within the call's deadline

        adapter: HTTPAdapter = DeadlineAdapter(pool_connections=4, pool_maxsize=16, max_retries=0)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        return session

    def url(self, path: str) -> str:
        """An absolute URL for a vendor path (absolute URLs pass through)."""
        if path.startswith(("http://", "https://")):
            return path
        return self.base_url + path

    def backoff(self, attempt: int) -> float:
        """Exponential backoff with jitter: between half and all of base * 2**attempt, capped."""
        ceiling = min(self.backoff_cap, self.backoff_base * (2**attempt))
        return ceiling * (0.5 + self.rng() / 2)

    def _log(self, level: int, message: str, method: str, log_path: str, **extra: Any) -> None:
        logger.log(
            level,
            "%s store=%s %s %s " + message,
            self.vendor,
            self.store_label or "-",
            method,
            log_path,
            *extra.values(),
            extra={
                "pos_vendor": self.vendor,
                "pos_store": self.store_label,
                "http_method": method,
                "http_path": log_path,
                **{f"http_{k}" if k in ("status",) else k: v for k, v in extra.items()},
            },
        )

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
        authenticate: bool = True,
        log_path: str | None = None,
        ok_statuses: frozenset[int] = frozenset(),
    ) -> requests.Response:
        """Send one logical request (retrying where safe) and return a 2xx response or raise a PosError.

        `log_path` is what logs and errors show instead of `path` when the path carries PII; query strings
        are never logged. `ok_statuses` are non-2xx statuses returned to the caller instead of raised.
        """
        method = method.upper()
        url = self.url(path)
        shown = log_path or (path if not path.startswith("http") else urlsplit(path).path)
        query = urlencode({k: v for k, v in (params or {}).items() if v is not None}, quote_via=quote, safe="")
        if idempotent is None:
            idempotent = method in IDEMPOTENT_METHODS
        # A request outside any call's deadline gets the default one; a token fetched for it shares it.
        with self.deadline(self.default_deadline) as deadline:
            return self._send(
                method,
                url,
                shown=shown,
                query=query,
                json=json,
                data=data,
                headers=headers,
                idempotent=idempotent,
                authenticate=authenticate,
                ok_statuses=ok_statuses,
                deadline=deadline,
            )

    def _send(
        self,
        method: str,
        url: str,
        *,
        shown: str,
        query: str,
        json: Any,
        data: Mapping[str, str] | None,
        headers: Mapping[str, str] | None,
        idempotent: bool,
        authenticate: bool,
        ok_statuses: frozenset[int],
        deadline: Deadline,
    ) -> requests.Response:
        """request()'s tries, under `deadline`."""
        retries = 0
        waited = 0.0
        refreshed = False
        while True:
            request_headers = {"Accept": self.accept, **(headers or {})}
            if authenticate:
                request_headers.update(self.auth.headers(self, method, url))
            if deadline.remaining() < MIN_TRY_SECONDS:
                raise self._deadline_error(method, shown, deadline, tries=retries)
            if self.limiter is not None:
                self._take_budget(method, shown, deadline, tries=retries)
            started = time.perf_counter()
            try:
                response = (getattr(self._scope, "session", None) or self.session).request(
                    method,
                    url,
                    params=query or None,
                    json=json,
                    data=data,
                    headers=request_headers,
                    timeout=deadline.cap(self.timeout),
                    allow_redirects=False,
                )
            except (requests.Timeout, requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
                latency = (time.perf_counter() - started) * 1000
                kind = "timed out" if isinstance(exc, requests.Timeout) else "connection failed"
                self._log(
                    logging.WARNING,
                    "%s after %.0f ms (retries=%d)",
                    method,
                    shown,
                    error=kind,
                    latency_ms=latency,
                    retries=retries,
                )
                if not deadline.allows(0.0):  # (a body read past it comes as a ConnectionError)
                    raise self._deadline_error(method, shown, deadline, tries=retries + 1) from None
                error: PosError = PosUnavailable(
                    f"{self.label} {kind}: {method} {shown}", vendor=self.vendor, status_code=None
                )
                delay = self.backoff(retries)
            else:
                latency = (time.perf_counter() - started) * 1000
                status = response.status_code
                # Every call is logged; a plain success only at DEBUG, so a sync's pages don't flood INFO.
                if status >= 400 and status not in ok_statuses:
                    level = logging.WARNING
                else:
                    level = logging.INFO if retries else logging.DEBUG
                self._log(
                    level,
                    "-> %s in %.0f ms (retries=%d)",
                    method,
                    shown,
                    status=status,
                    latency_ms=latency,
                    retries=retries,
                )
                if self.limiter is not None:
                    said = self._retry_after(response) if status in (429, 503) else None
                    self.limiter.record(status, response.headers, said)
                if 200 <= status < 300 or status in ok_statuses:
                    return response
                if status == 401 and authenticate and self.auth.refreshable and not refreshed:
                    refreshed = True
                    self.auth.invalidate()
                    continue
                error = self.error_for(response, method, shown)
                if status not in RETRY_STATUSES:
                    raise error
                retry_after = self._retry_after(response)
                delay = min(retry_after, self.retry_after_cap) if retry_after is not None else self.backoff(retries)
            if (
                not idempotent
                or retries >= self.max_retries
                or waited + delay > self.max_wait_seconds
                or not deadline.allows(delay)
            ):
                raise error
            self._log(
                logging.WARNING, "retrying in %.2f s (%s)", method, shown, delay_s=delay, reason=type(error).__name__
            )
            self.sleep(delay)
            waited += delay
            retries += 1

    def _take_budget(self, method: str, shown: str, deadline: Deadline, *, tries: int) -> None:
        """Wait for the credential's rate budget within the deadline. When it cannot be had in time, an
        interactive call fails as a POS that did not answer in time does; a sync's page is told when to come back
        (PosRateLimited with retry_after), as a 429 would."""
        assert self.limiter is not None
        try:
            waited = self.limiter.acquire(deadline, interactive=deadline.interactive)
        except BudgetUnavailable as exc:
            self._log(
                logging.WARNING,
                "no rate budget within the deadline (%.2f s needed, %.2f s left)",
                method,
                shown,
                wait_s=exc.wait,
                left_s=deadline.remaining(),
            )
            if deadline.interactive:
                raise self._deadline_error(method, shown, deadline, tries=tries) from None
            raise PosRateLimited(
                f"{self.label} rate budget used up: {method} {shown} must wait {exc.wait:.1f} s",
                vendor=self.vendor,
                status_code=None,
                retry_after=exc.wait,
            ) from None
        if waited:
            self._log(logging.DEBUG, "waited %.2f s for the rate budget", method, shown, wait_s=waited)

    def _deadline_error(self, method: str, shown: str, deadline: Deadline, *, tries: int) -> PosUnavailable:
        said = f"{tries} tr{'y' if tries == 1 else 'ies'}" if tries else "no time left to try"
        self._log(
            logging.WARNING,
            "gave up: no answer within %g s (%s)",
            method,
            shown,
            deadline_s=deadline.seconds,
            tries=said,
        )
        return PosUnavailable(
            f"{self.label} did not answer {method} {shown} within {deadline.seconds:g} s ({said})",
            vendor=self.vendor,
            status_code=None,
            deadline_passed=True,
        )

    def _retry_after(self, response: requests.Response) -> float | None:
        value = parse_retry_after(response.headers.get("Retry-After"), self.wall_clock())
        if value is None:
            # Cova's gateway reports the window reset instead of Retry-After.
            value = parse_retry_after(response.headers.get("X-RateLimit-ResetSeconds"), self.wall_clock())
        return value

    def error_for(self, response: requests.Response, method: str, shown: str) -> PosError:
        """Map a non-success response to our error hierarchy (the vendor hook gets the first word)."""
        body = response_json(response)
        if self.error_hook is not None:
            special = self.error_hook(response, body)
            if special is not None:
                return special
        status = response.status_code
        message = f"{self.label} answered {status} to {method} {shown}"
        common: dict[str, Any] = {"vendor": self.vendor, "status_code": status}
        if status in (401, 403):
            return PosAuthError(f"{message}: credentials rejected", **common)
        if status == 404:
            return PosNotFound(message, **common)
        if status in (405, 501):
            return PosNotSupported(message, **common)
        if status == 409:
            existing = body.get("customer_id") or body.get("id") if isinstance(body, Mapping) else None
            return PosDuplicate(message, existing_customer_id=str(existing) if existing else None, **common)
        if status in (400, 422):
            errors = {self.field_names.get(k, k): v for k, v in field_errors_from(body).items()}
            return PosValidationError(message, field_errors=errors, **common)
        if status == 429:
            return PosRateLimited(message, retry_after=self._retry_after(response), **common)
        if status == 408 or status >= 500:
            return PosUnavailable(message, **common)
        if 300 <= status < 400:
            return PosBadResponse(f"{message}: unexpected redirect", **common)
        return PosBadResponse(message, **common)

    def get_json(self, path: str, **kwargs: Any) -> Any:
        """GET and decode JSON; a body that is not JSON is a PosBadResponse."""
        return self.decode(self.request("GET", path, **kwargs), kwargs.get("log_path") or path)

    def post_json(self, path: str, **kwargs: Any) -> Any:
        """POST and decode JSON."""
        return self.decode(self.request("POST", path, **kwargs), kwargs.get("log_path") or path)

    def decode(self, response: requests.Response, shown: str) -> Any:
        """The JSON body, None when empty; malformed JSON raises PosBadResponse."""
        if not response.content:
            return None
        try:
            return loads(response)
        except ValueError as exc:
            what = "JSON nested too deeply to read" if isinstance(exc, TooDeep) else "malformed JSON"
            raise PosBadResponse(
                f"{self.label} sent {what} for {shown}", vendor=self.vendor, status_code=response.status_code
            ) from None

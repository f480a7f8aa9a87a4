"""The sandbox HTTP server: a small keep-alive HTTP/1.1 server, dispatch to the vendors and the control API.

http.server parses headers with the email package, which costs more than rendering a page of customers;
this handler reads the request line and headers itself and answers with one write.
"""

from __future__ import annotations

import contextlib
import gc
import socket
import socketserver
import threading
import time
import traceback
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, unquote

from .control import Control
from .data import Dataset, Person
from .dialect import Dialect
from .faults import ALL, Faults
from .protocol import BadRequest, Request, Response, json_response
from .tokens import TokenStore
from .vendors import DIALECTS, SANDBOX_CREDENTIALS, VENDORS

_REASONS = {
    200: "OK",
    201: "Created",
    204: "No Content",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    411: "Length Required",
    413: "Payload Too Large",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}
MAX_BODY = 1 << 20
_DROP = object()  # handler answer: close the connection without a response


class _Handler(socketserver.StreamRequestHandler):
    server: _TCPServer
    timeout = 300  # an idle keep-alive connection is closed after this many seconds, ending its thread

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def handle(self) -> None:
        rfile, app = self.rfile, self.server.app
        while True:
            try:
                line = rfile.readline(8193)
            except (ConnectionError, OSError):
                return
            if not line:
                return
            if line in (b"\r\n", b"\n"):
                continue
            parts = line.decode("latin-1").split()
            if len(parts) != 3 or not parts[2].startswith("HTTP/"):
                self._write(Response(400, b'{"message":"malformed request line"}'), keep=False)
                return
            method, target, version = parts
            headers: dict[str, str] = {}
            while True:
                h = rfile.readline(8193)
                if h in (b"\r\n", b"\n", b""):
                    break
                name, _, value = h.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
            keep = version == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
            try:
                length = int(headers.get("content-length") or 0)
            except ValueError:
                length = -1
            if length < 0 or length > MAX_BODY or "chunked" in headers.get("transfer-encoding", "").lower():
                self._write(Response(411 if length >= 0 else 400, b'{"message":"send a Content-Length body"}'), False)
                return
            body = rfile.read(length) if length else b""
            try:
                answer = app.dispatch(method, target, headers, body)
            except Exception:  # a sandbox bug: answer 500 and say so, rather than hang up on the client
                traceback.print_exc()
                answer = Response(500, b'{"message":"POS sandbox internal error (see its console)"}')
            if answer is _DROP:
                with contextlib.suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)
                return
            if not self._write(answer, keep):  # type: ignore[arg-type]
                return
            if not keep:
                return

    def _write(self, resp: Response, keep: bool) -> bool:
        head = [f"HTTP/1.1 {resp.status} {_REASONS.get(resp.status, 'Status')}"]
        if resp.status != 204:
            head.append(f"Content-Type: {resp.content_type}")
        head.append(f"Content-Length: {len(resp.body)}")
        head.extend(f"{k}: {v}" for k, v in resp.headers.items())
        if not keep:
            head.append("Connection: close")
        try:
            self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + resp.body)
        except OSError:
            return False
        return True


class _TCPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    app: SandboxApp


class SandboxApp:
    """The vendors' APIs with faults applied, and the control API, independent of the socket server."""

    def __init__(self, dataset: Dataset, faults: Faults) -> None:
        self.dataset = dataset
        self.faults = faults
        self.tokens = TokenStore(faults)
        self.dialects: dict[str, Dialect] = {v: DIALECTS[v](dataset, faults, self.tokens) for v in dataset.vendors}
        self.requests: dict[str, int] = dict.fromkeys(self.dialects, 0)
        self.control = Control(dataset, faults, self.dialects, self.requests)

    def dispatch(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Response | object:
        path, _, query_text = target.partition("?")
        query = dict(parse_qsl(query_text, keep_blank_values=True)) if query_text else {}
        segs = [unquote(s) for s in path.split("/")[1:]]
        req = Request(method.upper(), path, query, headers, body, headers.get("host", "127.0.0.1"))
        head = segs[0] if segs else ""
        try:
            if head == "_control":
                return self.control.handle(req, segs[1:])
            dialect = self.dialects.get(head)
            if dialect is None:
                known = ", ".join(self.dialects)
                return json_response(404, {"message": f"no such vendor {head!r}; try one of {known}"})
            return self._vendor(dialect, req, segs[1:])
        except BadRequest as exc:
            if head == "_control":
                return json_response(exc.status, {"error": str(exc)})
            return self.dialects[head].error(exc.status, str(exc), field_name=exc.field_name)

    def _vendor(self, dialect: Dialect, req: Request, segs: list[str]) -> Response | object:
        vendor = dialect.vendor
        self.requests[vendor] += 1
        decision = self.faults.decide(vendor)
        if decision.drop:
            return _DROP
        if decision.delay:
            time.sleep(decision.delay)
        allowed, limit_headers, reset_in = self.faults.rate_limit(vendor, dialect.published_rate_limit)
        if not allowed:
            resp = dialect.rate_limited(reset_in)
        elif decision.status == 429:
            resp = dialect.too_many(self.faults.settings(vendor).retry_after)
        elif decision.status is not None:
            resp = dialect.server_error(decision.status)
        else:
            resp = dialect.handle(req, segs)
            if decision.malformed_page and resp.listing and resp.status == 200:
                resp.body = resp.body[: max(1, len(resp.body) // 2)]  # a page cut mid-record: not JSON
        if limit_headers and dialect.sends_rate_limit_headers:
            resp.headers.update(limit_headers)
        return resp


def tune_gc_for_serving() -> None:
    """For a process that only serves the sandbox: collect cyclic garbage far less often.

    Every customer served allocates a few short-lived objects that reference counting frees; none form
    cycles, yet each 700 allocations would start a collection (10-15 % of the CPU at full speed).
    """
    gc.freeze()  # what exists now (modules, pools) is never garbage
    gc.set_threshold(100_000, 50, 50)


class SandboxServer:
    """The fake POS for all five vendors on one port; `with SandboxServer(customers=1000) as sb: sb.url`."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        customers: int = 1000,
        seed: int = 1,
        faults: str | None = None,
    ) -> None:
        self.dataset = Dataset(customers=customers, seed=seed, vendors=VENDORS)
        self.faults = Faults(vendors=VENDORS, seed=seed, spec=faults)
        self.app = SandboxApp(self.dataset, self.faults)
        self.control = self.app.control
        self.host = host
        self.requested_port = port  # 0: a free one, see `port` once started
        self._server: _TCPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle -----------------------------------------------------------------------------------
    def start(self) -> SandboxServer:
        """Bind and serve in a background thread."""
        if self._server is not None:
            return self
        server = _TCPServer((self.host, self.requested_port), _Handler)
        server.app = self.app
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="pos-sandbox", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Bind and serve in this thread until interrupted."""
        server = _TCPServer((self.host, self.requested_port), _Handler)
        server.app = self.app
        self._server = server
        try:
            server.serve_forever()
        finally:
            server.server_close()

    def wait(self) -> None:
        """Block until the server stops (Ctrl-C raises KeyboardInterrupt here)."""
        while self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout=0.5)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the sandbox is not running")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """http://127.0.0.1:PORT"""
        return f"http://{self.host}:{self.port}"

    def vendor_url(self, vendor: str) -> str:
        """The base URL a store of this vendor points at."""
        return f"{self.url}/{vendor}"

    @staticmethod
    def credentials(vendor: str) -> dict[str, str]:
        """The sandbox's credentials for a vendor (a copy)."""
        return dict(SANDBOX_CREDENTIALS[vendor])

    # --- control operations --------------------------------------------------------------------------
    def modify(self, vendor: str, count: int = 0, *, ids: list[str] | None = None) -> list[str]:
        """Change customers now (random ones, or these ids); returns their vendor ids."""
        return self.control.change("modify", vendor, count=count, ids=ids)

    def create(self, vendor: str, count: int = 1) -> list[str]:
        """Add generated customers, created now; returns their vendor ids."""
        return self.control.change("create", vendor, count=count)

    def delete(self, vendor: str, count: int = 0, *, ids: list[str] | None = None) -> list[str]:
        """Remove customers (random ones, or these ids); returns their vendor ids."""
        return self.control.change("delete", vendor, count=count, ids=ids)

    def set_faults(self, spec: str | None = None, *, vendor: str = ALL, **settings: Any) -> None:
        """Switch faults on or off: a SPEC string, or settings for one vendor (or all), e.g. rate_5xx=0.1."""
        if spec:
            self.faults.apply(self.faults.parse(spec))
        if settings:
            self.faults.set(vendor, **settings)

    def clear_faults(self, vendor: str | None = None) -> None:
        self.faults.clear(vendor)

    def reset(self) -> None:
        """Forget every change and fault since start."""
        self.control.reset()

    def state(self) -> dict[str, Any]:
        return self.control.state()

    # --- ground truth --------------------------------------------------------------------------------
    def vendor_records(self, vendor: str) -> Iterator[dict[str, Any]]:
        """Every current customer as the vendor's JSON (without faults), in the order its full listing has."""
        return self.control.vendor_records(vendor)

    def record(self, vendor: str, customer_id: str) -> dict[str, Any] | None:
        """One current customer as the vendor's JSON, or None."""
        return self.control.record(vendor, customer_id)

    def vendor_id(self, vendor: str, person: Person) -> str:
        """The id the vendor shows for this customer."""
        return self.app.dialects[vendor].id_of(person)

    def malformed_ids(self, vendor: str) -> set[str]:
        """Ids of the customers served malformed under the current malformed_record rate."""
        return self.control.malformed_ids(vendor)


__all__ = ["VENDORS", "SandboxApp", "SandboxServer"]

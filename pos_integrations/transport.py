"""Every read of a POS answer within the call's deadline, not only within the read timeout.

A read timeout bounds one wait on the socket: a POS that trickles its answer (a byte every few seconds, its status
line, headers or body) never trips it, and `requests` has no total timeout. So the session's adapter
(`DeadlineAdapter`, mounted by pos_integrations.http) takes the try's time left from the timeout it is given
(`deadlines.TryTimeout.total`, what `Deadline.cap` returns) and the answer's socket reads are made through a
reader that cuts each read's timeout to what is left of it, and fails the read (TimeoutError, which urllib3 and
requests report as a read timeout) once it has passed.
"""

from __future__ import annotations

import http.client
import io
import socket
import threading
import time
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

_try = threading.local()  # `expires_at`: when the try this thread is sending must have its whole answer


class _DeadlineSocketReader(io.RawIOBase):
    """A socket's reader whose every read waits at most the read timeout and at most until `expires_at`."""

    def __init__(self, raw: io.RawIOBase, sock: socket.socket, expires_at: float) -> None:
        super().__init__()
        self._raw = raw
        self._sock = sock
        self._expires_at = expires_at
        self._timeout = sock.gettimeout()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int | None:
        left = self._expires_at - time.monotonic()
        if left <= 0:
            raise TimeoutError("the call's deadline passed while the answer was being read")
        self._sock.settimeout(left if self._timeout is None else min(self._timeout, left))
        return self._raw.readinto(buffer)

    def close(self) -> None:
        self._raw.close()
        super().close()


class _DeadlineHTTPResponse(http.client.HTTPResponse):
    def __init__(self, sock: socket.socket, *args: Any, **kwargs: Any) -> None:
        super().__init__(sock, *args, **kwargs)
        expires_at = getattr(_try, "expires_at", None)
        if expires_at is not None:  # nothing has been read yet: the buffer is empty
            self.fp = io.BufferedReader(_DeadlineSocketReader(self.fp.detach(), sock, expires_at))


class _HTTPConnection(HTTPConnection):
    response_class = _DeadlineHTTPResponse


class _HTTPSConnection(HTTPSConnection):
    response_class = _DeadlineHTTPResponse


class _HTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


class DeadlineAdapter(HTTPAdapter):
    """requests' adapter, holding a try's whole answer to the `total` of its timeout (when it has one)."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPConnectionPool, "https": _HTTPSConnectionPool}

    def send(self, request: Any, stream: bool = False, timeout: Any = None, *args: Any, **kwargs: Any) -> Any:
        total = getattr(timeout, "total", None)
        _try.expires_at = None if total is None else time.monotonic() + total
        try:
            return super().send(request, stream, timeout, *args, **kwargs)
        finally:
            _try.expires_at = None

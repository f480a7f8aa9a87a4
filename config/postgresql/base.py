"""Django's PostgreSQL backend (DATABASES ENGINE "config.postgresql"), with a health check that costs a round trip
only when the server has said something.

With CONN_HEALTH_CHECKS, Django checks a connection kept from an earlier request before the request uses it, by
sending `SELECT 1` and waiting for the answer: a round trip on every request (about 5 % of the CPU of a short API
request, client and server). A server that ends a connection, by restarting, by pg_terminate_backend() or by
idle_session_timeout, first sends an error message and closes its end, which makes the socket readable. An idle,
healthy connection has nothing to read. So a connection that is open, with nothing to read, is used as it is;
otherwise Django's own check decides.
"""

from __future__ import annotations

import select

from django.db.backends.postgresql import base
from psycopg import pq

_USABLE_STATES = frozenset({pq.TransactionStatus.IDLE, pq.TransactionStatus.INTRANS})


class DatabaseWrapper(base.DatabaseWrapper):
    def is_usable(self) -> bool:
        conn = self.connection
        if conn is None or conn.closed or conn.broken:
            return False
        pgconn = conn.pgconn
        if pgconn.status != pq.ConnStatus.OK or pgconn.transaction_status not in _USABLE_STATES:
            return False
        poller = select.poll()
        poller.register(pgconn.socket, select.POLLIN)
        if not poller.poll(0):
            return True
        # Something arrived while the connection was idle: usually the server's goodbye, at times a harmless
        # message (a notice, a changed setting). A real query tells them apart.
        return bool(super().is_usable())

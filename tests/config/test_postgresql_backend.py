"""The PostgreSQL backend's health check (config/postgresql/base.py): a connection the server ended is replaced
before a request uses it, and a healthy one is used without a round trip."""

from __future__ import annotations

import select
from collections.abc import Iterator

import psycopg
import pytest
from django.db import close_old_connections, connection

from customers.models import Customer

pytestmark = [pytest.mark.postgres_only, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def other() -> Iterator[psycopg.Connection]:
    """A second connection to the test database, to watch and end the first one."""
    params = connection.get_connection_params()
    keys = ("dbname", "user", "password", "host", "port")
    with psycopg.connect(**{k: params[k] for k in keys if params.get(k)}, autocommit=True) as conn:
        yield conn


def kept_connection_pid() -> int:
    """Run a query as a request would, and return the server process of the connection it leaves open."""
    close_old_connections()
    Customer.objects.exists()
    assert connection.health_check_enabled, "needs kept connections"
    assert connection.settings_dict["CONN_MAX_AGE"], "needs kept connections"
    return int(connection.connection.info.backend_pid)


def wait_readable(timeout: float = 10) -> None:
    poller = select.poll()
    poller.register(connection.connection.pgconn.socket, select.POLLIN)
    assert poller.poll(timeout * 1000), "the server sent nothing"


def last_query_of(other: psycopg.Connection, pid: int) -> str:
    row = other.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone()
    assert row is not None
    return str(row[0])


def test_a_connection_the_server_ended_is_replaced_before_the_next_request_uses_it(other):
    pid = kept_connection_pid()
    other.execute("SELECT pg_terminate_backend(%s)", [pid])
    wait_readable()

    close_old_connections()  # what the next request starts with
    assert Customer.objects.count() == 0  # answered, on a new connection
    assert connection.connection.info.backend_pid != pid


def test_a_healthy_idle_connection_is_used_without_a_round_trip(other):
    pid = kept_connection_pid()
    with connection.cursor() as cursor:
        cursor.execute("SELECT 'the last query'")
    close_old_connections()
    assert connection.is_usable()
    assert last_query_of(other, pid) == "SELECT 'the last query'"  # no SELECT 1 was sent
    assert Customer.objects.count() == 0
    assert connection.connection.info.backend_pid == pid


def test_a_harmless_message_from_the_server_keeps_the_connection(other):
    pid = kept_connection_pid()
    with connection.cursor() as cursor:
        cursor.execute("LISTEN customer_flow_test")
    other.execute("NOTIFY customer_flow_test")
    wait_readable()

    close_old_connections()
    assert connection.is_usable()
    assert last_query_of(other, pid) == "SELECT 1"  # something arrived: a query decided
    assert Customer.objects.count() == 0
    assert connection.connection.info.backend_pid == pid  # and the connection was kept

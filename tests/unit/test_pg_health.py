"""The health check of kept PostgreSQL connections (config.postgres): a connection the
server closed is found out and replaced before a request uses it, and a healthy one is
passed without a round trip."""

import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper

from config.postgres.base import still_open

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


@pytest.fixture
def kept() -> Iterator[BaseDatabaseWrapper]:
    """A connection of its own, as a gunicorn worker keeps one between requests."""
    made = connections.create_connection("default")
    made.ensure_connection()
    try:
        yield made
    finally:
        made.close()


def _pid(db: BaseDatabaseWrapper) -> int:
    with db.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return int(cursor.fetchone()[0])


def _refuse_statements(db: BaseDatabaseWrapper, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the health check sent a statement")

    monkeypatch.setattr(db.connection, "cursor", refuse)
    monkeypatch.setattr(db.connection, "execute", refuse)


def test_a_healthy_connection_passes_without_a_statement(
    kept: BaseDatabaseWrapper, monkeypatch: pytest.MonkeyPatch
) -> None:
    _pid(kept)
    _refuse_statements(kept, monkeypatch)
    assert kept.is_usable()
    kept.connection.autocommit = False  # inside a transaction, as in an atomic block
    assert kept.is_usable()


def test_a_connection_the_server_closed_is_replaced_before_use(
    kept: BaseDatabaseWrapper,
) -> None:
    old = _pid(kept)
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [old])
        assert cursor.fetchone()[0] is True
    deadline = time.monotonic() + 5
    while still_open(kept.connection) and time.monotonic() < deadline:
        time.sleep(0.01)  # the server's goodbye reaches the socket
    assert not kept.is_usable()
    # What Django does before a request's first statement.
    kept.health_check_done = False  # type: ignore[attr-defined]
    kept.close_if_health_check_failed()
    assert kept.connection is None
    assert _pid(kept) != old  # a new connection, and it works


def test_a_closed_or_broken_connection_is_unusable(kept: BaseDatabaseWrapper) -> None:
    raw = kept.connection
    raw.autocommit = False
    with pytest.raises(psycopg.errors.DivisionByZero):
        raw.execute("SELECT 1/0")
    assert not still_open(raw)  # a failed transaction is not fit for a request
    raw.rollback()
    assert still_open(raw)
    raw.close()
    assert not still_open(raw)


def test_after_an_error_the_check_is_a_real_round_trip(
    kept: BaseDatabaseWrapper, monkeypatch: pytest.MonkeyPatch
) -> None:
    kept.errors_occurred = True
    assert kept.is_usable()
    _refuse_statements(kept, monkeypatch)
    with pytest.raises(AssertionError, match="sent a statement"):
        kept.is_usable()

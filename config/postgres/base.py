"""Django's PostgreSQL backend, with a health check that costs no round trip.

With CONN_HEALTH_CHECKS, Django sends ``SELECT 1`` before a request first uses a kept
connection: a round trip on every request, more than a twentieth of a vote's CPU. What
the check must catch is a connection the server has closed (a restart,
``pg_terminate_backend``, an idle timeout). The server then says why and closes the
socket, so the socket turns readable, which a zero-timeout poll sees without sending
anything. Between statements a connection receives nothing unasked otherwise (Verdict
never LISTENs), so anything waiting means the connection is not fit to reuse, and
Django opens a new one.

A connection lost without a word (a network cut) passes the poll. Its first statement
then fails with a 503 and a retry hint (config.middleware.DatabaseUnavailable), and
Django's check after an error, kept as it was (a real ``SELECT 1``), closes it.
"""

import select
from typing import Any

import psycopg
from django.db.backends.postgresql import base
from psycopg import pq

# A transaction open and well is fit too: Django may check inside an atomic block.
FIT = (pq.TransactionStatus.IDLE, pq.TransactionStatus.INTRANS)


class DatabaseWrapper(base.DatabaseWrapper):
    def is_usable(self) -> bool:
        if self.errors_occurred:
            return bool(super().is_usable())
        return self.connection is not None and still_open(self.connection)


def still_open(raw: psycopg.Connection[Any]) -> bool:
    """Whether this connection is open, between statements and has heard nothing from
    the server since its last answer; nothing is sent."""
    if raw.closed or raw.info.status != pq.ConnStatus.OK:
        return False
    if raw.info.transaction_status not in FIT:
        return False
    poller = select.poll()
    poller.register(raw.fileno(), select.POLLIN)
    return not poller.poll(0)

"""The outbox: each broadcast event is a row written in the same transaction as its cause.

Nothing is sent here. :mod:`.delivery` sends pending rows strictly in id order, claiming
batches from the head with a lease, each event with its row's idempotency key, so that the
broadcaster delivers a row once however often it is sent.

Most rows are events (``kind`` ``event``). A ``terminate`` row (:func:`termination_row`)
asks the broadcaster to close every connection signed in as a user, in its place in the queue.
"""

from __future__ import annotations

from datetime import datetime

from flask import has_request_context, request
from sqlalchemy import Float, Index, Integer, String, Text, insert, text
from sqlalchemy.orm import Mapped, mapped_column

from shared.payloads import dumps
from shared.sockets import socket_id_error

from ..extensions import db
from ..orders.times import utcnow
from .events import BroadcastEvent

SOCKET_ID_HEADER = "X-Socket-ID"
PENDING_FLAG = "outbox_pending"
EVENT, TERMINATE = "event", "terminate"  # what a row asks of the broadcaster
# The rows still to send: every delivery pass reads the head of the queue from these. Without
# this partial index the pass read the table from its first row, delivered ones too, so each
# pass cost more as the outbox grew (5 ms at 100,000 rows on PostgreSQL; 0.02 ms with it).
PENDING_INDEX = "ix_outbox_events_pending"
PENDING_WHERE = "delivered_at IS NULL AND failed_at IS NULL"


class OutboxEvent(db.Model):
    __tablename__ = "outbox_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # EVENT: publish name/channels/data; TERMINATE: close the sockets of the user id in data.
    kind: Mapped[str] = mapped_column(String(16), default=EVENT, server_default=text(f"'{EVENT}'"))
    name: Mapped[str] = mapped_column(String(200))
    channels: Mapped[str] = mapped_column(Text)  # JSON list
    data: Mapped[str] = mapped_column(Text)  # JSON string, sent as is
    socket_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None]
    failed_at: Mapped[datetime | None]  # refused for good by the broadcaster (4xx)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[float | None] = mapped_column(Float)  # unix time

    __table_args__ = (Index(PENDING_INDEX, "id", sqlite_where=text(PENDING_WHERE),
                            postgresql_where=text(PENDING_WHERE)),)


_INSERT = insert(OutboxEvent.__table__)


def idempotency_key(row_id: int, created_at: datetime) -> str:
    """A row's stable key for the broadcaster's ``Idempotency-Key``: the same on every attempt,
    and not reused by a row of a recreated database (ids restart, times do not)."""
    return f"outbox-{row_id}-{created_at:%Y%m%dT%H%M%S%f}"


def request_socket_id() -> str | None:
    """The socket to exclude (Laravel's ``toOthers()``): the current request's X-Socket-ID."""
    if not has_request_context():
        return None
    value = request.headers.get(SOCKET_ID_HEADER)
    if value and socket_id_error(value, SOCKET_ID_HEADER) is None:
        return value
    return None


Row = dict[str, str | None]


def event_row(event: BroadcastEvent) -> Row:
    """The outbox row of ``event``."""
    return {"kind": EVENT, "name": event.broadcast_as(), "channels": dumps(event.broadcast_on()),
            "data": dumps(event.broadcast_with()), "socket_id": request_socket_id()}


def termination_row(user_id: int) -> Row:
    """The row that asks to close every connection signed in as ``user_id`` (``POST
    users/{id}/terminate_connections``), sent in its place in the queue with the events."""
    return {"kind": TERMINATE, "name": "terminate_connections", "channels": "[]",
            "data": str(user_id), "socket_id": None}


def insert_rows(rows: list[Row]) -> None:
    """Write ``rows`` to the outbox in the current transaction, in their order, in one
    statement, now (no objects for the session to track and flush at the commit); they are
    sent only if that transaction commits, which then wakes the deliverers (:mod:`.delivery`)."""
    if rows:
        db.session.connection().execute(_INSERT, rows)
        db.session.info[PENDING_FLAG] = True


def enqueue(event: BroadcastEvent) -> None:
    """Write ``event`` to the outbox in the current transaction."""
    insert_rows([event_row(event)])

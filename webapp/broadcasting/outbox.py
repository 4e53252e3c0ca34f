"""The outbox: each broadcast event is a row written in the same transaction as its cause.

Nothing is sent here. :mod:`.delivery` sends pending rows strictly in id order, claiming
batches from the head with a lease, each event with its row's idempotency key, so that the
broadcaster delivers a row once however often it is sent.

Most rows are events (``kind`` ``event``). A ``terminate`` row (:func:`termination_row`)
asks the broadcaster to close every connection signed in as a user, in its place in the queue.

A row that was sent (delivered, or refused for good) is kept ``OUTBOX_KEEP_SECONDS``, then the
worker deletes it (:func:`prune_sent`), so the table holds days of events, not all of them.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import has_request_context, request
from sqlalchemy import (
    Float,
    Index,
    Integer,
    String,
    Text,
    and_,
    bindparam,
    delete,
    insert,
    or_,
    select,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from shared.payloads import dumps
from shared.sockets import socket_id_error

from ..extensions import db
from ..orders.times import utcnow
from .events import BroadcastEvent

SOCKET_ID_HEADER = "X-Socket-ID"
PENDING_FLAG = "outbox_pending"
EVENT, TERMINATE = "event", "terminate"  # what a row asks of the broadcaster
PENDING_INDEX = "ix_outbox_events_pending"


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


_TABLE = OutboxEvent.__table__
# The rows still to send (neither delivered nor refused), which every delivery pass reads the
# head of the queue from, through this partial index. Without it the pass read the table from
# its first row, sent ones too, so each pass cost more as the outbox grew (5 ms at 100,000 rows
# on PostgreSQL; 0.02 ms with it). The pass's query names the same PENDING, so it implies the
# index's condition, as both databases need to use it.
PENDING = (_TABLE.c.delivered_at.is_(None), _TABLE.c.failed_at.is_(None))
Index(PENDING_INDEX, _TABLE.c.id, sqlite_where=and_(*PENDING), postgresql_where=and_(*PENDING))
_INSERT = insert(_TABLE)
PRUNE_BATCH = 1000  # rows looked at, and deleted, in one transaction of prune_sent
_SENT_BEFORE = or_(_TABLE.c.delivered_at < bindparam("cutoff"),
                   _TABLE.c.failed_at < bindparam("cutoff"))
_HEAD = select(_TABLE.c.id, _SENT_BEFORE).order_by(_TABLE.c.id).limit(PRUNE_BATCH)
_PRUNE = delete(_TABLE).where(_TABLE.c.id <= bindparam("last"), _SENT_BEFORE)


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


def prune_sent(keep_seconds: float, now: datetime, batches: int) -> tuple[int, bool]:
    """Delete the rows at the head of the outbox that were sent (delivered, or refused for
    good) more than ``keep_seconds`` before ``now``, at most ``batches`` times
    :data:`PRUNE_BATCH` of them, each batch in a commit of its own; how many, and whether
    more may be left. Rows are sent in id order, so the old ones are the table's first: each
    batch reads the first rows by id and stops at one still pending or sent since; a pending
    row is never deleted (the DELETE checks it too)."""
    cutoff = now - timedelta(seconds=keep_seconds)
    deleted = 0
    for _ in range(batches):
        connection = db.session.connection()
        head = connection.execute(_HEAD, {"cutoff": cutoff}).all()
        last = None
        for row_id, old_enough in head:
            if not old_enough:
                break
            last = row_id
        if last is not None:
            deleted += connection.execute(_PRUNE, {"last": last, "cutoff": cutoff}).rowcount
        db.session.commit()
        if last is None or last != head[-1][0] or len(head) < PRUNE_BATCH:
            return deleted, False
    return deleted, True

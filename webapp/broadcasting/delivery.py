"""Send outbox rows to the broadcaster's HTTP API, once each and strictly in id order.

A deliverer always starts at the head of the queue (the oldest row neither delivered nor
refused) and claims a **batch**: the head and the pending event rows right behind it, up to
``OUTBOX_BATCH_SIZE``. The claim is one conditional UPDATE that takes every row of the batch or
none (rolled back unless it matched them all): it needs each row still pending and free of a
live lease. On PostgreSQL the UPDATE locks the rows it changes, and a concurrent claim waits for
that lock, then re-checks the condition and fails; on SQLite writers take turns. Since every
batch starts at the head, two deliverers (the worker and a web process) never overtake each
other. Delivery stops at the first failure; the rows stay pending and are retried later, which
keeps every order's events in order.

Every event carries its row's idempotency key (the ``Idempotency-Key`` header for one event, the
``idempotency_key`` field of each item in a batch), and the broadcaster delivers a key once
within its window (``RESOUND_IDEMPOTENCY_WINDOW``, 5 minutes). So the batch a retry or a
takeover sends may differ from the one that went out before (more rows arrived meanwhile): the
rows that got through are not delivered again, and the new ones are. The lease only has to
outlast one send (:func:`lease_seconds`). A batch the broadcaster refuses (4xx, e.g. one event
too large) is sent again one row at a time, so only the bad row is skipped.

A termination row (:func:`.outbox.termination_row`) goes alone, in its place in the queue,
as ``POST users/{id}/terminate_connections``.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import Flask, current_app
from sqlalchemy import Connection, Integer, bindparam, event, or_, select, text, update

from shared.payloads import loads

from ..extensions import db
from ..orders.times import utcnow
from .outbox import PENDING, PENDING_FLAG, TERMINATE, OutboxEvent, idempotency_key
from .reverb_client import DeliveryError, Message, ReverbClient
from .wakeup import KickedThread, Notifier

__all__ = ["DeliveryError", "DeliveryResult", "ReverbClient", "deliver_now", "deliver_pending",
           "lease_seconds"]

log = logging.getLogger(__name__)

DEFERRED = "outbox_delivery_deferred"  # in session.info: whether a deferred commit wrote rows
LEASE_MARGIN = 1.0  # seconds a lease outlasts the HTTP timeout: the database writes around it
_ASYNC_COMMIT = text("SET LOCAL synchronous_commit TO OFF")


def lease_seconds(config: Any) -> float:
    """How long a deliverer holds a batch: one send (``OUTBOX_HTTP_TIMEOUT``) and a margin.
    A holder that outlives it by accident resends nothing: the idempotency keys see to that."""
    return float(config["OUTBOX_HTTP_TIMEOUT"]) + LEASE_MARGIN


@dataclass
class DeliveryResult:
    delivered: int = 0  # rows sent (events and terminations)
    skipped: int = 0  # refused for good, marked failed
    error: str | None = None  # why delivery stopped early (retry later)
    busy: bool = False  # another deliverer holds the head row
    requests: int = 0  # HTTP requests that got a 2xx answer


@dataclass(frozen=True)
class _Row:
    """What a send needs from a row: its columns, read as plain values (no ORM object for the
    session to track), so they stay valid after the claim's commit."""

    id: int
    kind: str
    message: Message
    lease_until: float | None


_TABLE = OutboxEvent.__table__
# Built once: building a statement each pass cost more CPU than running it.
_BATCH = (select(_TABLE.c.id, _TABLE.c.kind, _TABLE.c.name, _TABLE.c.channels, _TABLE.c.data,
                 _TABLE.c.socket_id, _TABLE.c.created_at, _TABLE.c.lease_until)
          .where(*PENDING).order_by(_TABLE.c.id).limit(bindparam("size", type_=Integer)))
_IDS = bindparam("ids", expanding=True)
_CLAIM = (update(_TABLE)
          .where(_TABLE.c.id.in_(_IDS), *PENDING,
                 or_(_TABLE.c.lease_until.is_(None), _TABLE.c.lease_until < bindparam("now")))
          .values(lease_owner=bindparam("owner"), lease_until=bindparam("until"),
                  attempts=_TABLE.c.attempts + 1))
_FINISH = (update(_TABLE)
           .where(_TABLE.c.id.in_(_IDS), _TABLE.c.lease_owner == bindparam("owner"))
           .values(lease_owner=None, lease_until=None, delivered_at=bindparam("delivered_at"),
                   failed_at=bindparam("failed_at"), last_error=bindparam("last_error")))


def _batch(size: int) -> list[_Row]:
    """The head row and the event rows right behind it, at most ``size``; a termination row
    only ever alone."""
    rows = [
        _Row(row_id, kind, Message(name, loads(channels), data, socket_id,
                                   idempotency_key(row_id, created_at)), lease_until)
        for row_id, kind, name, channels, data, socket_id, created_at, lease_until
        in db.session.connection().execute(_BATCH, {"size": size})
    ]
    if not rows or rows[0].kind == TERMINATE:
        return rows[:1]
    events = []
    for row in rows:
        if row.kind == TERMINATE:
            break
        events.append(row)
    return events


def _leased(row: _Row) -> bool:
    return row.lease_until is not None and row.lease_until >= time.time()


def _bookkeeping() -> Connection:
    """The session's connection, its transaction set to commit without waiting for
    PostgreSQL's log flush (SQLite: nothing; SQLITE_SYNCHRONOUS decides). For the lease and the
    outcome only: one lost in a crash of the database server makes the row go out again, which
    its idempotency key keeps from being delivered twice; waiting for the flush held every
    batch two flushes long."""
    connection = db.session.connection()
    if connection.dialect.name == "postgresql":
        connection.execute(_ASYNC_COMMIT)
    return connection


def _claim(ids: list[int], owner: str, lease_seconds: float) -> bool:
    """Lease every row of ``ids`` to ``owner``, or none of them."""
    now = time.time()
    claimed = _bookkeeping().execute(
        _CLAIM, {"ids": ids, "now": now, "owner": owner, "until": now + lease_seconds}
    ).rowcount
    if claimed != len(ids):
        db.session.rollback()
        return False
    db.session.commit()
    return True


def _finish(ids: list[int], owner: str, delivered_at: datetime | None = None,
            failed_at: datetime | None = None, last_error: str | None = None) -> int:
    """Record the outcome and drop the lease on the rows ``owner`` still holds; how many."""
    done = _bookkeeping().execute(
        _FINISH, {"ids": ids, "owner": owner, "delivered_at": delivered_at,
                  "failed_at": failed_at, "last_error": last_error}
    ).rowcount
    db.session.commit()
    return done


def _send(client: ReverbClient, rows: list[_Row]) -> None:
    if rows[0].kind == TERMINATE:
        client.terminate(rows[0].message.data)
    elif len(rows) == 1:
        client.trigger(rows[0].message)
    else:
        client.trigger_batch([row.message for row in rows])


def _describe(rows: list[_Row]) -> str:
    if len(rows) == 1:
        return f"outbox row {rows[0].id} ({rows[0].message.name or rows[0].kind})"
    return f"outbox rows {rows[0].id}..{rows[-1].id} ({len(rows)} events)"


def deliver_pending(client: ReverbClient, lease_seconds: float, batch_size: int = 1,
                    limit: int = 10_000) -> DeliveryResult:
    """Send pending rows in id order, ``batch_size`` events per request at most, until none is
    left, one fails, another deliverer is busy, or ``limit`` rows went out."""
    owner = uuid.uuid4().hex
    result = DeliveryResult()
    singly = 0  # rows to send one at a time: the rows of a batch the broadcaster refused
    while result.delivered + result.skipped < limit:
        rows = _batch(1 if singly else batch_size)
        if not rows:
            break
        ids = [row.id for row in rows]
        # A live lease on the head, seen by a read, saves a write that could only fail.
        if _leased(rows[0]) or not _claim(ids, owner, lease_seconds):
            result.busy = True
            break
        singly = max(singly - 1, 0)
        try:
            _send(client, rows)
        except DeliveryError as exc:
            if exc.permanent and len(rows) > 1:
                log.warning("%s refused (%s); sending them one at a time to skip only the "
                            "refused one", _describe(rows), exc)
                _finish(ids, owner, last_error=str(exc))
                singly = len(rows)
                continue
            if exc.permanent:
                log.error("%s refused, skipping it: %s", _describe(rows), exc)
                _finish(ids, owner, failed_at=utcnow(), last_error=str(exc))
                result.skipped += 1
                continue
            log.warning("%s not delivered: %s", _describe(rows), exc)
            _finish(ids, owner, last_error=str(exc))
            result.error = str(exc)
            break
        result.requests += 1
        if _finish(ids, owner, delivered_at=utcnow()) < len(ids):
            log.info("%s sent after the lease ran out; the idempotency keys keep a takeover "
                     "from delivering events twice", _describe(rows))
        log.debug("%s delivered", _describe(rows))
        result.delivered += len(rows)
    return result


def deliver_now(app: Flask, client: ReverbClient | None = None) -> DeliveryResult:
    """One delivery pass with ``app``'s configuration, in its own app context and session;
    on ``client``'s kept connection when given, else on a connection of its own."""
    own = client is None
    client = client or ReverbClient.from_config(app.config)
    with app.app_context():
        try:
            return deliver_pending(client, lease_seconds(app.config),
                                   app.config["OUTBOX_BATCH_SIZE"])
        finally:
            db.session.remove()
            if own:
                client.close()


class BackgroundDeliverer(KickedThread):
    """The web process's delivery right after commit: one thread per process, woken by each
    commit that wrote outbox rows, running passes on one kept-alive connection. Commits that
    land during a pass wake one more pass, which sends what they wrote (batched)."""

    name = "outbox-deliver"
    failure = "delivery after commit failed; the worker will deliver"

    def __init__(self, app: Flask) -> None:
        super().__init__()
        self.app = app
        self.client: ReverbClient | None = None

    def open(self) -> None:
        self.client = ReverbClient.from_config(self.app.config)

    def run_pass(self) -> None:
        deliver_now(self.app, self.client)

    def close(self) -> None:
        if self.client is not None:
            self.client.close()


def _deliver_after_commit(session: Any) -> None:
    if not session.info.pop(PENDING_FLAG, False):
        return
    if DEFERRED in session.info:  # inside deliver_once_after(): one pass at its end
        session.info[DEFERRED] = True
        return
    app = current_app._get_current_object()
    if app.config["OUTBOX_DELIVER_ON_COMMIT"]:
        deliverer = app.extensions.get("outbox_deliverer")
        if deliverer is None:
            deliverer = app.extensions.setdefault("outbox_deliverer", BackgroundDeliverer(app))
        deliverer.kick()
    elif db.engine.dialect.name == "postgresql":
        notifier = app.extensions.get("outbox_notifier")
        if notifier is None:
            notifier = app.extensions.setdefault("outbox_notifier", Notifier(db.engine))
        notifier.kick()


@contextmanager
def deliver_once_after() -> Iterator[None]:
    """The commits made inside wake the web process's delivery once, at the end, instead of
    once each: a request that commits many times (a bulk transition) leaves the SQLite write
    lock to its own commits, and the pass at its end sends their rows batched."""
    db.session.info[DEFERRED] = False
    try:
        yield
    finally:
        if db.session.info.pop(DEFERRED, False):
            db.session.info[PENDING_FLAG] = True
            _deliver_after_commit(db.session())


def _forget_after_rollback(session: Any, _transaction: Any) -> None:
    session.info.pop(PENDING_FLAG, None)


def deliver_after_commits() -> None:
    """After each commit that wrote outbox rows, wake this process's deliverer with
    ``OUTBOX_DELIVER_ON_COMMIT``, else the worker (:mod:`.wakeup`); idempotent."""
    session_class = db.session.session_factory.class_
    if not event.contains(session_class, "after_commit", _deliver_after_commit):
        event.listen(session_class, "after_commit", _deliver_after_commit)
        event.listen(session_class, "after_soft_rollback", _forget_after_rollback)

"""Send outbox rows to the broadcaster's HTTP API, once each and strictly in id order.

Only the head of the queue (the oldest row neither delivered nor refused) is ever sent. A
deliverer claims it with a conditional UPDATE that succeeds only if no live lease is held, so
two deliverers (the worker and the web process right after a commit) never overtake each other.
Delivery stops at the first failure; the row stays at the head and is retried later, which
keeps every order's events in order.

Every attempt carries the row's ``Idempotency-Key``, and the broadcaster delivers a key once
within its window (``RESOUND_IDEMPOTENCY_WINDOW``, 5 minutes): a retry after a timeout whose
request did get through, or a takeover from a deliverer that crashed mid-send, is answered 200
and not delivered again. So the lease only has to outlast one send (:func:`lease_seconds`), and
a crashed holder stalls delivery for that long, not a minute.
"""

from __future__ import annotations

import http.client
import logging
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from flask import Flask, current_app
from sqlalchemy import event, or_, update

from shared.payloads import dumpb, loads
from shared.signatures import sign_request

from .extensions import db
from .outbox import PENDING_FLAG, OutboxEvent, utcnow

log = logging.getLogger(__name__)

# Answers that will never succeed on retry: skip the row instead of blocking the queue.
PERMANENT_STATUSES = frozenset({400, 413})
LEASE_MARGIN = 1.0  # seconds a lease outlasts the HTTP timeout: the database writes around it


def lease_seconds(config: Any) -> float:
    """How long a deliverer holds the head row: one send (``OUTBOX_HTTP_TIMEOUT``) and a margin.
    A holder that outlives it by accident resends nothing: the idempotency key sees to that."""
    return float(config["OUTBOX_HTTP_TIMEOUT"]) + LEASE_MARGIN


class DeliveryError(Exception):
    """The broadcaster did not take the event; ``permanent`` when retrying cannot help."""

    def __init__(self, message: str, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True)
class ReverbClient:
    """The broadcaster's signed trigger API (``POST /apps/{app_id}/events``)."""

    app_id: str
    key: str
    secret: str
    host: str
    port: int
    scheme: str = "http"
    timeout: float = 5.0

    @classmethod
    def from_config(cls, config: Any) -> ReverbClient:
        return cls(
            app_id=str(config["REVERB_APP_ID"]), key=config["REVERB_APP_KEY"],
            secret=config["REVERB_APP_SECRET"], host=config["REVERB_HOST"],
            port=int(config["REVERB_PORT"]), scheme=config["REVERB_SCHEME"],
            timeout=float(config["OUTBOX_HTTP_TIMEOUT"]),
        )

    def trigger(self, name: str, channels: list[str], data: str, socket_id: str | None,
                idempotency_key: str) -> None:
        """Publish one event; raise :class:`DeliveryError` unless the broadcaster answers 2xx.

        The broadcaster delivers an ``idempotency_key`` once within its window, so sending the
        same event again (after a timeout, say) never delivers it twice."""
        message: dict[str, Any] = {"name": name, "channels": channels, "data": data}
        if socket_id:
            message["socket_id"] = socket_id
        body = dumpb(message)
        path = f"/apps/{self.app_id}/events"
        query = urlencode(sign_request(self.key, self.secret, "POST", path, body=body))
        connection_class = (http.client.HTTPSConnection if self.scheme == "https"
                            else http.client.HTTPConnection)
        connection = connection_class(self.host, self.port, timeout=self.timeout)
        try:
            connection.request("POST", f"{path}?{query}", body=body,
                               headers={"Content-Type": "application/json",
                                        "Idempotency-Key": idempotency_key})
            response = connection.getresponse()
            answer = response.read(2000).decode(errors="replace")
        except (OSError, http.client.HTTPException) as exc:
            raise DeliveryError(f"broadcaster at {self.host}:{self.port} unreachable: {exc}") \
                from None
        finally:
            connection.close()
        if not 200 <= response.status < 300:
            raise DeliveryError(f"broadcaster answered {response.status}: {answer}",
                                permanent=response.status in PERMANENT_STATUSES)


@dataclass
class DeliveryResult:
    delivered: int = 0
    skipped: int = 0  # refused for good, marked failed
    error: str | None = None  # why delivery stopped early (retry later)
    busy: bool = False  # another deliverer holds the head row


def _head() -> OutboxEvent | None:
    return db.session.scalar(
        db.select(OutboxEvent)
        .where(OutboxEvent.delivered_at.is_(None), OutboxEvent.failed_at.is_(None))
        .order_by(OutboxEvent.id).limit(1)
    )


def _claim(row_id: int, owner: str, lease_seconds: float) -> bool:
    now = time.time()
    claimed = db.session.execute(
        update(OutboxEvent)
        .where(OutboxEvent.id == row_id, OutboxEvent.delivered_at.is_(None),
               OutboxEvent.failed_at.is_(None),
               or_(OutboxEvent.lease_until.is_(None), OutboxEvent.lease_until < now))
        .values(lease_owner=owner, lease_until=now + lease_seconds,
                attempts=OutboxEvent.attempts + 1)
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    return bool(claimed)


def _finish(row_id: int, owner: str, **values: Any) -> bool:
    """Record the outcome and drop the lease, only if ``owner`` still holds it."""
    done = db.session.execute(
        update(OutboxEvent)
        .where(OutboxEvent.id == row_id, OutboxEvent.lease_owner == owner)
        .values(lease_owner=None, lease_until=None, **values)
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    return bool(done)


def deliver_pending(
    client: ReverbClient, lease_seconds: float, limit: int = 1000
) -> DeliveryResult:
    """Send pending rows in id order until none is left, one fails, or another deliverer is busy."""
    owner = uuid.uuid4().hex
    result = DeliveryResult()
    for _ in range(limit):
        row = _head()
        if row is None:
            break
        row_id, name, channels, data, socket_id, key = (
            row.id, row.name, loads(row.channels), row.data, row.socket_id, row.idempotency_key)
        if not _claim(row_id, owner, lease_seconds):
            result.busy = True
            break
        try:
            client.trigger(name, channels, data, socket_id, key)
        except DeliveryError as exc:
            if exc.permanent:
                log.error("outbox event %s (%s) refused, skipping it: %s", row_id, name, exc)
                _finish(row_id, owner, failed_at=utcnow(), last_error=str(exc))
                result.skipped += 1
                continue
            log.warning("outbox event %s (%s) not delivered: %s", row_id, name, exc)
            _finish(row_id, owner, last_error=str(exc))
            result.error = str(exc)
            break
        if not _finish(row_id, owner, delivered_at=utcnow(), last_error=None):
            log.info("outbox event %s was sent after its lease ran out; its idempotency key "
                     "keeps a takeover from delivering it twice", row_id)
        log.debug("outbox event %s (%s) delivered to %s", row_id, name, channels)
        result.delivered += 1
    return result


def deliver_now(app: Flask) -> DeliveryResult:
    """One delivery pass with ``app``'s configuration, in its own app context and session."""
    with app.app_context():
        try:
            return deliver_pending(ReverbClient.from_config(app.config),
                                   lease_seconds(app.config))
        finally:
            db.session.remove()


def _deliver_after_commit(session: Any) -> None:
    if not session.info.pop(PENDING_FLAG, False):
        return
    app = current_app._get_current_object()
    if app.config["OUTBOX_DELIVER_ON_COMMIT"]:
        threading.Thread(target=deliver_now, args=(app,), name="outbox-deliver",
                         daemon=True).start()


def _forget_after_rollback(session: Any, _transaction: Any) -> None:
    session.info.pop(PENDING_FLAG, None)


def deliver_after_commits() -> None:
    """Deliver right after each commit that wrote outbox rows, for low latency (idempotent)."""
    session_class = db.session.session_factory.class_
    if not event.contains(session_class, "after_commit", _deliver_after_commit):
        event.listen(session_class, "after_commit", _deliver_after_commit)
        event.listen(session_class, "after_soft_rollback", _forget_after_rollback)

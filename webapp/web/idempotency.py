"""Requests made once: the same ``Idempotency-Key`` (per user) gets the first answer again.

``run_once`` stores the answer in the transaction that made it, under a unique (user, key), so
two requests racing with one key create one order: the second waits on the first's row (its
write lock on SQLite, the unique index on PostgreSQL), fails to insert its own, and answers what
the first stored. Only answers that changed something are stored: a request refused (e.g. 422
out of stock) rolls back with its key, so sending it again runs it again. Keys older than
``KEY_TTL`` are forgotten, and deleted by the next keyed request.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from ..orders.models import User
from ..orders.times import utcnow

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 200
KEY_TTL = timedelta(hours=24)


class IdempotencyKey(db.Model):
    """The first answer to a request sent with ``Idempotency-Key`` (per user), to send again.

    Written in the same transaction as what the request created, so a key is stored exactly
    when its order is; the unique (user, key) makes a concurrent duplicate wait and then fail.
    """

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("user_id", "key", name="uq_idempotency_keys_user_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    key: Mapped[str] = mapped_column(String(200))
    fingerprint: Mapped[str] = mapped_column(String(64))  # sha256 hex of the request's body
    status_code: Mapped[int] = mapped_column(Integer)
    response_body: Mapped[str] = mapped_column(Text)  # JSON
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class KeyReused(Exception):
    """The key was used before for a different request (answered as 422)."""


@dataclass(frozen=True, slots=True)
class Answer:
    """A response to send: its status code and JSON body."""

    status: int
    body: dict[str, Any]


def key_error(key: str) -> str | None:
    """Why ``key`` is not a usable idempotency key, or None."""
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not all(" " <= c <= "~" for c in key):
        return (f"{HEADER} must be 1 to {MAX_KEY_LENGTH} printable ASCII characters, "
                "e.g. a UUID made once per form fill")
    return None


def fingerprint(payload: Any) -> str:
    """A digest of what the request asks for; equal payloads give equal digests."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def run_once(user: User, key: str, payload: Any, run: Callable[[], Answer]) -> Answer:
    """``run()``'s answer, committed with the key, or the answer stored for it before.

    ``run`` adds its changes to the session without committing; if it raises, everything it
    did is rolled back with the key. Raises :class:`KeyReused` when the key was used for
    another ``payload``.
    """
    digest = fingerprint(payload)
    stored = _stored(user, key)
    if stored is not None:
        return _replay(stored, digest)
    try:
        _purge_expired()
        record = IdempotencyKey(user_id=user.id, key=key, fingerprint=digest, status_code=0,
                                response_body="")
        db.session.add(record)
        db.session.flush()
    except IntegrityError:  # a concurrent request with this key committed first
        db.session.rollback()
        stored = _stored(user, key)
        if stored is None:
            raise
        return _replay(stored, digest)
    try:
        answer = run()
        record.status_code = answer.status
        record.response_body = json.dumps(answer.body)
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    return answer


def _stored(user: User, key: str) -> IdempotencyKey | None:
    return db.session.scalar(db.select(IdempotencyKey).where(
        IdempotencyKey.user_id == user.id, IdempotencyKey.key == key,
        IdempotencyKey.created_at > utcnow() - KEY_TTL))


def _replay(stored: IdempotencyKey, digest: str) -> Answer:
    if stored.fingerprint != digest:
        raise KeyReused(f"this {HEADER} was already used for a different request; "
                        "make a new key for each new request")
    return Answer(stored.status_code, json.loads(stored.response_body))


def _purge_expired() -> None:
    db.session.execute(db.delete(IdempotencyKey).where(
        IdempotencyKey.created_at <= utcnow() - KEY_TTL))

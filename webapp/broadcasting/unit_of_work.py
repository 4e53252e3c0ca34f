"""The unit of work of every change: what the domain and accounts return as events is written
to the outbox in the same transaction as the change, then committed together (or neither)."""

from __future__ import annotations

from collections.abc import Iterable

from ..accounts.sessions import SessionsEnded
from ..extensions import db
from ..orders.events import OrderEvent
from .events import OrderBroadcast
from .outbox import event_row, insert_rows, termination_row

Event = OrderEvent | SessionsEnded


def write(events: Iterable[Event]) -> None:
    """Add ``events`` to the outbox in the current transaction (one INSERT), not committed."""
    insert_rows([termination_row(event.user_id) if isinstance(event, SessionsEnded)
                 else event_row(OrderBroadcast(event)) for event in events])


def commit(events: Iterable[Event]) -> None:
    """Write ``events`` to the outbox and commit them with the change that caused them."""
    write(events)
    db.session.commit()

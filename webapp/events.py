"""Broadcast events, shaped like Laravel's: ``broadcast_on``, ``broadcast_as``, ``broadcast_with``.

An event names its channels and its payload; :func:`webapp.outbox.enqueue` stores it in the
same transaction as the change that caused it, and the delivery code sends it later.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from .money import format_cents

if TYPE_CHECKING:
    from .models import Order, User


def private_channel(name: str) -> str:
    """Laravel's ``new PrivateChannel(name)``."""
    return f"private-{name}"


def iso8601(moment: datetime) -> str:
    """``2026-11-23T10:00:00+00:00``; naive datetimes from the database are UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.isoformat(timespec="seconds")


class BroadcastEvent:
    """Base class: subclasses say where (``broadcast_on``), as what, and with which data."""

    def broadcast_on(self) -> list[str]:
        raise NotImplementedError

    def broadcast_as(self) -> str:
        raise NotImplementedError

    def broadcast_with(self) -> dict[str, Any]:
        raise NotImplementedError


def order_channels(order: Order) -> list[str]:
    """The owner's private channel and the admins' channel."""
    return [private_channel(f"user.{order.user_id}.orders"), private_channel("admin.orders")]


def order_payload(order: Order, previous_status: str | None, changed_by: User | None) -> dict:
    """The seed's order payload, shared by ``order.created`` and ``order.status.updated``,
    plus ``created_at`` (the lists sort and show by it)."""
    items = list(order.items)
    return {
        "order_id": order.id,
        "order_number": order.order_number,
        "current_status": order.status.value,
        "current_status_label": order.status.label,
        "previous_status": previous_status,
        "changed_by": changed_by.name if changed_by is not None else None,
        "total": format_cents(order.total_cents),
        "updated_at": iso8601(order.updated_at),
        "created_at": iso8601(order.created_at),
        "user": {"id": order.user.id, "name": order.user.name, "email": order.user.email},
        "items_count": len(items),
        "items_summary": [
            {"product_name": item.product.name, "quantity": item.quantity} for item in items[:3]
        ],
    }


class OrderStatusChanged(BroadcastEvent):
    """An order moved from one status to another."""

    def __init__(self, order: Order, previous_status: str, changed_by: User | None) -> None:
        self.order = order
        self.previous_status = previous_status
        self.changed_by = changed_by

    def broadcast_on(self) -> list[str]:
        return order_channels(self.order)

    def broadcast_as(self) -> str:
        return "order.status.updated"

    def broadcast_with(self) -> dict[str, Any]:
        return order_payload(self.order, self.previous_status, self.changed_by)


class OrderCreated(BroadcastEvent):
    """A customer placed an order."""

    def __init__(self, order: Order) -> None:
        self.order = order

    def broadcast_on(self) -> list[str]:
        return order_channels(self.order)

    def broadcast_as(self) -> str:
        return "order.created"

    def broadcast_with(self) -> dict[str, Any]:
        return order_payload(self.order, None, self.order.user)

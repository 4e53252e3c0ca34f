"""Broadcast events, shaped like Laravel's: ``broadcast_on``, ``broadcast_as``, ``broadcast_with``.

An event names its channels and its payload; :func:`webapp.broadcasting.outbox.enqueue` stores
it in the same transaction as the change that caused it, and the delivery code sends it later.
The domain's order events (:mod:`webapp.orders.events`) are broadcast as
:class:`OrderBroadcast`.
"""

from __future__ import annotations

from typing import Any

from ..orders.events import OrderCreated, OrderEvent
from ..orders.models import Order, User
from ..orders.money import format_cents
from ..orders.records import OrderRecord, Person
from ..orders.times import iso8601


def private_channel(name: str) -> str:
    """Laravel's ``new PrivateChannel(name)``."""
    return f"private-{name}"


class BroadcastEvent:
    """Base class: subclasses say where (``broadcast_on``), as what, and with which data."""

    def broadcast_on(self) -> list[str]:
        raise NotImplementedError

    def broadcast_as(self) -> str:
        raise NotImplementedError

    def broadcast_with(self) -> dict[str, Any]:
        raise NotImplementedError


def order_channels(order: Order | OrderRecord) -> list[str]:
    """The owner's private channel and the admins' channel."""
    return [private_channel(f"user.{order.user_id}.orders"), private_channel("admin.orders")]


def order_payload(order: Order | OrderRecord, previous_status: str | None,
                  changed_by: User | Person | None) -> dict:
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
            {"product_name": item.product_name, "quantity": item.quantity} for item in items[:3]
        ],
    }


class OrderBroadcast(BroadcastEvent):
    """An order event on its owner's and the admins' channels: ``order.created`` when a
    customer placed it (or an admin for her), ``order.status.updated`` when it moved."""

    def __init__(self, event: OrderEvent) -> None:
        self.event = event

    def broadcast_on(self) -> list[str]:
        return order_channels(self.event.order)

    def broadcast_as(self) -> str:
        return "order.created" if isinstance(self.event, OrderCreated) else "order.status.updated"

    def broadcast_with(self) -> dict[str, Any]:
        event = self.event
        if isinstance(event, OrderCreated):
            return order_payload(event.order, None, event.placed_by or event.order.user)
        return order_payload(event.order, event.previous_status.value, event.changed_by)

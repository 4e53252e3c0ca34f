"""What happened to an order: the events a change returns to its caller.

Plain facts, no channels and no payloads: :mod:`webapp.broadcasting.events` says how each is
broadcast, and the caller's unit of work writes them to the outbox with the change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .models import Order, User
    from .records import OrderRecord, Person
    from .status import OrderStatus


@dataclass(frozen=True, slots=True)
class OrderCreated:
    """A customer placed an order, or an admin (``placed_by``) placed it for her."""

    order: Order
    placed_by: User | None = None


@dataclass(frozen=True, slots=True)
class OrderStatusChanged:
    """An order moved from ``previous_status`` to its current status."""

    order: Order | OrderRecord
    previous_status: OrderStatus
    changed_by: User | Person | None


OrderEvent = OrderCreated | OrderStatusChanged

"""What happened to an order: the events a change returns to its caller.

Plain facts, no channels and no payloads: :mod:`webapp.broadcasting.events` says how each is
broadcast, and the caller's unit of work writes them to the outbox with the change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .models import Order, User
    from .status import OrderStatus


@dataclass(frozen=True, slots=True)
class OrderCreated:
    """A customer placed an order."""

    order: Order


@dataclass(frozen=True, slots=True)
class OrderStatusChanged:
    """An order moved from ``previous_status`` to its current status."""

    order: Order
    previous_status: OrderStatus
    changed_by: User | None


OrderEvent = OrderCreated | OrderStatusChanged

"""The order status machine: labels and allowed transitions, free of I/O."""

from __future__ import annotations

import enum


class OrderStatus(enum.StrEnum):
    """Where an order is in its life; ``value`` is what the API and the events carry."""

    PENDING = "pending"
    PAID = "paid"
    PROCESSING = "processing"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"
    REFUNDED = "refunded"

    @property
    def label(self) -> str:
        return _LABELS[self]

    @property
    def allowed_transitions(self) -> tuple[OrderStatus, ...]:
        return _TRANSITIONS[self]

    def can_transition_to(self, other: OrderStatus) -> bool:
        return other in _TRANSITIONS[self]

    @classmethod
    def parse(cls, value: object) -> OrderStatus:
        """The status named ``value``; ValueError listing the known ones otherwise."""
        try:
            return cls(value)
        except ValueError:
            known = ", ".join(s.value for s in cls)
            raise ValueError(f"unknown status {value!r}; use one of: {known}") from None


_LABELS = {
    OrderStatus.PENDING: "Pending Payment",
    OrderStatus.PAID: "Paid",
    OrderStatus.PROCESSING: "Processing",
    OrderStatus.SHIPPED: "Shipped",
    OrderStatus.DELIVERED: "Delivered",
    OrderStatus.CANCELLED: "Cancelled",
    OrderStatus.REFUNDED: "Refunded",
}

_TRANSITIONS: dict[OrderStatus, tuple[OrderStatus, ...]] = {
    OrderStatus.PENDING: (OrderStatus.PAID, OrderStatus.CANCELLED),
    OrderStatus.PAID: (OrderStatus.PROCESSING, OrderStatus.CANCELLED, OrderStatus.REFUNDED),
    OrderStatus.PROCESSING: (OrderStatus.SHIPPED, OrderStatus.CANCELLED),
    OrderStatus.SHIPPED: (OrderStatus.DELIVERED,),
    OrderStatus.DELIVERED: (OrderStatus.REFUNDED,),
    OrderStatus.CANCELLED: (),
    OrderStatus.REFUNDED: (),
}


class InvalidTransition(ValueError):
    """A status change the machine does not allow; the message names the allowed ones."""

    def __init__(self, current: OrderStatus, target: OrderStatus) -> None:
        allowed = ", ".join(s.value for s in current.allowed_transitions) or "none (final status)"
        super().__init__(
            f"cannot change status from {current.value} to {target.value}; "
            f"allowed from {current.value}: {allowed}"
        )
        self.current = current
        self.target = target

"""Placing orders: validate the lines, take the stock, price at today's prices.

A pending (unpaid) order holds its stock for ``PENDING_ORDER_TTL`` seconds: then the worker
cancels it (:func:`expired_pending_orders` finds it), which gives the stock back. A customer
has at most ``PENDING_ORDERS_PER_CUSTOMER`` pending orders at once: together, one customer
cannot hold all the stock for long.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import func, update

from ..extensions import db
from .events import OrderCreated
from .ids import is_valid_id
from .models import Order, OrderItem, OrderStatusHistory, User
from .products import OutOfStock, Product, take_stock
from .status import OrderStatus
from .times import utcnow

MAX_LINES = 50
MAX_QUANTITY = 1000
EXPIRED_PER_PASS = 100  # orders the worker cancels per pass, each in its own transaction


class OrderError(ValueError):
    """An order that cannot be placed; the message says why (answered as 422)."""


@dataclass(frozen=True, slots=True)
class PendingRules:
    """How long a pending order holds its stock, and how many one customer may have."""

    ttl_seconds: float
    per_customer: int

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> PendingRules:
        return cls(float(config["PENDING_ORDER_TTL"]), int(config["PENDING_ORDERS_PER_CUSTOMER"]))


def parse_lines(items: Any) -> dict[int, int]:
    """``[{product_id, quantity}, ...]`` as ``{product_id: quantity}`` (repeats are summed)."""
    if not isinstance(items, list) or not items:
        raise OrderError("items must be a non-empty list of {product_id, quantity}")
    if len(items) > MAX_LINES:
        raise OrderError(f"an order has at most {MAX_LINES} items")
    lines: dict[int, int] = {}
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise OrderError(f"items[{index}] must be an object with product_id and quantity")
        product_id, quantity = item.get("product_id"), item.get("quantity")
        if not is_valid_id(product_id):
            raise OrderError(f"items[{index}].product_id must be a positive integer id")
        if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 1:
            raise OrderError(f"items[{index}].quantity must be a positive integer")
        lines[product_id] = lines.get(product_id, 0) + quantity
        if lines[product_id] > MAX_QUANTITY:
            raise OrderError(f"quantity of product {product_id} is above {MAX_QUANTITY}")
    return lines


def add_order(user: User, items: Any, rules: PendingRules) -> tuple[Order, list[OrderCreated]]:
    """Add a pending order for ``user`` to the session, flushed but not committed, and return
    it with the events it caused: the caller writes them to the outbox and commits, or rolls
    back on an error."""
    lines = parse_lines(items)
    _check_pending_cap(user, rules)
    products = {p.id: p for p in db.session.scalars(
        db.select(Product).where(Product.id.in_(lines))
    )}
    missing = sorted(set(lines) - set(products))
    if missing:
        raise OrderError(f"unknown product id(s): {', '.join(map(str, missing))}")
    try:
        for product_id in sorted(lines):  # in one order everywhere: no deadlock between orders
            take_stock(products[product_id], lines[product_id])
    except OutOfStock as exc:
        raise OrderError(str(exc)) from None
    order = Order(user=user, status=OrderStatus.PENDING)
    db.session.add(order)
    for product_id, quantity in lines.items():
        order.items.append(OrderItem(
            product=products[product_id], quantity=quantity,
            unit_price_cents=products[product_id].price_cents,
        ))
    order.total_cents = sum(item.line_total_cents for item in order.items)
    order.history.append(OrderStatusHistory(to_status=OrderStatus.PENDING, changed_by=user))
    db.session.flush()
    order.assign_number()
    return order, [OrderCreated(order)]


def _check_pending_cap(user: User, rules: PendingRules) -> None:
    """:class:`OrderError` when ``user`` already has ``PENDING_ORDERS_PER_CUSTOMER`` pending
    orders. It first locks the user's row with an UPDATE that changes nothing (a row lock on
    PostgreSQL, the write lock on SQLite), so the customer's concurrent orders count one after
    the other until each commits: together they never pass the cap."""
    db.session.execute(update(User).where(User.id == user.id)
                       .values(session_epoch=User.session_epoch)
                       .execution_options(synchronize_session=False))
    pending = db.session.scalar(db.select(func.count(Order.id)).where(
        Order.user_id == user.id, Order.status == OrderStatus.PENDING))
    if pending >= rules.per_customer:
        raise OrderError(
            f"you have {pending} unpaid orders, the most one customer may have at once "
            f"({rules.per_customer}); pay or cancel one first (an unpaid order is cancelled "
            f"after {_duration(rules.ttl_seconds)})")


def _duration(seconds: float) -> str:
    """``30 minutes``, ``1 hour``, ``0.5 seconds``: a TTL as people read it."""
    for unit, size in (("hour", 3600), ("minute", 60), ("second", 1)):
        if seconds >= size and seconds % size == 0:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds:g} seconds"


def expired_pending_orders(ttl_seconds: float) -> list[int]:
    """The ids of the pending orders placed more than ``ttl_seconds`` ago, the oldest
    :data:`EXPIRED_PER_PASS`: the worker cancels each in its own transaction."""
    return list(db.session.scalars(
        db.select(Order.id)
        .where(Order.status == OrderStatus.PENDING,
               Order.created_at < utcnow() - timedelta(seconds=ttl_seconds))
        .order_by(Order.created_at, Order.id).limit(EXPIRED_PER_PASS)))


def expiry_reason(ttl_seconds: float) -> str:
    """The history note of an order cancelled for not being paid in time."""
    return f"not paid within {_duration(ttl_seconds)}: cancelled, its items back in stock"

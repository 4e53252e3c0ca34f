"""Placing orders: validate the lines, take the stock, price at today's prices, broadcast.

A pending (unpaid) order holds its stock for ``PENDING_ORDER_TTL`` seconds: then the worker
cancels it (:func:`expire_pending_orders`), which gives the stock back. A customer has at most
``PENDING_ORDERS_PER_CUSTOMER`` pending orders at once: together, one customer cannot hold all
the stock for long.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from flask import current_app
from sqlalchemy import func, update

from .events import OrderCreated
from .extensions import db
from .idempotency import Answer, run_once
from .ids import is_valid_id
from .models import ConcurrentChange, Order, OrderItem, OrderStatusHistory, Product, User
from .outbox import enqueue, utcnow
from .serializers import order_dict
from .status import OrderStatus

log = logging.getLogger(__name__)

MAX_LINES = 50
MAX_QUANTITY = 1000
EXPIRED_PER_PASS = 100  # orders the worker cancels per pass, each in its own transaction


class OrderError(ValueError):
    """An order that cannot be placed; the message says why (answered as 422)."""


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


def place_order(user: User, items: Any, placed_by: User | None = None) -> Order:
    """Create a pending order for ``user`` and broadcast ``order.created``, in one commit;
    ``placed_by`` is the admin who placed it for ``user`` (default: ``user``)."""
    try:
        order = add_order(user, items, placed_by)
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    return order


def place_order_once(user: User, key: str, items: Any, customer: User | None = None) -> Answer:
    """:func:`place_order` at most once per ``user`` and idempotency ``key``: the answer
    (201, ``{"order": ...}``) of the first request with the key. ``customer``: the order is
    for that customer, placed by ``user`` (an admin). Raises OrderError, or
    idempotency.KeyReused when the key came with other items or for another customer."""
    payload = {"items": items} if customer is None else {"items": items, "user_id": customer.id}
    return run_once(user, key, payload, lambda: Answer(201, {"order": order_dict(
        add_order(customer or user, items, user), detail=True, for_admin=user.is_admin)}))


def find_customer(user_id: Any) -> User:
    """The customer (not an admin) whose id is ``user_id``, for an order an admin places for
    them; OrderError when there is none."""
    if not is_valid_id(user_id):
        raise OrderError("user_id must be a customer's id, a positive integer")
    customer = db.session.get(User, user_id)
    if customer is None or customer.is_admin:
        raise OrderError(f"user {user_id} is not a customer; an order is placed for a customer")
    return customer


def add_order(user: User, items: Any, placed_by: User | None = None) -> Order:
    """Add a pending order for ``user`` (placed by ``placed_by``, default ``user``) and its
    ``order.created`` event to the session, flushed but not committed: the caller commits,
    or rolls back on an error."""
    lines = parse_lines(items)
    _check_pending_cap(user)
    products = {p.id: p for p in db.session.scalars(
        db.select(Product).where(Product.id.in_(lines))
    )}
    missing = sorted(set(lines) - set(products))
    if missing:
        raise OrderError(f"unknown product id(s): {', '.join(map(str, missing))}")
    for product_id in sorted(lines):  # in one order everywhere: no deadlock between orders
        _take_stock(products[product_id], lines[product_id])
    order = Order(user=user, status=OrderStatus.PENDING)
    db.session.add(order)
    for product_id, quantity in lines.items():
        order.items.append(OrderItem(
            product=products[product_id], quantity=quantity,
            unit_price_cents=products[product_id].price_cents,
        ))
    order.total_cents = sum(item.line_total_cents for item in order.items)
    order.history.append(OrderStatusHistory(to_status=OrderStatus.PENDING,
                                            changed_by=placed_by or user))
    db.session.flush()
    order.assign_number()
    enqueue(OrderCreated(order, placed_by))
    return order


def _check_pending_cap(user: User) -> None:
    """:class:`OrderError` when ``user`` already has ``PENDING_ORDERS_PER_CUSTOMER`` pending
    orders. It first locks the user's row with an UPDATE that changes nothing (a row lock on
    PostgreSQL, the write lock on SQLite), so the customer's concurrent orders count one after
    the other until each commits: together they never pass the cap."""
    db.session.execute(update(User).where(User.id == user.id)
                       .values(session_epoch=User.session_epoch)
                       .execution_options(synchronize_session=False))
    pending = db.session.scalar(db.select(func.count(Order.id)).where(
        Order.user_id == user.id, Order.status == OrderStatus.PENDING))
    cap = current_app.config["PENDING_ORDERS_PER_CUSTOMER"]
    if pending >= cap:
        ttl = _duration(current_app.config["PENDING_ORDER_TTL"])
        raise OrderError(
            f"you have {pending} unpaid orders, the most one customer may have at once ({cap}); "
            f"pay or cancel one first (an unpaid order is cancelled after {ttl})")


def _duration(seconds: float) -> str:
    """``30 minutes``, ``1 hour``, ``0.5 seconds``: a TTL as people read it."""
    for unit, size in (("hour", 3600), ("minute", 60), ("second", 1)):
        if seconds >= size and seconds % size == 0:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds:g} seconds"


def expire_pending_orders() -> int:
    """Cancel the pending orders placed more than ``PENDING_ORDER_TTL`` seconds ago (the oldest
    :data:`EXPIRED_PER_PASS`), each in its own commit as any transition: a history row with the
    reason, the stock given back, ``order.status.updated`` in the outbox. An order someone moved
    meanwhile is left as they moved it. Returns how many were cancelled."""
    ttl = current_app.config["PENDING_ORDER_TTL"]
    expired = db.session.scalars(
        db.select(Order.id)
        .where(Order.status == OrderStatus.PENDING,
               Order.created_at < utcnow() - timedelta(seconds=ttl))
        .order_by(Order.created_at, Order.id).limit(EXPIRED_PER_PASS)).all()
    reason = f"not paid within {_duration(ttl)}: cancelled, its items back in stock"
    cancelled = 0
    for order_id in expired:
        order = db.session.get(Order, order_id, populate_existing=True)
        if order is None or order.status is not OrderStatus.PENDING:
            continue  # paid or cancelled since the look
        try:
            cancelled += order.transition_to(OrderStatus.CANCELLED, None, reason)
        except ConcurrentChange:
            log.info("order %s changed while it expired; left as it is", order_id)
    return cancelled


def stale_view_error(order: Order, expected: object) -> str | None:
    """Why a transition based on ``expected``, the status the caller saw, must not go ahead
    (the order has moved on: answer 409), or None. None when ``expected`` was not sent;
    ValueError when it is not a status."""
    if expected is None:
        return None
    seen = OrderStatus.parse(expected)
    if seen is order.status:
        return None
    return (f"order {order.id} is {order.status.value} now, not {seen.value} as you saw it; "
            "reload it and try again")


def _take_stock(product: Product, quantity: int) -> None:
    """Decrement stock only if enough is left (a conditional UPDATE, safe under concurrency)."""
    taken = db.session.execute(
        update(Product)
        .where(Product.id == product.id, Product.stock >= quantity)
        .values(stock=Product.stock - quantity)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not taken:
        db.session.refresh(product)
        raise OrderError(
            f"not enough stock for {product.name!r}: {product.stock} left, {quantity} asked"
        )

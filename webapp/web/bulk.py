"""``POST /api/orders/transition``: move up to :data:`MAX_ORDERS` orders to one status in one
request. Each order is moved or refused on its own, with its own broadcast, as if it came
alone: a refused order (stale view, a change the machine does not allow, not found) is reported
and the others go on. The caller is authenticated once, and the orders are loaded in one query.

The orders that may move are written together (:func:`webapp.orders.models.move`: one UPDATE,
one INSERT of their history rows), with one outbox INSERT and one commit. When another request
changed one of them since it was loaded (its version check fails), that is rolled back and each
order goes again in a transaction of its own, so only the changed one is refused."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import selectinload

from ..broadcasting.delivery import deliver_once_after
from ..broadcasting.unit_of_work import commit
from ..extensions import db
from ..orders.ids import is_valid_id
from ..orders.models import MAX_NOTES_LENGTH, ConcurrentChange, Order, OrderItem, User, move
from ..orders.status import InvalidTransition, OrderStatus

MAX_ORDERS = 100


class BadBulkRequest(ValueError):
    """A body that cannot be run as a whole (answered 422 with the message)."""


@dataclass(frozen=True, slots=True)
class BulkTransition:
    """What ``{"status", "orders": [{"id", "expected_status"}], "notes"}`` asks for."""

    status: OrderStatus
    orders: list[tuple[int, OrderStatus | None]]  # (id, the status the caller saw)
    notes: str | None

    @classmethod
    def parse(cls, body: dict[str, Any]) -> BulkTransition:
        try:
            status = OrderStatus.parse(body.get("status"))
        except ValueError as exc:
            raise BadBulkRequest(f"status: {exc}") from None
        notes = body.get("notes")
        if notes is not None and (not isinstance(notes, str) or len(notes) > MAX_NOTES_LENGTH):
            raise BadBulkRequest(f"notes must be a string of at most {MAX_NOTES_LENGTH} "
                                 "characters")
        items = body.get("orders")
        if not isinstance(items, list) or not 1 <= len(items) <= MAX_ORDERS:
            raise BadBulkRequest(f"orders must be a list of 1 to {MAX_ORDERS} "
                                 "{\"id\": ..., \"expected_status\": ...} objects; send more "
                                 "in further requests")
        orders = [_item(index, item) for index, item in enumerate(items)]
        seen: set[int] = set()
        for order_id, _ in orders:
            if order_id in seen:
                raise BadBulkRequest(f"order {order_id} is listed twice; list each order once")
            seen.add(order_id)
        return cls(status, orders, notes or None)


def _item(index: int, item: Any) -> tuple[int, OrderStatus | None]:
    if not isinstance(item, dict) or not is_valid_id(item.get("id")):
        raise BadBulkRequest(f"orders[{index}] must be an object whose id is a positive "
                             "integer order id")
    expected = item.get("expected_status")
    if expected is None:
        return item["id"], None
    try:
        return item["id"], OrderStatus.parse(expected)
    except ValueError as exc:
        raise BadBulkRequest(f"orders[{index}].expected_status: {exc}") from None


def run(request: BulkTransition, admin: User) -> list[dict[str, Any]]:
    """Each order moved (or refused) in the request's order: ``{"id", "ok": true, "status"}``
    or ``{"id", "ok": false, "error"}`` with the reason the single endpoint would give."""
    ids = [order_id for order_id, _ in request.orders]
    loaded = {order.id: order for order in db.session.scalars(
        db.select(Order).where(Order.id.in_(ids)).options(
            selectinload(Order.user),
            selectinload(Order.items).selectinload(OrderItem.product)))}
    # What was loaded stays loaded across the commits (no reload per order): each UPDATE still
    # checks its version, so a change made meanwhile by another request is refused, never
    # overwritten.
    session = db.session()
    session.expire_on_commit = False
    try:
        with deliver_once_after():
            try:
                return _together(loaded, request, admin)
            except ConcurrentChange:
                return [_one(loaded.get(order_id), order_id, expected, request, admin)
                        for order_id, expected in request.orders]
    finally:
        session.expire_on_commit = True


def _refusal(order: Order | None, order_id: int, expected: OrderStatus | None) -> str | None:
    if order is None:
        return f"order {order_id} does not exist"
    return order.stale_view_error(expected)


def _together(loaded: dict[int, Order], request: BulkTransition,
              admin: User) -> list[dict[str, Any]]:
    """Every order that may move, in one transaction; ConcurrentChange (rolled back) when
    another request changed one of them meanwhile."""
    results: list[dict[str, Any]] = []
    moving: list[Order] = []
    for order_id, expected in request.orders:
        order = loaded.get(order_id)
        refused = _refusal(order, order_id, expected)
        if refused is None:
            try:
                if order.will_move(request.status, request.notes):
                    moving.append(order)
            except InvalidTransition as exc:
                refused = str(exc)
        results.append({"id": order_id, "ok": False, "error": refused} if refused else
                       {"id": order_id, "ok": True, "status": request.status.value})
    commit(move(moving, request.status, admin, request.notes,
                meanwhile="an order changed meanwhile"))
    return results


def _one(order: Order | None, order_id: int, expected: OrderStatus | None,
         request: BulkTransition, admin: User) -> dict[str, Any]:
    refused = _refusal(order, order_id, expected)
    if refused:
        return {"id": order_id, "ok": False, "error": refused}
    try:
        commit(order.transition_to(request.status, admin, request.notes))
    except (InvalidTransition, ConcurrentChange) as exc:
        return {"id": order_id, "ok": False, "error": str(exc)}
    return {"id": order_id, "ok": True, "status": order.status.value}

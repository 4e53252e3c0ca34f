"""An order as plain records, read without the ORM: the API's hot path (a transition, an
order's detail) reads the caller and the order in one query and builds these from its rows,
about a quarter of the CPU of loading the same as ORM objects with their relations.

They carry the attribute names the serializers and the events read on an :class:`Order`, and
an :class:`OrderRecord` moves as an Order does (:class:`~.models.OrderMoves`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, Row, bindparam, select

from .models import Order, OrderItem, OrderMoves, OrderStatusHistory, PricedLine, User
from .products import Product
from .status import OrderStatus


@dataclass(slots=True)
class Person:
    """A user as the order desk shows her; as a caller, with what signs her in."""

    id: int
    name: str
    email: str
    is_admin: bool = False
    session_epoch: int = 0


@dataclass(slots=True)
class LineRecord(PricedLine):
    product_id: int
    product_name: str
    quantity: int
    unit_price_cents: int


@dataclass(slots=True)
class StepRecord:
    """One entry of an order's status history."""

    from_status: OrderStatus | None
    to_status: OrderStatus
    changed_by_name: str | None
    notes: str | None
    at: datetime


@dataclass(slots=True)
class OrderRecord(OrderMoves):
    id: int
    order_number: str | None
    user_id: int
    status: OrderStatus
    total_cents: int
    created_at: datetime
    updated_at: datetime
    version: int
    user: Person
    items: list[LineRecord] = field(default_factory=list)
    history: list[StepRecord] = field(default_factory=list)

    def moved(self, history_row: dict, changed_by: User | Person | None) -> None:
        self.history.append(StepRecord(
            history_row["from_status"], history_row["to_status"],
            changed_by.name if changed_by is not None else None, history_row["notes"],
            history_row["at"]))
        self.status = history_row["to_status"]
        self.updated_at = history_row["at"]
        self.version += 1


_USERS, _ORDERS = User.__table__, Order.__table__
_ITEMS, _HISTORY, _PRODUCTS = OrderItem.__table__, OrderStatusHistory.__table__, Product.__table__
_OWNER, _AUTHOR = _USERS.alias("owner"), _USERS.alias("author")
# The caller, and the order with its owner, items (with their products' names) and history
# (with its authors' names): one row per item and history entry (at most 50 x 6), in order.
_CALLER_AND_ORDER = (
    select(_USERS.c.id, _USERS.c.name, _USERS.c.email, _USERS.c.is_admin,
           _USERS.c.session_epoch,
           _ORDERS.c.id, _ORDERS.c.order_number, _ORDERS.c.user_id, _ORDERS.c.status,
           _ORDERS.c.total_cents, _ORDERS.c.created_at, _ORDERS.c.updated_at,
           _ORDERS.c.version, _OWNER.c.name, _OWNER.c.email,
           _ITEMS.c.id, _ITEMS.c.product_id, _PRODUCTS.c.name, _ITEMS.c.quantity,
           _ITEMS.c.unit_price_cents,
           _HISTORY.c.id, _HISTORY.c.from_status, _HISTORY.c.to_status, _AUTHOR.c.name,
           _HISTORY.c.notes, _HISTORY.c.at)
    .select_from(
        _USERS.outerjoin(_ORDERS, _ORDERS.c.id == bindparam("order"))
        .outerjoin(_OWNER, _OWNER.c.id == _ORDERS.c.user_id)
        .outerjoin(_ITEMS, _ITEMS.c.order_id == _ORDERS.c.id)
        .outerjoin(_PRODUCTS, _PRODUCTS.c.id == _ITEMS.c.product_id)
        .outerjoin(_HISTORY, _HISTORY.c.order_id == _ORDERS.c.id)
        .outerjoin(_AUTHOR, _AUTHOR.c.id == _HISTORY.c.changed_by_id))
    .where(_USERS.c.id == bindparam("caller"))
    .order_by(_ITEMS.c.id, _HISTORY.c.id)
)


def caller_and_order(connection: Connection, caller_id: int,
                     order_id: int) -> tuple[Person | None, OrderRecord | None]:
    """The user ``caller_id`` and the order ``order_id`` with its detail, each None when there
    is no such row; whether the caller may see the order is not checked here."""
    rows = connection.execute(_CALLER_AND_ORDER, {"caller": caller_id, "order": order_id}).all()
    if not rows:
        return None, None
    first = rows[0]
    caller = Person(*first[0:5])
    if first[5] is None:
        return caller, None
    return caller, _order(first, rows)


def _order(first: Row, rows: Sequence[Row]) -> OrderRecord:
    items: dict[int, LineRecord] = {}
    history: dict[int, StepRecord] = {}
    for row in rows:
        if row[15] is not None and row[15] not in items:
            items[row[15]] = LineRecord(*row[16:20])
        if row[20] is not None and row[20] not in history:
            history[row[20]] = StepRecord(*row[21:26])
    owner = Person(first[7], first[13], first[14])
    return OrderRecord(*first[5:13], owner, list(items.values()),
                       [history[key] for key in sorted(history)])

"""The domain's records: users, orders with their items and status history (products are in
:mod:`.products`), and the one way an order changes status.

Money is integer cents. Timestamps are naive UTC in the database.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from flask_login import UserMixin
from sqlalchemy import (
    Boolean,
    Enum,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    bindparam,
    insert,
    inspect,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.orm.attributes import set_committed_value

from ..extensions import db
from .events import OrderStatusChanged
from .products import Product, return_stock
from .status import InvalidTransition, OrderStatus
from .times import utcnow

if TYPE_CHECKING:
    from .records import Person

MAX_NOTES_LENGTH = 1000

_STATUS_TYPE = Enum(
    OrderStatus, native_enum=False, length=20, values_callable=lambda e: [s.value for s in e]
)


class ConcurrentChange(Exception):
    """The order changed in another request since it was loaded; reload and decide again."""


class User(UserMixin, db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    email: Mapped[str] = mapped_column(String(254), unique=True, index=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    # Sessions and API tokens carry the epoch they were issued in; bumping it voids them all.
    # Added after the first release: the initial migration adds it to databases made before.
    session_epoch: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))

    def get_id(self) -> str:
        """What Flask-Login keeps in the session cookie: the id and the session epoch."""
        return f"{self.id}:{self.session_epoch}"

    def to_dict(self) -> dict:
        return {"id": self.id, "name": self.name, "email": self.email, "is_admin": self.is_admin}


class OrderMoves:
    """How an order changes status, the same for an :class:`Order` and an
    :class:`~.records.OrderRecord` (read without the ORM, for the API's hot path): both have
    ``id``, ``status``, ``version`` and ``items``, and say in ``moved`` what :func:`move` wrote."""

    def transition_to(
        self, new_status: OrderStatus, changed_by: User | Person | None = None,
        notes: str | None = None,
    ) -> list[OrderStatusChanged]:
        """Move to ``new_status`` and record it, not committed (see :func:`move`). Returns the
        events it caused (none for the current status): the caller writes them to the outbox
        and commits.

        Raises :class:`InvalidTransition` for a change the status machine does not allow, and
        :class:`ConcurrentChange` (the session rolled back) when another request changed the
        order first.
        """
        if not self.will_move(new_status, notes):
            return []
        return move([self], new_status, changed_by, notes,
                    meanwhile=f"order {self.id} changed meanwhile; reload it and try again")

    def will_move(self, new_status: OrderStatus, notes: str | None = None) -> bool:
        """Whether a move to ``new_status`` with ``notes`` changes the order (False for its
        current status). Raises :class:`InvalidTransition` for a change the status machine
        does not allow, and ValueError for notes too long."""
        if notes is not None and len(notes) > MAX_NOTES_LENGTH:
            raise ValueError(f"notes must be at most {MAX_NOTES_LENGTH} characters")
        if new_status == self.status:
            return False
        if not self.status.can_transition_to(new_status):
            raise InvalidTransition(self.status, new_status)
        return True

    def stale_view_error(self, expected: object) -> str | None:
        """Why a transition based on ``expected``, the status the caller saw, must not go
        ahead (the order has moved on: answer 409), or None. None when ``expected`` was not
        sent; ValueError when it is not a status."""
        if expected is None:
            return None
        seen = OrderStatus.parse(expected)
        if seen is self.status:
            return None
        return (f"order {self.id} is {self.status.value} now, not {seen.value} as you saw it; "
                "reload it and try again")

    def moved(self, history_row: dict, changed_by: User | Person | None) -> None:
        """Take what :func:`move` wrote: ``history_row`` and the order's new status."""
        raise NotImplementedError


class Order(OrderMoves, db.Model):
    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_number: Mapped[str | None] = mapped_column(String(32), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    status: Mapped[OrderStatus] = mapped_column(_STATUS_TYPE, default=OrderStatus.PENDING)
    total_cents: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Optimistic locking: a change based on a stale read fails instead of overwriting.
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}
    # The worker's look for expired pending orders, every pass; and the lists' status filters.
    __table_args__ = (Index("ix_orders_status_created_at", "status", "created_at"),)

    user: Mapped[User] = relationship()
    items: Mapped[list[OrderItem]] = relationship(
        back_populates="order", order_by="OrderItem.id", cascade="all, delete-orphan"
    )
    history: Mapped[list[OrderStatusHistory]] = relationship(
        back_populates="order", order_by="OrderStatusHistory.id", cascade="all, delete-orphan"
    )

    def moved(self, history_row: dict, changed_by: User | Person | None) -> None:
        """Set to what :func:`move` wrote, as committed values: the session has nothing to
        flush, and an answer read from the order shows the move."""
        if "history" in inspect(self).dict:
            entry = OrderStatusHistory(**history_row)
            set_committed_value(entry, "changed_by", changed_by)
            set_committed_value(self, "history", [*self.history, entry])
        set_committed_value(self, "status", history_row["to_status"])
        set_committed_value(self, "updated_at", history_row["at"])
        set_committed_value(self, "version", self.version + 1)

    def assign_number(self) -> None:
        """``ORD-<year>-<id, 6 digits>``; needs the id, so call it after a flush."""
        self.order_number = f"ORD-{self.created_at.year}-{self.id:06d}"


def move(orders: Sequence[OrderMoves], new_status: OrderStatus,
         changed_by: User | Person | None, notes: str | None,
         meanwhile: str) -> list[OrderStatusChanged]:
    """The one way orders change status: move ``orders`` (each of which :meth:`Order.will_move`
    said may move) to ``new_status`` in the current transaction, not committed, and return
    their events.

    It is written as SQL, not flushed from the session: one UPDATE that names the version of
    each order as it was loaded, one INSERT of their history rows (on PostgreSQL both in one
    statement) and, for a cancellation, their items back in stock (none of them has shipped).
    When another request moved one of them first, its version no longer matches: the
    transaction is rolled back and :class:`ConcurrentChange` raised with ``meanwhile``. The
    loaded orders (and their history, when loaded) are then set to what was written, as the
    database has it."""
    if not orders:
        return []
    now = utcnow()
    db.session.flush()  # what the session holds goes first, as it would before a query
    connection = db.session.connection()
    changed_by_id = changed_by.id if changed_by is not None else None
    history = [{"order_id": order.id, "from_status": order.status, "to_status": new_status,
                "changed_by_id": changed_by_id, "notes": notes, "at": now} for order in orders]
    moving = {"loaded": [(order.id, order.version) for order in orders],
              "new_status": new_status, "now": now}
    if connection.dialect.name == "postgresql":
        moved = connection.execute(_MOVE_AND_RECORD, {
            **moving, "changed_by_id": changed_by_id, "notes": notes}).rowcount
    else:  # a history row of an order that did not move goes with the rollback below
        moved = connection.execute(_MOVE, moving).rowcount
        connection.execute(_RECORD, history)
    if moved != len(orders):
        db.session.rollback()
        raise ConcurrentChange(meanwhile)
    if new_status is OrderStatus.CANCELLED:
        return_stock([item for order in orders for item in order.items])
    events = []
    for order, row in zip(orders, history, strict=True):
        events.append(OrderStatusChanged(order, order.status, changed_by))
        order.moved(row, changed_by)
    return events


class PricedLine:
    """A line of an order: ``quantity`` of a product at ``unit_price_cents``, its price when
    it was bought."""

    quantity: int
    unit_price_cents: int

    @property
    def line_total_cents(self) -> int:
        return self.quantity * self.unit_price_cents


class OrderItem(PricedLine, db.Model):
    __tablename__ = "order_items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price_cents: Mapped[int] = mapped_column(Integer)  # the price when it was bought

    order: Mapped[Order] = relationship(back_populates="items")
    product: Mapped[Product] = relationship()

    @property
    def product_name(self) -> str:
        return self.product.name



class OrderStatusHistory(db.Model):
    __tablename__ = "order_status_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    from_status: Mapped[OrderStatus | None] = mapped_column(_STATUS_TYPE)
    to_status: Mapped[OrderStatus] = mapped_column(_STATUS_TYPE)
    changed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    notes: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(default=utcnow)

    order: Mapped[Order] = relationship(back_populates="history")
    changed_by: Mapped[User | None] = relationship()

    @property
    def changed_by_name(self) -> str | None:
        return self.changed_by.name if self.changed_by is not None else None


# The statements of :func:`move`, built once (building them was half of its time).
_ORDERS = Order.__table__
_MOVE = (update(_ORDERS)
         .where(tuple_(_ORDERS.c.id, _ORDERS.c.version).in_(bindparam("loaded", expanding=True)))
         .values(status=bindparam("new_status"), updated_at=bindparam("now"),
                 version=_ORDERS.c.version + 1))
_RECORD = insert(OrderStatusHistory.__table__)
# On PostgreSQL both in one statement, one round trip less: the UPDATE returns each order it
# moved with its status before (from a second look at the row, which sees it as it was), and
# the history rows are inserted from those. The INSERT's row count (kept: SQLAlchemy keeps only
# an UPDATE's by default) is the orders moved. SQLite has no UPDATE inside a WITH.
_BEFORE = _ORDERS.alias("before")
_MOVED = (_MOVE.where(_BEFORE.c.id == _ORDERS.c.id)
          .returning(_ORDERS.c.id, _BEFORE.c.status.label("from_status")).cte("moved"))
_MOVE_AND_RECORD = insert(OrderStatusHistory.__table__).from_select(
    ["order_id", "from_status", "to_status", "changed_by_id", "notes", "at"],
    select(_MOVED.c.id, _MOVED.c.from_status, bindparam("new_status", type_=_STATUS_TYPE),
           bindparam("changed_by_id", type_=Integer), bindparam("notes", type_=Text),
           bindparam("now", type_=OrderStatusHistory.at.type)),
).add_cte(_MOVED).execution_options(preserve_rowcount=True)

"""The domain: users, products, orders with their items and status history.

Money is integer cents. Timestamps are naive UTC in the database.
"""

from __future__ import annotations

from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import (
    Boolean,
    Enum,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
    update,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.security import generate_password_hash

from .events import OrderStatusChanged
from .extensions import db
from .outbox import enqueue, enqueue_termination, utcnow
from .status import InvalidTransition, OrderStatus

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

    def end_sessions(self) -> None:
        """Void every session cookie and API token issued so far, and close the user's live
        connections on the broadcaster (both when the transaction commits)."""
        self.session_epoch = (self.session_epoch or 0) + 1
        if self.id is not None:  # a new user has no connections yet
            enqueue_termination(self.id)

    def set_password(self, password: str) -> None:
        """Change the password, which signs the user out everywhere."""
        self.password_hash = generate_password_hash(password)
        self.end_sessions()

    def to_dict(self) -> dict:
        return {"id": self.id, "name": self.name, "email": self.email, "is_admin": self.is_admin}


class Product(db.Model):
    __tablename__ = "products"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    price_cents: Mapped[int] = mapped_column(Integer)
    stock: Mapped[int] = mapped_column(Integer, default=0)


class Order(db.Model):
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

    def assign_number(self) -> None:
        """``ORD-<year>-<id, 6 digits>``; needs the id, so call it after a flush."""
        self.order_number = f"ORD-{self.created_at.year}-{self.id:06d}"

    def transition_to(
        self, new_status: OrderStatus, changed_by: User | None = None, notes: str | None = None
    ) -> bool:
        """Move to ``new_status``, record it and broadcast it, all in one commit; a cancelled
        order gives its items back to stock (none of them has shipped).

        Returns False (and does nothing) for the current status; raises
        :class:`InvalidTransition` for a change the status machine does not allow, and
        :class:`ConcurrentChange` when another request changed the order first.
        """
        changed = self.record_transition(new_status, changed_by, notes)
        if changed:
            db.session.commit()
        return changed

    def record_transition(
        self, new_status: OrderStatus, changed_by: User | None = None, notes: str | None = None
    ) -> bool:
        """:meth:`transition_to` without the commit: the caller commits (and may read the
        order first without loading it again), or rolls back."""
        if notes is not None and len(notes) > MAX_NOTES_LENGTH:
            raise ValueError(f"notes must be at most {MAX_NOTES_LENGTH} characters")
        if new_status == self.status:
            return False
        if not self.status.can_transition_to(new_status):
            raise InvalidTransition(self.status, new_status)
        previous = self.status
        try:
            self.status = new_status
            self.updated_at = utcnow()
            db.session.add(OrderStatusHistory(
                order=self, from_status=previous, to_status=new_status,
                changed_by=changed_by, notes=notes,
            ))
            # One flush for the order and its history row; its UPDATE is the version check,
            # which fails if another request moved the order first.
            db.session.flush()
        except StaleDataError:
            db.session.rollback()
            raise ConcurrentChange(
                f"order {self.id} changed meanwhile; reload it and try again"
            ) from None
        if new_status is OrderStatus.CANCELLED:
            self._return_stock()
        enqueue(OrderStatusChanged(self, previous.value, changed_by))
        return True

    def _return_stock(self) -> None:
        """Put the items back in stock (an UPDATE relative to the current stock, so concurrent
        orders of the same product are not overwritten), by product id as orders take it."""
        for item in sorted(self.items, key=lambda item: item.product_id):
            db.session.execute(
                update(Product).where(Product.id == item.product_id)
                .values(stock=Product.stock + item.quantity)
                .execution_options(synchronize_session=False))


class OrderItem(db.Model):
    __tablename__ = "order_items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price_cents: Mapped[int] = mapped_column(Integer)  # the price when it was bought

    order: Mapped[Order] = relationship(back_populates="items")
    product: Mapped[Product] = relationship()

    @property
    def line_total_cents(self) -> int:
        return self.quantity * self.unit_price_cents


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


class IdempotencyKey(db.Model):
    """The first answer to a request sent with ``Idempotency-Key`` (per user), to send again.

    Written in the same transaction as what the request created, so a key is stored exactly
    when its order is; the unique (user, key) makes a concurrent duplicate wait and then fail.
    """

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("user_id", "key", name="uq_idempotency_keys_user_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    key: Mapped[str] = mapped_column(String(200))
    fingerprint: Mapped[str] = mapped_column(String(64))  # sha256 hex of the request's body
    status_code: Mapped[int] = mapped_column(Integer)
    response_body: Mapped[str] = mapped_column(Text)  # JSON
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)

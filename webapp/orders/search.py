"""Which orders a list shows: a status filter, a search text, counts per status."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import Select, func, or_
from sqlalchemy.orm import selectinload

from ..extensions import db
from .models import Order, User
from .status import OrderStatus

ALL = "all"
MAX_QUERY_LENGTH = 200


class BadFilter(ValueError):
    """A status or search text that cannot be used (answered as 400)."""


@dataclass(frozen=True, slots=True)
class OrderFilter:
    status: OrderStatus | None  # None: every status
    q: str

    @classmethod
    def parse(cls, args: Mapping[str, str]) -> OrderFilter:
        """``?status=<value|all>&q=<text>``; both optional."""
        value = args.get("status", ALL) or ALL
        status = None
        if value != ALL:
            try:
                status = OrderStatus.parse(value)
            except ValueError as exc:
                raise BadFilter(f"status: {exc}, or {ALL}") from None
        q = args.get("q", "").strip()
        if len(q) > MAX_QUERY_LENGTH:
            raise BadFilter(f"q must be at most {MAX_QUERY_LENGTH} characters")
        return cls(status, q)

    def as_dict(self) -> dict[str, str]:
        return {"status": self.status.value if self.status else ALL, "q": self.q}


def _like_escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def matching_orders(order_filter: OrderFilter, owner_id: int | None) -> Select:
    """Orders newest first, with their user and items loaded; ``owner_id`` limits to one
    customer's. ``q`` matches an order number (exact or prefix) or the customer's name or
    email (contains, ignoring case)."""
    query = db.select(Order).options(selectinload(Order.user), selectinload(Order.items))
    query = query.order_by(Order.id.desc())
    if owner_id is not None:
        query = query.where(Order.user_id == owner_id)
    if order_filter.status is not None:
        query = query.where(Order.status == order_filter.status)
    if order_filter.q:
        text = _like_escaped(order_filter.q)
        customers = db.select(User.id).where(or_(
            User.name.ilike(f"%{text}%", escape="\\"), User.email.ilike(f"%{text}%", escape="\\")))
        query = query.where(or_(
            func.upper(Order.order_number).like(f"{text.upper()}%", escape="\\"),
            Order.user_id.in_(customers)))
    return query


def status_counts(owner_id: int | None) -> dict[str, int]:
    """``{"all": n, "<status>": n, ...}`` over every order (or ``owner_id``'s), one GROUP BY."""
    query = db.select(Order.status, func.count()).group_by(Order.status)
    if owner_id is not None:
        query = query.where(Order.user_id == owner_id)
    counts = {status.value: 0 for status in OrderStatus}
    for status, count in db.session.execute(query):
        counts[status.value] = count
    return {ALL: sum(counts.values()), **counts}

"""How a list of orders is sorted: ``?sort=<key>`` (ascending) or ``?sort=-<key>`` (descending),
newest first by creation time when absent."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Select, case

from ..extensions import db
from .models import Order, User
from .status import OrderStatus

DEFAULT_SORT = "-created"
# Each sort key's column: ``number`` sorts as the numbers run (by id: numbers are
# ``ORD-<year>-<id>``), ``status`` in the order an order lives through them, ``customer`` by name.
SORT_COLUMNS: dict[str, ColumnElement] = {
    "number": Order.id,
    "customer": db.select(User.name).where(User.id == Order.user_id)
                .correlate(Order).scalar_subquery(),
    "status": case({status: rank for rank, status in enumerate(OrderStatus)},
                   value=Order.status),
    "total": Order.total_cents,
    "created": Order.created_at,
    "updated": Order.updated_at,
}
SORT_KEYS = tuple(SORT_COLUMNS)
# The way a column sorts on its first click: dates and totals biggest first, the others A to Z.
FIRST_DESCENDING = frozenset({"total", "created", "updated"})


@dataclass(frozen=True, slots=True)
class OrderSort:
    key: str
    descending: bool

    @classmethod
    def parse(cls, args: Mapping[str, str]) -> OrderSort:
        """``?sort=total`` or ``?sort=-total``; a ValueError naming the keys for anything
        else."""
        text = args.get("sort", "") or DEFAULT_SORT
        key = text.removeprefix("-")
        if key not in SORT_KEYS:
            raise ValueError(f"sort must be one of {', '.join(SORT_KEYS)} (ascending), or one of "
                          f"them after '-' (descending), not {text[:40]!r}")
        return cls(key, text.startswith("-"))

    @property
    def value(self) -> str:
        """As in the query string: ``-created``."""
        return f"-{self.key}" if self.descending else self.key

    def apply(self, query: Select) -> Select:
        """``query`` in this order; ties by id in the same direction, so pages never overlap."""
        column = SORT_COLUMNS[self.key]
        if self.descending:
            return query.order_by(column.desc(), Order.id.desc())
        return query.order_by(column.asc(), Order.id.asc())


def next_sort(current: str, key: str) -> str:
    """The ``sort`` a click on ``key``'s column header asks for, when the list is sorted by
    ``current``: the same key the other way round, or another key its first way."""
    if current.removeprefix("-") == key:
        return key if current.startswith("-") else f"-{key}"
    return f"-{key}" if key in FIRST_DESCENDING else key

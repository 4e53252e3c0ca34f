"""A list's view as CSV: every order it matches (not only one page), in its order, safe to
open in a spreadsheet."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator

from sqlalchemy import func
from sqlalchemy.orm import aliased

from ..extensions import db
from ..orders.models import Order, OrderItem, User
from ..orders.money import format_cents
from ..orders.search import OrderView
from ..orders.times import iso8601

# Orders in one file: the rows are read whole, so this bounds the memory and time of one export.
MAX_EXPORT_ROWS = 10_000
HEADER = ("Order", "Customer", "Email", "Status", "Items", "Total", "Created (UTC)",
          "Updated (UTC)")
# A cell starting with one of these is a formula to a spreadsheet (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class TooManyRows(ValueError):
    """The view has more orders than one export may hold (answered as 422)."""


def spreadsheet_safe(value: str) -> str:
    """``value``, after a ``'`` when a spreadsheet would read it as a formula."""
    return f"'{value}" if value.startswith(FORMULA_STARTS) else value


def export_rows(view: OrderView, owner_id: int | None) -> list[tuple[str, ...]]:
    """The view's orders (``owner_id``'s only, unless None) as CSV cells; TooManyRows past
    :data:`MAX_EXPORT_ROWS`."""
    customer = aliased(User)
    items = (db.select(func.count(OrderItem.id)).where(OrderItem.order_id == Order.id)
             .correlate(Order).scalar_subquery())
    query = view.select(db.select(
        Order.order_number, customer.name, customer.email, Order.status, items,
        Order.total_cents, Order.created_at, Order.updated_at,
    ).join(customer, customer.id == Order.user_id), owner_id)
    rows = db.session.execute(query.limit(MAX_EXPORT_ROWS + 1)).all()
    if len(rows) > MAX_EXPORT_ROWS:
        raise TooManyRows(f"this view has more than {MAX_EXPORT_ROWS} orders, more than one "
                          "export holds; narrow it with a date range (from, to) or a status")
    return [(number, name, email, status.label, str(count), format_cents(cents),
             iso8601(created), iso8601(updated))
            for number, name, email, status, count, cents, created, updated in rows]


def csv_text(rows: Iterable[tuple[str, ...]]) -> Iterator[str]:
    """The header and ``rows`` as CSV (RFC 4180 quoting, CRLF), a line at a time; every cell
    :func:`spreadsheet_safe`."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in (HEADER, *rows):
        writer.writerow([spreadsheet_safe(cell) for cell in row])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()

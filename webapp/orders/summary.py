"""The day at a glance for admins: orders per status, and today's orders and revenue."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from sqlalchemy import case, func

from ..extensions import db
from .models import Order
from .money import format_cents
from .search import ALL, status_counts
from .status import OrderStatus

# Money taken and kept: paid, and on its way or delivered (not pending, cancelled or refunded).
REVENUE_STATUSES = (OrderStatus.PAID, OrderStatus.PROCESSING, OrderStatus.SHIPPED,
                    OrderStatus.DELIVERED)


def order_summary(now: datetime) -> dict:
    """``{"by_status": {"<status>": n, ...}, "orders_today": n, "revenue_today": "12.34"}``:
    today is ``now``'s day in UTC (naive, as the database keeps times); its revenue is the
    total of the orders placed today in :data:`REVENUE_STATUSES`."""
    start = datetime.combine(now.date(), time())
    today = (Order.created_at >= start) & (Order.created_at < start + timedelta(days=1))
    revenue = func.sum(case((Order.status.in_(REVENUE_STATUSES), Order.total_cents), else_=0))
    orders, cents = db.session.execute(db.select(func.count(), revenue).where(today)).one()
    by_status = status_counts(None)
    del by_status[ALL]
    return {"by_status": by_status, "orders_today": orders,
            "revenue_today": format_cents(cents or 0)}

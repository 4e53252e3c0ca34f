"""Which orders a caller may see: an order's owner and admins; to anyone else an order is
not there (404)."""

from __future__ import annotations

from collections.abc import Sequence

from flask import abort
from sqlalchemy.orm.interfaces import ORMOption

from ..extensions import db
from ..orders.models import Order, User


def visible_order(user: User, order_id: int, options: Sequence[ORMOption] = ()) -> Order:
    """The order if ``user`` may see it (its owner or an admin), loaded with ``options``.
    Otherwise 404, the very answer for an order that does not exist: a customer cannot tell
    another's order from none."""
    order = db.session.get(Order, order_id, options=options)
    if order is None or not (user.is_admin or order.user_id == user.id):
        abort(404, description=f"order {order_id} does not exist")
    return order

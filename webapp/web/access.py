"""Which orders a caller may see: an order's owner and admins."""

from __future__ import annotations

from flask import abort

from ..extensions import db
from ..orders.models import Order, User


def visible_order(user: User, order_id: int) -> Order:
    """The order if ``user`` may see it (its owner or an admin); 404 or 403 otherwise."""
    order = db.session.get(Order, order_id)
    if order is None:
        abort(404, description=f"order {order_id} does not exist")
    if not (user.is_admin or order.user_id == user.id):
        abort(403, description=f"order {order_id} is not yours")
    return order

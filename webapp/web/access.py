"""Which orders a caller may see: an order's owner and admins; to anyone else an order is
not there (404)."""

from __future__ import annotations

from flask import abort
from sqlalchemy import bindparam, select

from ..extensions import db
from ..orders.models import Order, User
from .serializers import ORDER_DETAIL

# Built once: building the query on each call (what ``Session.get`` does) cost a third of
# loading the order.
_ORDER = select(Order).where(Order.id == bindparam("id"))
_ORDER_DETAIL = _ORDER.options(*ORDER_DETAIL)


def visible_order(user: User, order_id: int, detail: bool = False) -> Order:
    """The order if ``user`` may see it (its owner or an admin); with ``detail``, loaded with
    what ``order_dict(order, detail=True)`` reads (:data:`.serializers.ORDER_DETAIL`).
    Otherwise 404, the very answer for an order that does not exist: a customer cannot tell
    another's order from none."""
    order = db.session.execute(_ORDER_DETAIL if detail else _ORDER,
                               {"id": order_id}).unique().scalar_one_or_none()
    if order is None or not (user.is_admin or order.user_id == user.id):
        abort(404, description=f"order {order_id} does not exist")
    return order

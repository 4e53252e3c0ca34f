"""Which orders a caller may see: an order's owner and admins; to anyone else an order is
not there (404)."""

from __future__ import annotations

from typing import TypeVar

from flask import abort
from sqlalchemy import bindparam, select

from ..accounts.callers import require_user, token_caller, token_user
from ..extensions import db
from ..orders import records
from ..orders.models import Order, User
from ..orders.records import OrderRecord, Person

# Built once: building the query on each call (what ``Session.get`` does) cost a quarter of
# loading the order.
_ORDER = select(Order).where(Order.id == bindparam("id"))

AnOrder = TypeVar("AnOrder", Order, OrderRecord)


def _visible(user: User | Person, order: AnOrder | None, order_id: int) -> AnOrder:
    if order is None or not (user.is_admin or order.user_id == user.id):
        abort(404, description=f"order {order_id} does not exist")
    return order


def visible_order(user: User, order_id: int) -> Order:
    """The order if ``user`` may see it (its owner or an admin); otherwise 404, the very
    answer for an order that does not exist: a customer cannot tell another's order from
    none."""
    order = db.session.execute(_ORDER, {"id": order_id}).scalar_one_or_none()
    return _visible(user, order, order_id)


def visible_record(user: User, order_id: int) -> OrderRecord:
    """:func:`visible_order` with the order's detail, as a record (what ``order_dict(order,
    detail=True)`` reads, and what a transition needs)."""
    _caller, order = records.caller_and_order(db.session.connection(), user.id, order_id)
    return _visible(user, order, order_id)


def caller_and_order(order_id: int) -> tuple[User | Person, OrderRecord]:
    """``require_user()`` and then ``visible_record(user, order_id)``, with their answers
    (401, 404); a bearer token's user and the order are read in one query."""
    claims = token_caller()
    if claims is None:  # a cookie's caller is loaded by Flask-Login
        user = require_user()
        return user, visible_record(user, order_id)
    user_id, epoch = claims
    caller, order = records.caller_and_order(db.session.connection(), user_id, order_id)
    user = token_user(caller, epoch)
    return user, _visible(user, order, order_id)

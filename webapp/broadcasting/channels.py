"""Who may subscribe to which channel: this app's routes/channels.php."""

from __future__ import annotations

from ..extensions import db
from ..orders.ids import parse_id
from ..orders.models import Order, User
from .channel_rules import ChannelRules

rules = ChannelRules()


@rules.channel("user.{user_id}.orders")
def user_orders(user: User, user_id: str) -> bool:
    """A customer's own order updates."""
    return str(user.id) == user_id


@rules.channel("admin.orders")
def admin_orders(user: User) -> bool:
    """Every order's updates, for admins."""
    return user.is_admin


@rules.channel("orders.{order_id}.viewers")
def order_viewers(user: User, order_id: str) -> dict | None:
    """Presence of people looking at an order page: its owner and admins."""
    order_pk = parse_id(order_id)
    order = db.session.get(Order, order_pk) if order_pk is not None else None
    if order is None or not (user.is_admin or order.user_id == user.id):
        return None
    return {"id": user.id, "name": user.name}

"""Placing an order for a request: the domain's order and its broadcast in one commit, at most
once per idempotency key when the caller sends one."""

from __future__ import annotations

from typing import Any

from flask import current_app

from ..broadcasting.unit_of_work import commit, write
from ..extensions import db
from ..orders.models import Order, User
from ..orders.placing import PendingRules, add_order
from .idempotency import Answer, run_once
from .serializers import order_dict


def place_order(user: User, items: Any, placed_by: User | None = None) -> Order:
    """Create a pending order for ``user`` and broadcast ``order.created``, in one commit;
    ``placed_by`` is the admin who placed it for ``user`` (default: ``user``). Raises
    OrderError."""
    try:
        order, events = add_order(user, items, PendingRules.from_config(current_app.config),
                                  placed_by)
        commit(events)
    except Exception:
        db.session.rollback()
        raise
    return order


def place_order_once(user: User, key: str, items: Any, customer: User | None = None) -> Answer:
    """:func:`place_order` at most once per ``user`` and idempotency ``key``: the answer
    (201, ``{"order": ...}``) of the first request with the key. ``customer``: the order is
    for that customer, placed by ``user`` (an admin). Raises OrderError, or
    idempotency.KeyReused when the key came with other items or for another customer."""
    rules = PendingRules.from_config(current_app.config)
    payload = {"items": items} if customer is None else {"items": items, "user_id": customer.id}

    def run() -> Answer:
        order, events = add_order(customer or user, items, rules, user)
        write(events)
        return Answer(201, {"order": order_dict(order, detail=True, for_admin=user.is_admin)})

    return run_once(user, key, payload, run)

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


def place_order(user: User, items: Any) -> Order:
    """Create a pending order for ``user`` and broadcast ``order.created``, in one commit.
    Raises OrderError."""
    try:
        order, events = add_order(user, items, PendingRules.from_config(current_app.config))
        commit(events)
    except Exception:
        db.session.rollback()
        raise
    return order


def place_order_once(user: User, key: str, items: Any) -> Answer:
    """:func:`place_order` at most once per ``user`` and idempotency ``key``: the answer
    (201, ``{"order": ...}``) of the first request with the key. Raises OrderError, or
    idempotency.KeyReused when the key came with other items."""
    rules = PendingRules.from_config(current_app.config)

    def run() -> Answer:
        order, events = add_order(user, items, rules)
        write(events)
        return Answer(201, {"order": order_dict(order, detail=True)})

    return run_once(user, key, {"items": items}, run)

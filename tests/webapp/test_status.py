"""The order status machine: every allowed and every refused transition, through the model."""

from __future__ import annotations

import itertools

import pytest
from flask import Flask

from shared.payloads import loads
from tests.clients.webapp_api import LABELS
from webapp.broadcasting.outbox import OutboxEvent
from webapp.broadcasting.unit_of_work import commit
from webapp.extensions import db
from webapp.orders.events import OrderStatusChanged
from webapp.orders.models import ConcurrentChange, Order, OrderStatusHistory, User
from webapp.orders.status import InvalidTransition, OrderStatus

# Written out from DESIGN.md, independently of webapp/orders/status.py.
ALLOWED = {
    ("pending", "paid"), ("pending", "cancelled"),
    ("paid", "processing"), ("paid", "cancelled"), ("paid", "refunded"),
    ("processing", "shipped"), ("processing", "cancelled"),
    ("shipped", "delivered"),
    ("delivered", "refunded"),
}
PAIRS = list(itertools.product(LABELS, LABELS))


def test_labels_and_values_match_the_design():
    assert {s.value: s.label for s in OrderStatus} == LABELS


@pytest.mark.parametrize("status", ["", "PAID", "shiped", None, 3])
def test_parse_refuses_unknown_statuses_naming_the_known_ones(status):
    with pytest.raises(ValueError, match="use one of: pending, paid"):
        OrderStatus.parse(status)


def _order_in(status: str) -> Order:
    order = db.session.scalars(db.select(Order).order_by(Order.id)).first()
    order.status = OrderStatus(status)
    db.session.commit()
    return order


def _counts(order: Order) -> tuple[int, int]:
    history = db.session.scalar(db.select(db.func.count(OrderStatusHistory.id))
                                .where(OrderStatusHistory.order_id == order.id))
    outbox = db.session.scalar(db.select(db.func.count(OutboxEvent.id)))
    return history, outbox


@pytest.mark.parametrize(("current", "target"), [p for p in PAIRS if p in ALLOWED])
def test_allowed_transition_saves_records_and_queues_the_event(app: Flask, current, target):
    with app.app_context():
        order = _order_in(current)
        admin = db.session.scalar(db.select(User).where(User.is_admin))
        history_before, outbox_before = _counts(order)

        events = order.transition_to(OrderStatus(target), admin, "note")
        assert events == [OrderStatusChanged(order, OrderStatus(current), admin)]
        commit(events)

        db.session.expire_all()
        assert db.session.get(Order, order.id).status.value == target
        assert _counts(order) == (history_before + 1, outbox_before + 1)
        entry = db.session.scalars(db.select(OrderStatusHistory)
                                   .order_by(OrderStatusHistory.id.desc())).first()
        assert (entry.from_status.value, entry.to_status.value, entry.changed_by_id,
                entry.notes) == (current, target, admin.id, "note")
        row = db.session.scalars(db.select(OutboxEvent).order_by(OutboxEvent.id.desc())).first()
        data = loads(row.data)
        assert row.name == "order.status.updated"
        assert loads(row.channels) == [f"private-user.{order.user_id}.orders",
                                       "private-admin.orders"]
        assert (data["previous_status"], data["current_status"],
                data["current_status_label"]) == (current, target, LABELS[target])


@pytest.mark.parametrize(("current", "target"),
                         [p for p in PAIRS if p not in ALLOWED and p[0] != p[1]])
def test_refused_transition_raises_and_changes_nothing(app: Flask, current, target):
    with app.app_context():
        order = _order_in(current)
        before = _counts(order)
        with pytest.raises(InvalidTransition, match=f"cannot change status from {current} "
                                                    f"to {target}"):
            order.transition_to(OrderStatus(target))
        db.session.rollback()
        assert db.session.get(Order, order.id).status.value == current
        assert _counts(order) == before


@pytest.mark.parametrize("status", list(LABELS))
def test_same_status_is_a_no_op(app: Flask, status):
    with app.app_context():
        order = _order_in(status)
        updated_at = order.updated_at
        before = _counts(order)
        assert order.transition_to(OrderStatus(status)) == []
        db.session.expire_all()
        assert _counts(order) == before
        assert db.session.get(Order, order.id).updated_at == updated_at


def test_final_statuses_say_so_in_the_error(app: Flask):
    with app.app_context():
        order = _order_in("refunded")
        with pytest.raises(InvalidTransition, match="none \\(final status\\)"):
            order.transition_to(OrderStatus.PAID)


def test_a_concurrent_change_is_refused_not_overwritten(app: Flask):
    with app.app_context():
        stale = db.session.get(Order, 6)  # pending, as this admin's page saw it
        with app.app_context():  # another request, its own session, moves it first
            admin = db.session.scalar(db.select(User).where(User.is_admin))
            commit(db.session.get(Order, 6).transition_to(OrderStatus.PAID, admin))
        with pytest.raises(ConcurrentChange, match="changed meanwhile"):
            stale.transition_to(OrderStatus.CANCELLED)
        db.session.expire_all()
        order = db.session.get(Order, 6)
        assert order.status is OrderStatus.PAID
        assert [h.to_status.value for h in order.history] == ["pending", "paid"]
        assert db.session.scalar(db.select(db.func.count(OutboxEvent.id))) == 1

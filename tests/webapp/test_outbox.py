"""The outbox and its delivery rules, with no broadcaster listening (the REVERB_PORT is free).

Whether an attempt was made shows in the row: a claim counts an attempt, and the failed send
records why.
"""

from __future__ import annotations

import time

from flask import Flask

from tests.waiting import eventually
from webapp.broadcasting.delivery import _BATCH, ReverbClient, deliver_pending
from webapp.broadcasting.events import OrderBroadcast
from webapp.broadcasting.outbox import PENDING_INDEX, OutboxEvent, enqueue
from webapp.broadcasting.unit_of_work import commit
from webapp.extensions import db
from webapp.orders.events import OrderStatusChanged
from webapp.orders.models import Order, User
from webapp.orders.status import OrderStatus


def transition(app: Flask, order_id: int, status: str) -> None:
    with app.app_context():
        admin = db.session.scalar(db.select(User).where(User.is_admin))
        commit(db.session.get(Order, order_id).transition_to(OrderStatus(status), admin))


def rows(app: Flask) -> list[OutboxEvent]:
    with app.app_context():
        found = list(db.session.scalars(db.select(OutboxEvent).order_by(OutboxEvent.id)))
        db.session.expunge_all()
        return found


def deliver(app: Flask):
    with app.app_context():
        return deliver_pending(ReverbClient.from_config(app.config), lease_seconds=30)


def test_a_rolled_back_change_leaves_no_event(app: Flask):
    with app.app_context():
        order = db.session.get(Order, 6)
        order.status = OrderStatus.PAID
        enqueue(OrderBroadcast(OrderStatusChanged(order, OrderStatus.PENDING, None)))
        db.session.rollback()
    assert rows(app) == []


def test_unreachable_broadcaster_keeps_the_event_pending_and_says_why(app: Flask):
    transition(app, 6, "paid")
    result = deliver(app)
    assert result.delivered == 0 and "unreachable" in result.error
    [row] = rows(app)
    assert (row.attempts, row.delivered_at, row.failed_at, row.lease_owner) == (1, None, None,
                                                                                None)
    assert "unreachable" in row.last_error


def test_a_live_lease_on_the_head_stops_other_deliverers(app: Flask):
    transition(app, 6, "paid")
    transition(app, 5, "processing")
    with app.app_context():
        head = db.session.scalars(db.select(OutboxEvent).order_by(OutboxEvent.id)).first()
        head.lease_owner, head.lease_until = "someone-else", time.time() + 60
        db.session.commit()
    result = deliver(app)
    assert result.busy and result.delivered == 0
    # Neither the leased head nor the row behind it was tried: order is kept.
    assert [(r.attempts, r.lease_owner) for r in rows(app)] == [(0, "someone-else"), (0, None)]


def test_an_expired_lease_is_taken_over(app: Flask):
    transition(app, 6, "paid")
    with app.app_context():
        head = db.session.scalars(db.select(OutboxEvent)).first()
        head.lease_owner, head.lease_until = "crashed-deliverer", time.time() - 1
        db.session.commit()
    result = deliver(app)
    assert not result.busy and "unreachable" in result.error
    [row] = rows(app)
    assert (row.attempts, row.lease_owner) == (1, None)


def test_delivery_stops_at_the_first_failure(app: Flask):
    for order_id, status in ((6, "paid"), (5, "processing"), (4, "shipped")):
        transition(app, order_id, status)
    deliver(app)
    assert [r.attempts for r in rows(app)] == [1, 0, 0]


def test_the_web_process_tries_at_once_after_commit(make_app):
    app = make_app(OUTBOX_DELIVER_ON_COMMIT=True)
    transition(app, 6, "paid")
    eventually(lambda: (found := rows(app)) and found[0].last_error is not None, 10.0,
               "a delivery attempt after commit")
    found = rows(app)
    assert found[0].attempts == 1 and "unreachable" in found[0].last_error


def test_worker_once_exit_status(app: Flask):
    runner = app.test_cli_runner()
    idle = runner.invoke(args=["worker", "--once"])
    assert (idle.exit_code, idle.output.strip()) == (0, "delivered 0, skipped 0")
    transition(app, 6, "paid")
    down = runner.invoke(args=["worker", "--once"])
    assert down.exit_code == 1
    assert "stopped: broadcaster at 127.0.0.1:" in down.output


def test_a_delivery_pass_finds_the_head_of_the_queue_through_the_pending_rows_index(app):
    """The pass's read goes through the partial index of the rows still to send, not through
    the outbox from its first row: a pass must not cost more as delivered rows pile up (before
    the index, 5 ms at 100,000 rows on PostgreSQL)."""
    with app.app_context():
        connection = db.session.connection()
        query = str(_BATCH.params(size=100).compile(dialect=connection.dialect,
                                                    compile_kwargs={"literal_binds": True}))
        if connection.dialect.name == "sqlite":
            plan = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {query}").all()
        else:  # the planner reads a table this small whole unless told not to
            connection.exec_driver_sql("SET LOCAL enable_seqscan TO off")
            plan = connection.exec_driver_sql(f"EXPLAIN {query}").all()
        assert PENDING_INDEX in " ".join(str(row[-1]) for row in plan), plan

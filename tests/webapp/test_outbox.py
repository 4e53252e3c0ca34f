"""The outbox and its delivery rules, with no broadcaster listening (the REVERB_PORT is free).

Whether an attempt was made shows in the row: a claim counts an attempt, and the failed send
records why.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import pytest
from flask import Flask

from tests.waiting import eventually
from webapp.broadcasting.delivery import _BATCH, ReverbClient, deliver_pending
from webapp.broadcasting.events import OrderBroadcast
from webapp.broadcasting.outbox import (
    PENDING_INDEX,
    PRUNE_BATCH,
    OutboxEvent,
    enqueue,
    prune_sent,
)
from webapp.broadcasting.unit_of_work import commit
from webapp.broadcasting.worker import Chores
from webapp.config import ConfigError, load
from webapp.extensions import db
from webapp.orders.events import OrderStatusChanged
from webapp.orders.models import Order, User
from webapp.orders.status import OrderStatus
from webapp.orders.times import utcnow


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


NOW = datetime(2026, 12, 7, 12, 0)
WEEK = 7 * 24 * 3600.0
OLD, RECENT = NOW - timedelta(days=8), NOW - timedelta(hours=1)


def add_rows(app: Flask, sent: list[tuple[datetime | None, datetime | None]]) -> None:
    """Outbox rows in this order, each with its (delivered_at, failed_at)."""
    with app.app_context():
        db.session.execute(db.insert(OutboxEvent), [
            {"name": "order.status.updated", "channels": "[]", "data": "{}", "created_at": OLD,
             "delivered_at": delivered_at, "failed_at": failed_at}
            for delivered_at, failed_at in sent])
        db.session.commit()


def sent_times(app: Flask) -> list[tuple[datetime | None, datetime | None]]:
    return [(row.delivered_at, row.failed_at) for row in rows(app)]


def test_rows_sent_longer_ago_than_kept_are_deleted_and_pending_ones_never(app):
    """Delivered or refused more than OUTBOX_KEEP_SECONDS ago: deleted, from the head of the
    queue up to the first row that is still pending or was sent since; a pending row is kept
    however old, and so is what follows it."""
    add_rows(app, [(OLD, None), (None, OLD), (OLD, None), (RECENT, None), (None, None),
                   (OLD, None)])
    with app.app_context():
        assert prune_sent(WEEK, NOW, batches=1) == (3, False)
    assert sent_times(app) == [(RECENT, None), (None, None), (OLD, None)]
    with app.app_context():
        assert prune_sent(WEEK, NOW + timedelta(days=7), batches=1) == (1, False)
    assert sent_times(app) == [(None, None), (OLD, None)]


def test_a_backlog_is_pruned_a_batch_at_a_time(app):
    """A table with more old rows than one prune takes: each takes its batches, and says more
    are left until none is."""
    add_rows(app, [(OLD, None)] * (2 * PRUNE_BATCH + 10) + [(None, None)])
    with app.app_context():
        assert prune_sent(WEEK, NOW, batches=2) == (2 * PRUNE_BATCH, True)
        assert prune_sent(WEEK, NOW, batches=2) == (10, False)
    assert sent_times(app) == [(None, None)]


def test_the_worker_prunes_the_outbox_among_its_chores(make_app):
    app = make_app(OUTBOX_KEEP_SECONDS=3600.0)
    just_now = utcnow()
    add_rows(app, [(OLD, None), (just_now, None)])
    Chores(app, ReverbClient.from_config(app.config)).run()
    assert [times for times in sent_times(app) if times[0] is not None] == [(just_now, None)]


@pytest.mark.parametrize("value", ["0", "-60", "nan"])
def test_a_keep_time_not_above_zero_stops_the_app_with_the_reason(value):
    with pytest.raises(ConfigError, match=r"^OUTBOX_KEEP_SECONDS=.*: set a number above 0"):
        load({"OUTBOX_KEEP_SECONDS": value}, None)

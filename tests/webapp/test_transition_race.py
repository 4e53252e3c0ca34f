"""Two admins move one order at the same moment: one wins, the other gets 409, and the order has
one history row for the move. The guard is the order's version (``Order.version``): each
UPDATE of :func:`webapp.orders.models.move` names the version it read, so the second matches no
row once the first has committed. Without it both answer 200 and the second silently
overwrites the first.

Both requests read the order before either writes: each waits at a barrier right before its
``UPDATE orders``, so the two UPDATEs really race (on PostgreSQL the second waits for the
first's row lock, on SQLite for its write lock) whatever the scheduling.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import event

from tests.webapp.conftest import ADMIN, ALICE, login
from webapp.extensions import db
from webapp.orders.models import Order

BARRIER_TIMEOUT = 30.0  # seconds; both requests reach their UPDATE within a fraction of it


def test_two_admins_moving_one_order_at_once_one_gets_409(app):
    client = app.test_client()
    admin = login(client, ADMIN)
    placed = client.post("/api/orders", json={"items": [{"product_id": 1, "quantity": 1}]},
                         headers=login(client, ALICE))
    order_id = placed.json["order"]["id"]
    both_read = threading.Barrier(2, timeout=BARRIER_TIMEOUT)

    def race_at_the_update(_connection, _cursor, statement: str, *_args) -> None:
        if "UPDATE ORDERS" in statement.upper():  # on PostgreSQL inside a WITH
            both_read.wait()

    def move(target: str):
        with app.test_client() as admin_client:
            return target, admin_client.post(f"/api/orders/{order_id}/transition",
                                              json={"status": target}, headers=admin)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", race_at_the_update)
    try:
        with ThreadPoolExecutor(2) as pool:
            answers = dict(pool.map(move, ["paid", "cancelled"]))
    finally:
        event.remove(engine, "before_cursor_execute", race_at_the_update)

    codes = {target: answer.status_code for target, answer in answers.items()}
    assert sorted(codes.values()) == [200, 409], {t: a.json for t, a in answers.items()}
    winner = next(target for target, code in codes.items() if code == 200)
    loser = next(answer for answer in answers.values() if answer.status_code == 409)
    assert "changed meanwhile" in loser.json["error"]
    with app.app_context():
        order = db.session.get(Order, order_id)
        assert order.status.value == winner
        assert [(h.from_status, h.to_status.value) for h in order.history][1:] == [
            ("pending", winner)]

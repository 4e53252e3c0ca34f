"""``POST /api/orders/transition``: many orders to one status, each on its own.

The seed's orders: 1 cancelled, 2 delivered, 3 shipped, 4 processing, 5 paid, 6 pending.
"""

from __future__ import annotations

import pytest
from flask import Flask
from sqlalchemy import event

from shared.payloads import loads
from tests.servers import Broadcaster
from tests.waiting import eventually
from tests.webapp.conftest import ADMIN, csrf_token, login, place, sign_in
from webapp.broadcasting.outbox import OutboxEvent
from webapp.extensions import db
from webapp.orders.models import Order, OrderStatusHistory
from webapp.orders.products import Product

SEEDED = {1: "cancelled", 2: "delivered", 3: "shipped", 4: "processing", 5: "paid",
          6: "pending"}


def statuses(app: Flask) -> dict[int, str]:
    with app.app_context():
        return {order.id: order.status.value for order in db.session.scalars(db.select(Order))}


def outbox(app: Flask) -> list[tuple[str, int, str | None, str]]:
    """(name, order id, previous status, current status) of each outbox row, in order."""
    with app.app_context():
        rows = db.session.scalars(db.select(OutboxEvent).order_by(OutboxEvent.id))
        return [(row.name, data["order_id"], data["previous_status"], data["current_status"])
                for row in rows for data in [loads(row.data)]]


def bulk(client, headers, status, orders, **extra):
    return client.post("/api/orders/transition", headers=headers,
                       json={"status": status, "orders": orders, **extra})


def test_each_order_moves_or_is_refused_on_its_own_in_the_requests_order(app, client, admin):
    with app.app_context():
        stock_before = {p.id: p.stock for p in db.session.scalars(db.select(Product))}
    answer = bulk(client, admin, "cancelled", [
        {"id": 6, "expected_status": "pending"},
        {"id": 5, "expected_status": "pending"},  # the caller's view is stale: it is paid
        {"id": 2},  # delivered cannot be cancelled
        {"id": 999, "expected_status": "paid"},
        {"id": 4, "expected_status": "processing"},
        {"id": 1},  # already cancelled: nothing to do, as the single endpoint
    ], notes="out of stock at the supplier")
    assert answer.status_code == 200
    results = answer.json["results"]
    assert [r["id"] for r in results] == [6, 5, 2, 999, 4, 1]
    assert [r["ok"] for r in results] == [True, False, False, False, True, True]
    assert [r.get("status") for r in results] == ["cancelled", None, None, None, "cancelled",
                                                  "cancelled"]
    assert "order 5 is paid now, not pending as you saw it" in results[1]["error"]
    assert "cannot change status from delivered to cancelled" in results[2]["error"]
    assert results[3]["error"] == "order 999 does not exist"
    assert statuses(app) == {**SEEDED, 6: "cancelled", 4: "cancelled"}
    assert outbox(app) == [("order.status.updated", 6, "pending", "cancelled"),
                           ("order.status.updated", 4, "processing", "cancelled")]
    with app.app_context():
        notes = db.session.scalars(db.select(OrderStatusHistory.notes)
                                   .where(OrderStatusHistory.to_status == "cancelled",
                                          OrderStatusHistory.order_id.in_([4, 6]))).all()
        assert notes == ["out of stock at the supplier"] * 2
        stock = {p.id: p.stock for p in db.session.scalars(db.select(Product))}
        given_back = {pid: stock[pid] - stock_before[pid] for pid in stock}
        orders = {o.id: o for o in db.session.scalars(db.select(Order).where(Order.id.in_([4, 6])))}
        expected = {pid: 0 for pid in stock}
        for order in orders.values():
            for item in order.items:
                expected[item.product_id] += item.quantity
    assert given_back == expected


def test_a_stale_view_gets_the_single_endpoints_409_reason(app, client, admin):
    single = client.post("/api/orders/5/transition", headers=admin,
                         json={"status": "processing", "expected_status": "pending"})
    assert single.status_code == 409
    [result] = bulk(client, admin, "processing",
                    [{"id": 5, "expected_status": "pending"}]).json["results"]
    assert result == {"id": 5, "ok": False, "error": single.json["error"]}


def test_a_refused_transition_gets_the_single_endpoints_reason(app, client, admin):
    single = client.post("/api/orders/3/transition", headers=admin, json={"status": "paid"})
    assert single.status_code == 422
    [result] = bulk(client, admin, "paid", [{"id": 3}]).json["results"]
    assert result == {"id": 3, "ok": False, "error": single.json["error"]}


def test_every_moved_order_is_broadcast_without_the_callers_socket(app, client, admin):
    answer = bulk(client, {**admin, "X-Socket-ID": "123.456"}, "processing",
                  [{"id": 5, "expected_status": "paid"}, {"id": 6}])
    assert [r["ok"] for r in answer.json["results"]] == [True, False]
    with app.app_context():
        assert db.session.scalars(db.select(OutboxEvent.socket_id)).all() == ["123.456"]


def test_customers_are_refused_and_nothing_changes(app, client, alice):
    answer = bulk(client, alice, "cancelled", [{"id": 6}])
    assert answer.status_code == 403
    assert answer.json == {"error": "only admins may do this"}
    assert statuses(app) == SEEDED


def test_a_signed_in_admin_page_needs_its_csrf_token(app, client):
    token = sign_in(client, "admin@example.com")
    refused = client.post("/api/orders/transition", json={"status": "paid", "orders": [{"id": 6}]})
    assert refused.status_code == 400 and "CSRF" in refused.json["error"]
    answer = client.post("/api/orders/transition", headers={"X-CSRF-TOKEN": token},
                         json={"status": "paid", "orders": [{"id": 6}]})
    assert answer.json == {"results": [{"id": 6, "ok": True, "status": "paid"}]}


@pytest.mark.parametrize(("body", "reason"), [
    ({"status": "paid", "orders": []}, "orders must be a list of 1 to 100"),
    ({"status": "paid", "orders": [{"id": 6}] * 101}, "orders must be a list of 1 to 100"),
    ({"status": "paid", "orders": {"id": 6}}, "orders must be a list of 1 to 100"),
    ({"status": "paid"}, "orders must be a list of 1 to 100"),
    ({"status": "paid", "orders": [6]}, "orders[0] must be an object whose id is a positive"),
    ({"status": "paid", "orders": [{"id": 6}, {"id": "5"}]}, "orders[1] must be an object"),
    ({"status": "paid", "orders": [{"id": 0}]}, "orders[0] must be an object"),
    ({"status": "paid", "orders": [{"id": 2**63}]}, "orders[0] must be an object"),
    ({"status": "paid", "orders": [{"id": True}]}, "orders[0] must be an object"),
    ({"status": "paid", "orders": [{"id": 6, "expected_status": "lost"}]},
     "orders[0].expected_status: unknown status 'lost'"),
    ({"status": "paid", "orders": [{"id": 6}, {"id": 6}]}, "order 6 is listed twice"),
    ({"status": "teleported", "orders": [{"id": 6}]}, "status: unknown status 'teleported'"),
    ({"orders": [{"id": 6}]}, "status: unknown status None"),
    ({"status": "paid", "orders": [{"id": 6}], "notes": 5}, "notes must be a string"),
    ({"status": "paid", "orders": [{"id": 6}], "notes": "x" * 1001}, "at most 1000"),
])
def test_a_malformed_request_is_422_with_a_reason_and_changes_nothing(app, client, admin, body,
                                                                       reason):
    answer = client.post("/api/orders/transition", headers=admin, json=body)
    assert answer.status_code == 422
    assert reason in answer.json["error"]
    assert statuses(app) == SEEDED
    assert outbox(app) == []


@pytest.mark.parametrize("data", ["nope", "[1]", '"paid"'])
def test_a_body_that_is_not_a_json_object_is_400(app, client, admin, data):
    answer = client.post("/api/orders/transition", headers=admin, data=data,
                         content_type="application/json")
    assert answer.status_code == 400
    assert answer.json == {"error": "request body must be a JSON object"}


def pending_orders(app: Flask, copies: int) -> list[int]:
    """Add ``copies`` pending orders like the seed's order 6; the ids of all pending ones."""
    with app.app_context():
        template = db.session.get(Order, 6)
        for _ in range(copies):
            copy = Order(user_id=template.user_id, total_cents=template.total_cents)
            db.session.add(copy)
            db.session.flush()
            copy.assign_number()
        db.session.commit()
        return db.session.scalars(db.select(Order.id).where(Order.status == "pending")
                                  .order_by(Order.id)).all()


def test_a_hundred_orders_in_one_request(app, client, admin):
    pending = pending_orders(app, 99)[::-1]
    assert len(pending) == 100
    answer = bulk(client, admin, "paid", [{"id": i, "expected_status": "pending"}
                                          for i in pending])
    assert answer.json["results"] == [{"id": i, "ok": True, "status": "paid"} for i in pending]
    assert [(row[1], row[2]) for row in outbox(app)] == [(i, "pending") for i in pending]


@pytest.fixture
def server(broadcaster: Broadcaster) -> Broadcaster:
    """Here ``sockets`` open on the test's own broadcaster."""
    return broadcaster


def test_the_web_process_delivers_each_moved_order_after_the_request(make_app, broadcaster,
                                                                      sockets):
    """Delivery after commit (no worker): the bulk request's commits wake the web process's
    delivery once, at the end, and every moved order's event goes out, in the request's order."""
    app = make_app(REVERB_PORT=broadcaster.port, OUTBOX_DELIVER_ON_COMMIT=True)
    with app.test_client() as client:
        admin = login(client, ADMIN)
        sock = sockets()
        answer = client.post("/broadcasting/auth", headers=admin, data={
            "socket_id": sock.socket_id, "channel_name": "private-admin.orders"})
        sock.subscribe("private-admin.orders", auth=answer.json["auth"])
        assert sock.outcome("private-admin.orders")["event"] == \
            "pusher_internal:subscription_succeeded"
        moved = bulk(client, admin, "cancelled", [{"id": 6}, {"id": 2}, {"id": 5}, {"id": 4}])
        assert [r["ok"] for r in moved.json["results"]] == [True, False, True, True]
        events = [sock.next_event() for _ in range(3)]
    assert [(e["event"], loads(e["data"])["order_id"]) for e in events] == [
        ("order.status.updated", 6), ("order.status.updated", 5), ("order.status.updated", 4)]

    def all_delivered() -> bool:
        with app.app_context():
            return db.session.scalar(db.select(db.func.count(OutboxEvent.id))
                                     .where(OutboxEvent.delivered_at.is_(None))) == 0

    eventually(all_delivered, what="every row marked delivered")


def test_only_the_admins_list_has_the_bulk_bar(app, client):
    sign_in(client, "admin@example.com")
    admin_page = client.get("/admin/orders").get_data(as_text=True)
    assert 'id="bulk-bar"' in admin_page and "bulk.js" in admin_page
    client.post("/logout", data={"csrf_token": csrf_token(client, "/admin/orders")})
    sign_in(client, "alice@example.com")
    customer_page = client.get("/orders").get_data(as_text=True)
    assert 'id="orders"' in customer_page
    assert "bulk-bar" not in customer_page and "bulk.js" not in customer_page


def test_an_order_another_request_moves_meanwhile_is_refused_and_the_others_move(
    app, client, admin
):
    """The orders are written together; when another request moves one of them between the
    bulk's read and its write, the version check fails, and each order goes again on its own:
    only that one is refused, with the reason the single endpoint gives."""
    pending = pending_orders(app, 2)
    with app.app_context():
        engine = db.engine
    moved_meanwhile = pending[1]
    updates = []

    def another_request_first(_connection, _cursor, statement: str, *_args) -> None:
        if "UPDATE ORDERS" in statement.upper():  # on PostgreSQL inside a WITH
            updates.append(statement)
            if len(updates) == 1:
                with engine.begin() as other:
                    other.execute(db.update(Order).where(Order.id == moved_meanwhile)
                                  .values(status="paid", version=Order.version + 1))

    event.listen(engine, "before_cursor_execute", another_request_first)
    try:
        answer = bulk(client, admin, "paid", [{"id": i, "expected_status": "pending"}
                                              for i in pending])
    finally:
        event.remove(engine, "before_cursor_execute", another_request_first)

    assert answer.status_code == 200
    assert answer.json["results"] == [
        {"id": i, "ok": True, "status": "paid"} if i != moved_meanwhile else
        {"id": i, "ok": False, "error": f"order {i} is paid now, not pending as you saw it; "
                                        "reload it and try again"} for i in pending]
    assert [(row[1], row[2]) for row in outbox(app)] == [
        (i, "pending") for i in pending if i != moved_meanwhile]
    with app.app_context():
        moved_by_bulk = db.session.scalars(
            db.select(OrderStatusHistory.order_id).where(OrderStatusHistory.to_status == "paid")
            .where(OrderStatusHistory.order_id.in_(pending))).all()
    assert sorted(moved_by_bulk) == [i for i in pending if i != moved_meanwhile]


def test_a_bulk_cancel_writes_in_a_fixed_number_of_statements_and_gives_all_stock_back(
    app, client, admin, alice
):
    """Twenty orders of two products cancelled in one request: one UPDATE of the orders, one
    INSERT of their history rows, one UPDATE per product (before: one per order item), and
    every item back in stock."""
    placed = place(client, alice, 10, product_id=1, quantity=2) + \
        place(client, alice, 10, product_id=2, quantity=3)
    with app.app_context():
        engine = db.engine
        stock = dict(db.session.execute(db.select(Product.id, Product.stock)).all())
    statements: list[str] = []

    def record(_connection, _cursor, statement: str, *_args) -> None:
        statements.append(" ".join(statement.split()).upper())

    event.listen(engine, "before_cursor_execute", record)
    try:
        answer = bulk(client, admin, "cancelled", [{"id": i} for i in placed])
    finally:
        event.remove(engine, "before_cursor_execute", record)

    assert [result["ok"] for result in answer.json["results"]] == [True] * 20
    def count(words: str) -> int:  # on PostgreSQL the orders' UPDATE and INSERT are one WITH
        return sum(words in statement for statement in statements)

    assert count("UPDATE ORDERS SET") == 1, statements
    assert count("INSERT INTO ORDER_STATUS_HISTORY") == 1, statements
    assert count("UPDATE PRODUCTS SET") == 2, statements
    with app.app_context():
        assert dict(db.session.execute(db.select(Product.id, Product.stock)).all()) == {
            **stock, 1: stock[1] + 20, 2: stock[2] + 30}


def test_each_moved_order_records_its_own_status_before(app, client, admin):
    """Orders leaving three different statuses in one request: each history row names the
    status its order left (on PostgreSQL the UPDATE returns it to the INSERT in one statement),
    and so does each event."""
    answer = bulk(client, admin, "cancelled", [{"id": i} for i in (4, 5, 6)])
    assert [result["ok"] for result in answer.json["results"]] == [True] * 3
    with app.app_context():
        cancelled = dict(db.session.execute(
            db.select(OrderStatusHistory.order_id, OrderStatusHistory.from_status)
            .where(OrderStatusHistory.order_id.in_((4, 5, 6)),
                   OrderStatusHistory.to_status == "cancelled")).all())
    assert {order_id: status.value for order_id, status in cancelled.items()} == {
        4: "processing", 5: "paid", 6: "pending"}
    assert outbox(app)[-3:] == [("order.status.updated", 4, "processing", "cancelled"),
                                ("order.status.updated", 5, "paid", "cancelled"),
                                ("order.status.updated", 6, "pending", "cancelled")]

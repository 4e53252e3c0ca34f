"""Issue 20, the JSON API: an admin places an order for a customer (``user_id``, admins only:
a customer's ``user_id`` is refused with 403), a customer cancels her own pending order (any
other change of hers is 403), and another customer's order is the same 404 as none.

Seeded orders: 6 alice pending, 5 alice paid, 4 bob processing, 3 bob shipped, 2 alice
delivered, 1 bob cancelled; users 1 admin, 2 alice, 3 bob."""

from __future__ import annotations

import pytest
from flask import Flask

from shared.payloads import loads
from tests.webapp.conftest import login
from tests.webapp.test_api import outbox_rows
from webapp.extensions import db
from webapp.orders.models import Order
from webapp.orders.products import Product

ALICE_ID, BOB_ID, ADMIN_ID = 2, 3, 1
ITEMS = [{"product_id": 1, "quantity": 2}]
CUSTOMER_MAY = "customers may only cancel their own pending orders; other changes are for admins"


def stock_of(app: Flask, product_id: int) -> int:
    with app.app_context():
        return db.session.get(Product, product_id).stock


def order_count(app: Flask) -> int:
    with app.app_context():
        return db.session.scalar(db.select(db.func.count(Order.id)))


# --- an admin places an order for a customer ---------------------------------------------


def test_an_admin_places_an_order_for_a_customer(app, client, admin):
    answer = client.post("/api/orders", headers=admin, json={"items": ITEMS, "user_id": ALICE_ID})

    assert answer.status_code == 201
    order = answer.json["order"]
    assert order["user"]["id"] == ALICE_ID and order["status"] == "pending"
    assert order["history"][0]["changed_by"] == "Ada Admin"
    assert stock_of(app, 1) == 118
    [row] = outbox_rows(app)
    assert row.name == "order.created"
    assert loads(row.channels) == [f"private-user.{ALICE_ID}.orders", "private-admin.orders"]
    payload = loads(row.data)
    assert payload["user"]["id"] == ALICE_ID and payload["changed_by"] == "Ada Admin"
    mine = client.get("/api/orders", headers=login(client, "alice@example.com")).json["orders"]
    assert mine[0]["id"] == order["id"]


def test_an_admin_ordering_for_herself_is_unchanged(client, admin):
    answer = client.post("/api/orders", headers=admin, json={"items": ITEMS})
    assert answer.status_code == 201
    assert answer.json["order"]["user"]["id"] == ADMIN_ID


@pytest.mark.parametrize("user_id", [ALICE_ID, BOB_ID])
def test_a_customers_user_id_is_refused_with_403_and_places_nothing(app, client, alice, user_id):
    before = order_count(app)

    answer = client.post("/api/orders", headers=alice, json={"items": ITEMS, "user_id": user_id})

    assert answer.status_code == 403
    assert "only admins may place an order for a customer" in answer.json["error"]
    assert order_count(app) == before and outbox_rows(app) == []
    assert stock_of(app, 1) == 120


@pytest.mark.parametrize(("user_id", "reason"), [
    (ADMIN_ID, "user 1 is not a customer"),
    (999, "user 999 is not a customer"),
    ("2", "user_id must be a customer's id"),
    (True, "user_id must be a customer's id"),
    (None, "user_id must be a customer's id"),
    (0, "user_id must be a customer's id"),
])
def test_an_order_for_no_customer_is_422(app, client, admin, user_id, reason):
    answer = client.post("/api/orders", headers=admin, json={"items": ITEMS, "user_id": user_id})
    assert answer.status_code == 422
    assert reason in answer.json["error"]
    assert outbox_rows(app) == []


def test_an_idempotency_key_places_one_order_per_customer_and_key(app, client, admin):
    headers = {**admin, "Idempotency-Key": "order-for-alice-1"}
    body = {"items": ITEMS, "user_id": ALICE_ID}

    first = client.post("/api/orders", headers=headers, json=body)
    again = client.post("/api/orders", headers=headers, json=body)
    other_customer = client.post("/api/orders", headers=headers,
                                 json={"items": ITEMS, "user_id": BOB_ID})

    assert first.status_code == again.status_code == 201
    assert again.json == first.json
    assert first.json["order"]["user"]["id"] == ALICE_ID
    assert other_customer.status_code == 422
    assert "already used for a different request" in other_customer.json["error"]
    assert len(outbox_rows(app)) == 1


def test_the_pending_cap_counts_the_customers_orders(make_app):
    client = make_app(PENDING_ORDERS_PER_CUSTOMER=1).test_client()
    admin = login(client, "admin@example.com")
    # alice has one pending order (6) already: the cap of 1 is reached
    answer = client.post("/api/orders", headers=admin, json={"items": ITEMS, "user_id": ALICE_ID})
    assert answer.status_code == 422
    assert "unpaid orders" in answer.json["error"]
    assert client.post("/api/orders", headers=admin,
                       json={"items": ITEMS, "user_id": BOB_ID}).status_code == 201


# --- a customer cancels her own pending order --------------------------------------------


def test_a_customer_cancels_her_own_pending_order(app, client, alice):
    stock_before = stock_of(app, 1)
    detail = client.get("/api/orders/6", headers=alice).json["order"]
    assert detail["allowed_transitions"] == [{"status": "cancelled", "label": "Cancelled"}]

    answer = client.post("/api/orders/6/transition", headers=alice,
                         json={"status": "cancelled", "expected_status": "pending"})

    assert answer.status_code == 200
    order = answer.json["order"]
    assert order["status"] == "cancelled" and order["final"] is True
    assert order["allowed_transitions"] == []
    assert order["history"][-1]["changed_by"] == "Alice Customer"
    assert stock_of(app, 1) > stock_before  # its items are back
    [row] = outbox_rows(app)
    assert row.name == "order.status.updated"
    assert loads(row.data)["changed_by"] == "Alice Customer"


@pytest.mark.parametrize(("order_id", "status"), [
    (6, "paid"),        # her pending order, but only an admin takes the payment
    (5, "cancelled"),   # her paid order: cancelling it now is an admin's decision
    (5, "refunded"),
    (2, "refunded"),    # delivered
])
def test_every_other_change_of_a_customer_is_403(app, client, alice, order_id, status):
    before = client.get(f"/api/orders/{order_id}", headers=alice).json["order"]["status"]

    answer = client.post(f"/api/orders/{order_id}/transition", headers=alice,
                         json={"status": status})

    assert answer.status_code == 403
    assert answer.json == {"error": CUSTOMER_MAY}
    assert client.get(f"/api/orders/{order_id}", headers=alice).json["order"]["status"] == before
    assert outbox_rows(app) == []


def test_a_customer_cancelling_a_stale_view_gets_409(client, alice, admin):
    client.post("/api/orders/6/transition", headers=admin, json={"status": "paid"})

    answer = client.post("/api/orders/6/transition", headers=alice,
                         json={"status": "cancelled", "expected_status": "pending"})

    assert answer.status_code == 409
    assert "is paid now, not pending" in answer.json["error"]


def test_customers_see_only_their_own_next_steps_admins_all(client, alice, admin):
    assert client.get("/api/orders/5", headers=alice).json["order"]["allowed_transitions"] == []
    assert [t["status"] for t in client.get("/api/orders/5", headers=admin).json["order"][
        "allowed_transitions"]] == ["processing", "cancelled", "refunded"]
    finals = {order_id: client.get(f"/api/orders/{order_id}", headers=admin).json["order"]["final"]
              for order_id in (1, 2, 3, 4, 5, 6)}
    assert finals == {1: True, 2: True, 3: False, 4: False, 5: False, 6: False}


# --- the same 404 ---------------------------------------------------------------------------


def normalized(answer, order_id: int) -> tuple[int, dict]:
    """Status and body, with the order id asked for written as N."""
    return answer.status_code, {key: value.replace(f"order {order_id} ", "order N ")
                                for key, value in answer.json.items()}


@pytest.mark.parametrize(("method", "path", "body"), [
    ("get", "/api/orders/{}", None),
    ("post", "/api/orders/{}/transition", {"status": "cancelled"}),
    ("post", "/api/orders/{}/transition", {"status": "paid"}),
])
def test_another_customers_order_is_the_same_404_as_none(client, alice, method, path, body):
    bobs = getattr(client, method)(path.format(4), headers=alice, json=body)
    none = getattr(client, method)(path.format(999), headers=alice, json=body)

    assert normalized(bobs, 4) == normalized(none, 999) == (
        404, {"error": "order N does not exist"})

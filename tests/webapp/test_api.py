"""The JSON API: each endpoint, each error, and JSON reasons everywhere."""

from __future__ import annotations

import secrets

import pytest
from flask import Flask
from werkzeug.security import check_password_hash

import webapp.accounts.passwords
from shared.payloads import loads
from tests.webapp.conftest import ADMIN, ALICE, PASSWORD, csrf_token, login
from webapp.broadcasting.outbox import OutboxEvent
from webapp.extensions import db
from webapp.orders.products import Product


def outbox_rows(app: Flask) -> list[OutboxEvent]:
    with app.app_context():
        rows = list(db.session.scalars(db.select(OutboxEvent).order_by(OutboxEvent.id)))
        db.session.expunge_all()
        return rows


# --- login ---------------------------------------------------------------------------------


def test_login_answers_a_token_and_the_user(client):
    answer = client.post("/api/login", json={"email": ADMIN, "password": PASSWORD})
    assert answer.status_code == 200
    assert answer.json["user"] == {"id": 1, "name": "Ada Admin", "email": ADMIN,
                                   "is_admin": True}
    assert isinstance(answer.json["token"], str) and answer.json["token"]


@pytest.mark.parametrize("body", [{"email": ADMIN, "password": "wrong"},
                                  {"email": "nobody@example.com", "password": PASSWORD}])
def test_wrong_credentials_are_401(client, body):
    answer = client.post("/api/login", json=body)
    assert answer.status_code == 401
    assert answer.json == {"error": "wrong email or password"}


@pytest.mark.parametrize("data", ["{not json", "[1, 2]", '"text"', "", '{"email": 1}'])
def test_malformed_login_is_400(client, data):
    answer = client.post("/api/login", data=data, content_type="application/json")
    assert answer.status_code == 400
    assert answer.json["error"]


def test_expired_token_is_401_and_says_so(make_app):
    app = make_app(API_TOKEN_MAX_AGE=-1)
    client = app.test_client()
    headers = login(client, ALICE)
    answer = client.get("/api/orders", headers=headers)
    assert answer.status_code == 401
    assert "expired" in answer.json["error"]


def test_token_signed_with_another_secret_is_401(make_app, client):
    other = make_app(SECRET_KEY=secrets.token_hex(32)).test_client()
    answer = client.get("/api/orders", headers=login(other, ALICE))
    assert answer.status_code == 401
    assert "not valid" in answer.json["error"]


@pytest.mark.parametrize("path", ["/api/products", "/api/orders", "/api/orders/1"])
def test_reads_need_a_caller(client, path):
    answer = client.get(path)
    assert answer.status_code == 401
    assert "sign in" in answer.json["error"]


# --- products and orders -------------------------------------------------------------------


def test_products_have_exact_prices(client, alice):
    products = client.get("/api/products", headers=alice).json["products"]
    assert products[0] == {"id": 1, "name": "Wireless Mouse", "price": "24.99", "stock": 120}
    assert len(products) == 6


def test_customer_sees_only_their_orders_and_admin_sees_all(client, alice, admin):
    mine = client.get("/api/orders", headers=alice).json["orders"]
    everyone = client.get("/api/orders", headers=admin).json["orders"]
    assert mine and {o["user"]["email"] for o in mine} == {ALICE}
    assert len(everyone) == 6
    assert {o["user"]["email"] for o in everyone} == {ALICE, "bob@example.com"}
    assert [o["id"] for o in everyone] == sorted((o["id"] for o in everyone), reverse=True)


def test_order_detail_has_items_history_and_next_statuses(client, admin):
    order = client.get("/api/orders/3", headers=admin).json["order"]  # bob's shipped order
    assert order["status"] == "shipped"
    assert order["order_number"].startswith("ORD-") and order["order_number"].endswith("000003")
    assert order["items"] == [{"product_id": 6, "product_name": "Noise-Cancelling Headphones",
                               "quantity": 1, "unit_price": "179.00", "line_total": "179.00"}]
    assert [(h["from"], h["to"]) for h in order["history"]] == [
        (None, "pending"), ("pending", "paid"), ("paid", "processing"),
        ("processing", "shipped")]
    assert order["allowed_transitions"] == [{"status": "delivered", "label": "Delivered"}]


def test_order_detail_errors(client, alice):
    assert client.get("/api/orders/999", headers=alice).status_code == 404
    answer = client.get("/api/orders/1", headers=alice)  # bob's
    assert answer.status_code == 403
    assert answer.json["error"] == "order 1 is not yours"


# --- placing orders ------------------------------------------------------------------------


def test_placing_an_order_prices_it_takes_stock_and_queues_order_created(app, client, alice):
    answer = client.post("/api/orders", headers=alice, json={"items": [
        {"product_id": 1, "quantity": 2}, {"product_id": 3, "quantity": 1},
        {"product_id": 1, "quantity": 1}]})
    assert answer.status_code == 201
    order = answer.json["order"]
    assert order["status"] == "pending"
    assert order["total"] == "114.47"  # 3 x 24.99 + 39.50, exactly
    assert [(i["product_id"], i["quantity"]) for i in order["items"]] == [(1, 3), (3, 1)]
    assert order["order_number"] == f"ORD-{order['created_at'][:4]}-{order['id']:06d}"
    products = {p["id"]: p["stock"] for p in
                client.get("/api/products", headers=alice).json["products"]}
    assert (products[1], products[3]) == (117, 79)
    [row] = outbox_rows(app)
    assert row.name == "order.created"
    assert loads(row.channels) == ["private-user.2.orders", "private-admin.orders"]
    assert loads(row.data)["order_id"] == order["id"]


def test_unit_price_is_kept_at_purchase_time(app, client, alice):
    order = client.post("/api/orders", headers=alice,
                        json={"items": [{"product_id": 2, "quantity": 1}]}).json["order"]
    with app.app_context():
        db.session.get(Product, 2).price_cents = 100
        db.session.commit()
    again = client.get(f"/api/orders/{order['id']}", headers=alice).json["order"]
    assert again["items"][0]["unit_price"] == "89.00"
    assert again["total"] == "89.00"


@pytest.mark.parametrize(
    ("items", "reason"),
    [
        (None, "items must be a non-empty list"),
        ([], "items must be a non-empty list"),
        ("1", "items must be a non-empty list"),
        ([1], "items[0] must be an object"),
        ([{"product_id": "1", "quantity": 1}], "items[0].product_id must be a positive integer id"),
        ([{"product_id": 1, "quantity": 0}], "items[0].quantity must be a positive integer"),
        ([{"product_id": 1, "quantity": -3}], "items[0].quantity must be a positive integer"),
        ([{"product_id": 1, "quantity": 1.5}], "items[0].quantity must be a positive integer"),
        ([{"product_id": 1, "quantity": True}], "items[0].quantity must be a positive integer"),
        ([{"product_id": 1}], "items[0].quantity must be a positive integer"),
        ([{"product_id": 999, "quantity": 1}], "unknown product id(s): 999"),
        ([{"product_id": 4, "quantity": 26}], "not enough stock for '27-inch Monitor': 25 left"),
        ([{"product_id": 1, "quantity": 1001}], "above 1000"),
        ([{"product_id": 1, "quantity": 1}] * 51, "at most 50 items"),
    ],
)
def test_bad_orders_are_422_and_change_nothing(app, client, alice, items, reason):
    before = client.get("/api/products", headers=alice).json
    answer = client.post("/api/orders", headers=alice, json={"items": items})
    assert answer.status_code == 422
    assert reason in answer.json["error"]
    assert client.get("/api/products", headers=alice).json == before
    assert outbox_rows(app) == []


def test_stock_shortage_on_a_later_line_rolls_back_the_earlier_ones(app, client, alice):
    answer = client.post("/api/orders", headers=alice, json={"items": [
        {"product_id": 1, "quantity": 5}, {"product_id": 4, "quantity": 30}]})
    assert answer.status_code == 422
    stock = {p["id"]: p["stock"] for p in
             client.get("/api/products", headers=alice).json["products"]}
    assert stock[1] == 120
    assert len(client.get("/api/orders", headers=alice).json["orders"]) == 3


def test_malformed_order_body_is_400(client, alice):
    answer = client.post("/api/orders", headers=alice, data="{oops",
                         content_type="application/json")
    assert answer.status_code == 400
    assert answer.json == {"error": "request body must be a JSON object"}


# --- transitions ---------------------------------------------------------------------------


def test_admin_transition_answers_the_order_and_queues_the_event(app, client, admin):
    answer = client.post("/api/orders/6/transition", headers=admin,
                         json={"status": "paid", "notes": "card ok"})
    assert answer.status_code == 200
    order = answer.json["order"]
    assert (order["status"], order["status_label"]) == ("paid", "Paid")
    assert order["history"][-1] == {"from": "pending", "to": "paid", "changed_by": "Ada Admin",
                                    "notes": "card ok", "at": order["history"][-1]["at"]}
    [row] = outbox_rows(app)
    assert row.name == "order.status.updated" and row.socket_id is None


def test_same_status_transition_is_200_and_queues_nothing(app, client, admin):
    answer = client.post("/api/orders/6/transition", headers=admin, json={"status": "pending"})
    assert answer.status_code == 200
    assert len(answer.json["order"]["history"]) == 1
    assert outbox_rows(app) == []


@pytest.mark.parametrize(
    ("order_id", "body", "status", "reason"),
    [
        (6, {"status": "shipped"}, 422, "cannot change status from pending to shipped"),
        (1, {"status": "paid"}, 422, "none (final status)"),
        (6, {"status": "teleported"}, 422, "unknown status 'teleported'"),
        (6, {}, 422, "unknown status None"),
        (6, {"status": "paid", "notes": 5}, 422, "notes must be a string"),
        (6, {"status": "paid", "notes": "x" * 1001}, 422, "notes must be at most 1000"),
        (999, {"status": "paid"}, 404, "order 999 does not exist"),
    ],
)
def test_transition_errors(app, client, admin, order_id, body, status, reason):
    answer = client.post(f"/api/orders/{order_id}/transition", headers=admin, json=body)
    assert answer.status_code == status
    assert reason in answer.json["error"]
    assert outbox_rows(app) == []


def test_customers_may_not_transition(client, alice):
    answer = client.post("/api/orders/6/transition", headers=alice, json={"status": "paid"})
    assert answer.status_code == 403
    assert answer.json == {"error": "only admins may do this"}


def test_malformed_transition_body_is_400(client, admin):
    answer = client.post("/api/orders/6/transition", headers=admin, data="nope",
                         content_type="text/plain")
    assert answer.status_code == 400
    assert answer.json["error"]


def test_x_socket_id_is_kept_to_exclude_that_socket(app, client, admin):
    headers = {**admin, "X-Socket-ID": "123.456"}
    assert client.post("/api/orders/6/transition", headers=headers,
                       json={"status": "paid"}).status_code == 200
    assert [r.socket_id for r in outbox_rows(app)] == ["123.456"]


@pytest.mark.parametrize("socket_id", ["abc", "1.2.3", "12", ".5", "1.5 ", "1" * 21 + ".5",
                                       "1." + "5" * 70, "١.٢"])
def test_malformed_x_socket_id_is_400_before_any_change(app, client, admin, socket_id):
    answer = client.post("/api/orders/6/transition", headers={**admin, "X-Socket-ID": socket_id},
                         json={"status": "paid"})
    assert answer.status_code == 400
    assert "X-Socket-ID" in answer.json["error"]
    assert outbox_rows(app) == []


def test_unknown_api_paths_and_methods_are_json(client, admin):
    answer = client.get("/api/nothing", headers=admin)
    assert answer.status_code == 404 and answer.json["error"]
    answer = client.delete("/api/orders", headers=admin)
    assert answer.status_code == 405 and answer.json["error"]


HUGE_ID = 10**22  # beyond SQLite's 64-bit integers


@pytest.mark.parametrize(("method", "path", "body"), [
    ("GET", f"/api/orders/{HUGE_ID}", None),
    ("POST", f"/api/orders/{HUGE_ID}/transition", {"status": "paid"}),
])
def test_out_of_range_order_ids_are_404_not_500(client, admin, method, path, body):
    answer = client.open(path, method=method, headers=admin, json=body)
    assert answer.status_code == 404
    assert answer.json["error"]


def test_out_of_range_product_ids_are_422(client, alice):
    answer = client.post("/api/orders", headers=alice,
                         json={"items": [{"product_id": HUGE_ID, "quantity": 1}]})
    assert answer.status_code == 422
    assert "product_id" in answer.json["error"]


def test_oversized_bodies_are_413(client, alice):
    answer = client.post("/api/orders", headers=alice, data=b"[" * 2_000_000,
                         content_type="application/json")
    assert answer.status_code == 413
    assert answer.json["error"]


def test_absurdly_nested_json_is_400(client, alice):
    answer = client.post("/api/orders", headers=alice, data=b"[" * 200_000,
                         content_type="application/json")
    assert answer.status_code == 400
    assert answer.json == {"error": "request body must be a JSON object"}


def test_an_unknown_email_costs_a_password_check_on_both_logins(client, monkeypatch):
    """No timing test: an unknown email must run the same hash check as a wrong password."""
    checked: list[str] = []

    def spy(password_hash: str, password: str) -> bool:
        checked.append(password_hash)
        return check_password_hash(password_hash, password)

    monkeypatch.setattr(webapp.accounts.passwords, "check_password_hash", spy, raising=False)
    unknown = {"email": "nobody@example.com", "password": PASSWORD}
    assert client.post("/api/login", json=unknown).status_code == 401
    assert client.post("/login", data={**unknown, "csrf_token": csrf_token(client)}
                       ).status_code == 401
    assert len(checked) == 2 and all(h.startswith(("scrypt:", "pbkdf2:")) for h in checked)

"""Placing an order with an ``Idempotency-Key`` (per user) happens once: the same key gets the
first answer again and creates nothing; another body under the key is a 422."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask

from tests.webapp.conftest import ALICE, sign_in
from tests.webapp.rendering import rendered
from webapp.broadcasting.outbox import OutboxEvent
from webapp.extensions import db
from webapp.orders.models import Order
from webapp.orders.products import Product
from webapp.orders.times import utcnow
from webapp.web.idempotency import KEY_TTL, IdempotencyKey, key_error

ITEMS = {"items": [{"product_id": 2, "quantity": 2}]}


def counts(app: Flask) -> tuple[int, int, int]:
    """Orders, outbox events, and the stock of product 2."""
    with app.app_context():
        return (db.session.scalar(db.select(db.func.count(Order.id))),
                db.session.scalar(db.select(db.func.count(OutboxEvent.id))),
                db.session.get(Product, 2).stock)


def place(client, headers, key: str | None, body=ITEMS):
    extra = {} if key is None else {"Idempotency-Key": key}
    return client.post("/api/orders", headers={**headers, **extra}, json=body)


def test_the_same_key_gets_the_first_answer_and_creates_one_order(app, client, alice):
    before = counts(app)
    first = place(client, alice, "b7e1c2d4-form-fill-1")
    assert first.status_code == 201
    after_first = counts(app)
    assert after_first == (before[0] + 1, before[1] + 1, before[2] - 2)
    again = place(client, alice, "b7e1c2d4-form-fill-1")
    assert (again.status_code, again.json) == (201, first.json)
    assert counts(app) == after_first


def test_the_first_answer_is_sent_again_even_after_the_order_changed(app, client, alice, admin):
    first = place(client, alice, "k1")
    order_id = first.json["order"]["id"]
    client.post(f"/api/orders/{order_id}/transition", headers=admin, json={"status": "paid"})
    assert place(client, alice, "k1").json == first.json


def test_the_same_key_with_another_body_is_422_and_creates_nothing(app, client, alice):
    assert place(client, alice, "k2").status_code == 201
    after_first = counts(app)
    other = place(client, alice, "k2", {"items": [{"product_id": 2, "quantity": 3}]})
    assert other.status_code == 422
    assert "already used for a different request" in other.json["error"]
    assert counts(app) == after_first


def test_keys_are_per_user(app, client, alice, bob):
    mine, theirs = place(client, alice, "shared"), place(client, bob, "shared")
    assert (mine.status_code, theirs.status_code) == (201, 201)
    assert mine.json["order"]["id"] != theirs.json["order"]["id"]
    assert theirs.json["order"]["user"]["email"] == "bob@example.com"


def test_without_a_key_every_request_places_an_order(app, client, alice):
    before = counts(app)
    place(client, alice, None)
    place(client, alice, None)
    assert counts(app)[0] == before[0] + 2


def test_a_refused_order_keeps_no_key_so_it_can_be_sent_again(app, client, alice):
    too_many = {"items": [{"product_id": 4, "quantity": 26}]}
    assert place(client, alice, "k3", too_many).status_code == 422
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(IdempotencyKey.id))) == 0
        db.session.get(Product, 4).stock = 30
        db.session.commit()
    assert place(client, alice, "k3", too_many).status_code == 201


@pytest.mark.parametrize("key", ["", "x" * 201, "naïve", "tab\there", "del\x7f"])
def test_a_bad_key_is_400_with_a_reason(client, alice, key):
    answer = client.post("/api/orders", json=ITEMS,
                         headers={**alice, "Idempotency-Key": key.encode("utf-8").decode(
                             "latin-1")})
    assert answer.status_code == 400
    assert "Idempotency-Key must be 1 to 200 printable ASCII" in answer.json["error"]


def test_keys_are_kept_24_hours_then_purged_by_the_next_keyed_request(app, client, alice):
    first = place(client, alice, "old")
    with app.app_context():
        row = db.session.scalar(db.select(IdempotencyKey))
        row.created_at = utcnow() - KEY_TTL + timedelta(minutes=1)
        db.session.commit()
    assert place(client, alice, "old").json == first.json  # 23 h 59 min: still the same
    with app.app_context():
        db.session.scalar(db.select(IdempotencyKey)).created_at = utcnow() - KEY_TTL
        db.session.commit()
    after = place(client, alice, "new-key")
    assert after.status_code == 201
    with app.app_context():
        assert db.session.scalars(db.select(IdempotencyKey.key)).all() == ["new-key"]
    again = place(client, alice, "old")  # forgotten: a new order
    assert again.json["order"]["id"] not in (first.json["order"]["id"],
                                             after.json["order"]["id"])


def test_the_form_places_once_per_hidden_key(app, client):
    token = sign_in(client, ALICE)
    form = {"product_id": ["1", "2"], "quantity": ["1", "0"], "csrf_token": token,
            "idempotency_key": "form-fill-7"}
    before = counts(app)
    for _ in range(2):  # a double click
        answer = client.post("/orders", data=form)
        assert answer.headers["Location"] == "/orders"
        page = client.get("/orders").get_data(as_text=True)
        assert "placed." in page
    assert counts(app)[0] == before[0] + 1
    changed = client.post("/orders", data={**form, "quantity": ["2", "0"]})
    page = client.get(changed.headers["Location"]).get_data(as_text=True)
    assert "already used for a different request" in page
    assert counts(app)[0] == before[0] + 1


def test_my_orders_gives_the_form_a_fresh_key_on_every_load(app, client):
    sign_in(client, ALICE)
    keys = []
    for _ in range(2):
        with rendered(app) as contexts:
            client.get("/orders")
        keys.append(contexts[0]["idempotency_key"])
    assert all(key_error(key) is None for key in keys)
    assert keys[0] != keys[1]


def test_a_bad_form_key_is_a_400_page(client):
    token = sign_in(client, ALICE)
    answer = client.post("/orders", data={"product_id": "1", "quantity": "1",
                                          "csrf_token": token, "idempotency_key": "é" * 3})
    assert answer.status_code == 400
    assert "idempotency_key" in answer.get_data(as_text=True)

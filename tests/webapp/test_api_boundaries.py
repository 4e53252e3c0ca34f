"""The JSON API at its edges: the last unit of stock, and a transition made on a stale view."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from webapp.broadcasting.outbox import OutboxEvent
from webapp.extensions import db

MONITOR, MONITOR_STOCK = 4, 25  # the seeded '27-inch Monitor'
PENDING_ORDER = 6


def outbox_count(app: Flask) -> int:
    with app.app_context():
        return db.session.scalar(db.select(db.func.count(OutboxEvent.id)))


def stock_of(client: FlaskClient, headers: dict[str, str], product_id: int) -> int:
    products = client.get("/api/products", headers=headers).json["products"]
    return next(p["stock"] for p in products if p["id"] == product_id)


def test_buying_the_last_units_succeeds_and_leaves_none(client, alice):
    answer = client.post("/api/orders", headers=alice,
                         json={"items": [{"product_id": MONITOR, "quantity": MONITOR_STOCK}]})
    assert answer.status_code == 201, answer.json
    assert stock_of(client, alice, MONITOR) == 0
    answer = client.post("/api/orders", headers=alice,
                         json={"items": [{"product_id": MONITOR, "quantity": 1}]})
    assert answer.status_code == 422
    assert "0 left, 1 asked" in answer.json["error"]


def transition(client: FlaskClient, headers: dict[str, str], body: dict):
    return client.post(f"/api/orders/{PENDING_ORDER}/transition", headers=headers, json=body)


@pytest.mark.parametrize("status", ["cancelled", "paid"])
def test_a_transition_on_a_stale_view_is_409_and_changes_nothing(app, client, admin, status):
    """Another admin paid the order after this one saw it pending: cancelling it (allowed from
    paid) or paying it again (a no-op) must not go through silently."""
    assert transition(client, admin, {"status": "paid"}).status_code == 200
    rows = outbox_count(app)
    answer = transition(client, admin, {"status": status, "expected_status": "pending",
                                        "notes": "as I saw it"})
    assert answer.status_code == 409
    assert answer.json == {"error": f"order {PENDING_ORDER} is paid now, not pending as you saw "
                                    "it; reload it and try again"}
    assert outbox_count(app) == rows
    order = client.get(f"/api/orders/{PENDING_ORDER}", headers=admin).json["order"]
    assert order["status"] == "paid"
    assert [h["to"] for h in order["history"]] == ["pending", "paid"]


def test_a_transition_on_a_current_view_goes_through(app, client, admin):
    answer = transition(client, admin, {"status": "paid", "expected_status": "pending"})
    assert answer.status_code == 200
    assert answer.json["order"]["status"] == "paid"
    assert outbox_count(app) == 1


def test_an_unknown_expected_status_is_422(app, client, admin):
    answer = transition(client, admin, {"status": "paid", "expected_status": "lost"})
    assert answer.status_code == 422
    assert "expected_status: unknown status 'lost'" in answer.json["error"]
    assert outbox_count(app) == 0

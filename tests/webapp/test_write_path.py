"""The transition's write path (issue 22): a fixed number of queries whatever the order holds,
an answer read before the commit that is the order as committed, and SQLite's sync setting."""

from __future__ import annotations

import pytest
from sqlalchemy import event, text

from tests.webapp.conftest import ADMIN, ALICE, app_config, login
from webapp import create_app
from webapp.config import ConfigError
from webapp.extensions import db
from webapp.orders.models import Order
from webapp.web.serializers import order_dict

LINES = [{"product_id": product_id, "quantity": 1} for product_id in (1, 2, 3, 4)]


def test_a_transition_reads_the_order_once_whatever_its_items_and_history(app):
    """One SELECT (the bearer token's user with the order, its owner, items, products and
    history with their authors) and none after the commit, at every step of a four-item order
    whose history has two authors. Before: a lazy load per relation, per product and per
    author, then all of them again after the commit expired them; later, one for the caller
    and one for the order."""
    client = app.test_client()
    placed = client.post("/api/orders", json={"items": LINES}, headers=login(client, ALICE))
    order_id = placed.json["order"]["id"]
    admin = login(client, ADMIN)
    statements: list[str] = []

    def record(_connection, _cursor, statement: str, *_args) -> None:
        statements.append(statement.lstrip().split(None, 1)[0].upper())

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        for status in ("paid", "processing", "shipped", "delivered"):
            statements.clear()
            moved = client.post(f"/api/orders/{order_id}/transition", json={"status": status},
                                headers=admin)
            assert moved.status_code == 200, moved.json
            assert statements.count("SELECT") == 1, (status, statements)
    finally:
        event.remove(engine, "before_cursor_execute", record)


def test_the_answer_read_before_the_commit_is_the_order_as_committed(app):
    client = app.test_client()
    placed = client.post("/api/orders", json={"items": LINES}, headers=login(client, ALICE))
    order_id = placed.json["order"]["id"]
    admin = login(client, ADMIN)
    for status in ("paid", "processing"):
        moved = client.post(f"/api/orders/{order_id}/transition",
                            json={"status": status, "notes": f"to {status}"}, headers=admin)
        assert moved.status_code == 200, moved.json
    shown = client.get(f"/api/orders/{order_id}", headers=admin)
    assert moved.json == shown.json
    assert [(h["to"], h["changed_by"], h["notes"]) for h in shown.json["order"]["history"]] == [
        ("pending", "Alice Customer", None), ("paid", "Ada Admin", "to paid"),
        ("processing", "Ada Admin", "to processing")]


@pytest.mark.parametrize(("setting", "level"),
                         [(None, 1), ("FULL", 2), ("EXTRA", 3), (" normal ", 1)])
def test_sqlite_syncs_at_checkpoints_unless_told_to_sync_every_commit(tmp_path, setting,
                                                                      level):
    """NORMAL (1) by default in WAL mode: a commit no longer waits for the disk."""
    overrides = {"SQLITE_SYNCHRONOUS": setting} if setting else {}
    app = create_app(app_config(tmp_path / "s.sqlite3", **overrides))
    with app.app_context():
        assert db.session.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert db.session.execute(text("PRAGMA synchronous")).scalar() == level
        db.engine.dispose()


@pytest.mark.parametrize("value", ["OFF", "", 1])
def test_an_unsafe_or_unknown_sqlite_synchronous_is_refused(tmp_path, value):
    with pytest.raises(ConfigError, match="SQLITE_SYNCHRONOUS=.*NORMAL, FULL, EXTRA"):
        create_app(app_config(tmp_path / "s.sqlite3", SQLITE_SYNCHRONOUS=value))


def test_an_order_read_as_records_answers_as_the_orm_objects_do(app):
    """The API reads an order as plain records (:mod:`webapp.orders.records`); placing answers
    from the ORM objects it has just written. Both are the same JSON: items in their order
    with their products' names, history with its authors, the owner."""
    client = app.test_client()
    alice, admin = login(client, ALICE), login(client, ADMIN)
    placed = client.post("/api/orders", json={"items": LINES[::-1]}, headers=alice)
    assert placed.status_code == 201, placed.json
    order_id = placed.json["order"]["id"]
    assert client.get(f"/api/orders/{order_id}", headers=alice).json == placed.json
    moved = client.post(f"/api/orders/{order_id}/transition", json={"status": "paid"},
                        headers=admin)
    with app.app_context():
        order = db.session.get(Order, order_id)
        assert moved.json["order"] == order_dict(order, detail=True, for_admin=True)
        assert [item["product_id"] for item in moved.json["order"]["items"]] == [4, 3, 2, 1]

"""The dashboard and GET /api/orders: status filter, search, pagination, counts per status,
in a fixed number of queries however many orders there are."""

from __future__ import annotations

import threading

import pytest
from flask import Flask
from sqlalchemy import event

from tests.webapp.conftest import ADMIN, ALICE, login, place, sign_in
from tests.webapp.rendering import rendered
from webapp.extensions import db
from webapp.orders.models import Order, User
from webapp.orders.status import OrderStatus

STATUSES = [status.value for status in OrderStatus]


def all_orders(app: Flask) -> list[tuple[int, str, str, str, str]]:
    """(id, number, status, customer name, email) of every order, newest first: the oracle."""
    with app.app_context():
        rows = db.session.execute(
            db.select(Order.id, Order.order_number, Order.status, User.name, User.email)
            .join(User).order_by(Order.id.desc()))
        return [(i, number, status.value, name, email) for i, number, status, name, email in rows]


def dashboard(app: Flask, client, query: str = "") -> dict:
    with rendered(app) as contexts:
        answer = client.get(f"/admin/orders{query}")
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return contexts[0]


def test_the_dashboard_shows_all_orders_newest_first_with_counts(app, client):
    sign_in(client, ADMIN)
    context = dashboard(app, client)
    oracle = all_orders(app)
    assert [o["id"] for o in context["orders"]] == [row[0] for row in oracle]
    assert context["counts"] == {"all": len(oracle), **{
        s: sum(row[2] == s for row in oracle) for s in STATUSES}}
    assert context["filter"] == {"status": "all", "q": ""}
    assert context["page"] == {"number": 1, "pages": 1, "total": len(oracle), "per_page": 25}


@pytest.mark.parametrize("status", STATUSES)
def test_the_status_filter(app, client, status):
    sign_in(client, ADMIN)
    context = dashboard(app, client, f"?status={status}")
    expected = [row[0] for row in all_orders(app) if row[2] == status]
    assert [o["id"] for o in context["orders"]] == expected
    assert context["page"]["total"] == len(expected)
    assert context["counts"]["all"] == len(all_orders(app))  # counts ignore the filter
    assert context["filter"] == {"status": status, "q": ""}


@pytest.mark.parametrize(("q", "matches"), [
    ("alice", lambda row: "alice" in row[3].lower() or "alice" in row[4]),
    ("BOB@EXAMPLE", lambda row: row[4] == "bob@example.com"),
    ("customer", lambda row: True),
    ("ord-", lambda row: True),
    ("%", lambda row: False),
    ("_", lambda row: False),
    ("nobody", lambda row: False),
])
def test_search_by_customer_name_or_email(app, client, q, matches):
    sign_in(client, ADMIN)
    context = dashboard(app, client, f"?q={q.replace('%', '%25')}")
    assert [o["id"] for o in context["orders"]] == [
        row[0] for row in all_orders(app) if matches(row)]
    assert context["filter"]["q"] == q


def test_search_by_order_number_exact_or_prefix(app, client, alice):
    place(client, alice, 11)
    sign_in(client, ADMIN)
    oracle = all_orders(app)
    number = oracle[0][1]  # e.g. ORD-2026-000017
    assert [o["id"] for o in dashboard(app, client, f"?q={number}")["orders"]] == [oracle[0][0]]
    prefix = number[:-1]
    assert [o["id"] for o in dashboard(app, client, f"?q={prefix}")["orders"]] == [
        row[0] for row in oracle if row[1].startswith(prefix)]
    assert len(dashboard(app, client, f"?q={number[4:]}")["orders"]) == 0  # not a prefix


def test_search_and_status_combine(app, client):
    sign_in(client, ADMIN)
    context = dashboard(app, client, "?status=paid&q=alice")
    assert [o["id"] for o in context["orders"]] == [
        row[0] for row in all_orders(app) if row[2] == "paid" and row[4].startswith("alice")]


def test_pages_of_25_and_a_page_past_the_last_goes_to_the_last(app, client, alice):
    place(client, alice, 30)
    sign_in(client, ADMIN)
    oracle = [row[0] for row in all_orders(app)]
    first, second = dashboard(app, client), dashboard(app, client, "?page=2")
    assert [o["id"] for o in first["orders"]] == oracle[:25]
    assert [o["id"] for o in second["orders"]] == oracle[25:]
    assert second["page"] == {"number": 2, "pages": 2, "total": len(oracle), "per_page": 25}
    beyond = client.get("/admin/orders?q=alice&page=9")
    assert beyond.status_code == 302
    assert beyond.headers["Location"] == "/admin/orders?q=alice&page=2"


@pytest.mark.parametrize("query", ["?page=0", "?page=-1", "?page=x", "?page=1.5", "?page=",
                                   "?status=lost", "?status=PAID", "?q=" + "x" * 201])
def test_bad_filters_are_400_pages(client, query):
    sign_in(client, ADMIN)
    answer = client.get(f"/admin/orders{query}")
    assert answer.status_code == 400
    assert answer.mimetype == "text/html"


def count_queries(app: Flask, client, path: str) -> int:
    """The statements the request to ``path`` ran: in this thread, as the test client's request
    runs here (on PostgreSQL the outbox notifier's NOTIFY runs on the same engine, in its own)."""
    statements: list[str] = []
    with app.app_context():
        engine = db.engine
    here = threading.get_ident()

    def listener(*args: object) -> None:
        if threading.get_ident() == here:
            statements.append(args[2])

    event.listen(engine, "before_cursor_execute", listener)
    try:
        assert client.get(path).status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    return len(statements)


@pytest.mark.parametrize("path", ["/admin/orders", "/api/orders?per_page=100"])
def test_the_number_of_queries_does_not_grow_with_the_orders(app, client, alice, path):
    sign_in(client, ADMIN)
    few = count_queries(app, client, path)
    place(client, alice, 30)
    assert count_queries(app, client, path) == few


def test_api_lists_a_page_with_counts(app, client, admin, alice):
    place(client, alice, 30)
    oracle = all_orders(app)
    answer = client.get("/api/orders", headers=admin).json
    assert [o["id"] for o in answer["orders"]] == [row[0] for row in oracle[:25]]
    assert answer["counts"]["all"] == len(oracle)
    assert answer["page"] == {"number": 1, "pages": 2, "total": len(oracle), "per_page": 25}
    small = client.get("/api/orders?per_page=10&page=3&status=pending", headers=admin).json
    pending = [row[0] for row in oracle if row[2] == "pending"]
    assert [o["id"] for o in small["orders"]] == pending[20:30]
    assert small["page"]["total"] == len(pending)


def test_a_customer_gets_own_orders_and_own_counts(app, client, alice):
    answer = client.get("/api/orders?q=bob", headers=alice).json
    assert answer["orders"] == []
    mine = [row for row in all_orders(app) if row[4] == ALICE]
    assert answer["counts"]["all"] == len(mine)
    listed = client.get("/api/orders", headers=alice).json
    assert [o["id"] for o in listed["orders"]] == [row[0] for row in mine]


@pytest.mark.parametrize("query", ["per_page=0", "per_page=101", "page=0", "status=lost",
                                   "per_page=ten"])
def test_api_bad_paging_is_400_json(client, admin, query):
    answer = client.get(f"/api/orders?{query}", headers=admin)
    assert answer.status_code == 400
    assert answer.json["error"]


def test_my_orders_is_paged_too(app, client):
    token_headers = login(client, ALICE)
    place(client, token_headers, 27)
    sign_in(client, ALICE)
    with rendered(app) as contexts:
        page = client.get("/orders?page=2")
    assert page.status_code == 200
    mine = [row[0] for row in all_orders(app) if row[4] == ALICE]
    assert [o["id"] for o in contexts[0]["orders"]] == mine[25:]

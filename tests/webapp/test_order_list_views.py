"""Issue 20, the lists: sorting, the creation-date range, CSV export of a view, pages past the
last, the page size on pages, and GET /api/summary; on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime, timedelta

import pytest
from flask import Flask

from tests.webapp.conftest import ADMIN, ALICE, login, place, sign_in
from tests.webapp.rendering import rendered
from webapp.extensions import db
from webapp.orders.models import Order, User
from webapp.orders.status import OrderStatus
from webapp.orders.summary import order_summary
from webapp.orders.times import utcnow
from webapp.web import order_export

SORT_KEYS = ("number", "customer", "status", "total", "created", "updated")
STATUS_RANK = {status.value: rank for rank, status in enumerate(OrderStatus)}


def orders_table(app: Flask) -> list[dict]:
    """Every order, as the oracle sees it."""
    with app.app_context():
        rows = db.session.execute(
            db.select(Order.id, Order.order_number, User.name, User.email, Order.status,
                      Order.total_cents, Order.created_at, Order.updated_at).join(User))
        return [{"id": i, "number": number, "customer": name, "email": email,
                 "status": status.value, "total": total, "created": created, "updated": updated}
                for i, number, name, email, status, total, created, updated in rows]


def sorted_ids(rows: list[dict], sort: str) -> list[int]:
    """The oracle's order for ``sort``: the key, then the id, both the same way round."""
    key = sort.removeprefix("-")

    def value(row: dict) -> tuple:
        return (STATUS_RANK[row["status"]] if key == "status" else
                row["id"] if key == "number" else row[key], row["id"])

    return [row["id"] for row in sorted(rows, key=value, reverse=sort.startswith("-"))]


def set_created(app: Flask, created: dict[int, datetime]) -> None:
    with app.app_context():
        for order_id, moment in created.items():
            db.session.get(Order, order_id).created_at = moment
        db.session.commit()


def listed(client, headers, query: str) -> list[int]:
    answer = client.get(f"/api/orders?{query}", headers=headers)
    assert answer.status_code == 200, answer.json
    return [order["id"] for order in answer.json["orders"]]


def test_the_seed_places_its_orders_hours_apart_in_the_order_of_their_ids(app):
    rows = orders_table(app)
    by_id = [row["created"] for row in sorted(rows, key=lambda row: row["id"])]
    assert by_id == sorted(by_id) and len(set(by_id)) == len(by_id)
    assert min(b - a for a, b in zip(by_id, by_id[1:], strict=False)) >= timedelta(minutes=30)


def test_the_default_is_newest_first_by_creation_time(app, client, admin, alice):
    place(client, alice, 3)
    rows = orders_table(app)
    # An order whose id is not the newest: creation time decides, not the id.
    oldest_id = min(row["id"] for row in rows)
    set_created(app, {oldest_id: utcnow() + timedelta(minutes=1)})
    rows = orders_table(app)
    assert listed(client, admin, "per_page=100") == sorted_ids(rows, "-created")
    assert listed(client, admin, "per_page=100")[0] == oldest_id
    assert client.get("/api/orders", headers=admin).json["sort"] == "-created"


@pytest.mark.parametrize("sort", [f"{way}{key}" for key in SORT_KEYS for way in ("", "-")])
def test_every_sort_key_both_ways_in_the_api(app, client, admin, alice, bob, sort):
    place(client, alice, 2, product_id=2)
    place(client, bob, 2, product_id=3, quantity=2)
    rows = orders_table(app)
    answer = client.get(f"/api/orders?sort={sort}&per_page=100", headers=admin).json
    assert [order["id"] for order in answer["orders"]] == sorted_ids(rows, sort)
    assert answer["sort"] == sort
    # Pages of a sorted view neither overlap nor skip: ties are broken by id.
    paged = listed(client, admin, f"sort={sort}&per_page=3&page=1") + \
        listed(client, admin, f"sort={sort}&per_page=3&page=2") + \
        listed(client, admin, f"sort={sort}&per_page=3&page=3")
    assert paged == sorted_ids(rows, sort)[:9]


def test_a_sort_combines_with_the_filter_and_the_customer_sees_her_own(app, client, alice):
    place(client, alice, 2)
    rows = orders_table(app)
    mine = [row for row in rows if row["email"] == ALICE and row["status"] == "pending"]
    assert listed(client, alice, "status=pending&sort=total") == sorted_ids(mine, "total")


@pytest.mark.parametrize("sort", ["price", "-", "--total", "TOTAL", "total ", "x" * 300])
def test_an_unknown_sort_key_is_400_naming_the_keys(client, admin, sort):
    answer = client.get("/api/orders", query_string={"sort": sort}, headers=admin)
    assert answer.status_code == 400
    assert "number, customer, status, total, created, updated" in answer.json["error"]
    assert len(answer.json["error"]) < 300
    sign_in(client, ADMIN)
    page = client.get("/admin/orders", query_string={"sort": sort})
    assert page.status_code == 400 and page.mimetype == "text/html"


def test_the_dashboard_headers_sort_and_keep_the_view(app, client):
    sign_in(client, ADMIN)
    with rendered(app) as contexts:
        page = client.get("/admin/orders?status=paid&q=a&sort=-total&per_page=10")
    html = page.get_data(as_text=True)
    assert contexts[0]["sort"] == "-total"
    assert re.search(r'<th scope="col" class="num" aria-sort="descending">\s*'
                     r'<a class="sort" href="/admin/orders\?status=paid&amp;q=a&amp;sort=total'
                     r'&amp;per_page=10">Total', html)
    assert html.count("aria-sort=") == 1
    # Another column sorts its first way: dates newest first, names A to Z.
    assert 'href="/admin/orders?status=paid&amp;q=a&amp;sort=-created&amp;per_page=10"' in html
    assert 'href="/admin/orders?status=paid&amp;q=a&amp;sort=customer&amp;per_page=10"' in html
    assert "by total, highest first" in html
    # The tabs and the search form keep the sort and the page size.
    assert 'href="/admin/orders?status=all&amp;q=a&amp;sort=-total&amp;per_page=10"' in html
    assert '<input type="hidden" name="per_page" value="10">' in html
    assert '<option value="-total" selected>By total, highest first</option>' in html


def test_the_date_range_takes_whole_days_both_included(app, client, admin, alice):
    ids = place(client, alice, 4)
    day = datetime(2026, 3, 10)
    set_created(app, {ids[0]: day - timedelta(microseconds=1), ids[1]: day,
                      ids[2]: day + timedelta(days=1, hours=23, minutes=59, seconds=59),
                      ids[3]: day + timedelta(days=2)})
    assert listed(client, admin, "from=2026-03-10&to=2026-03-11") == [ids[2], ids[1]]
    assert listed(client, admin, "to=2026-03-09") == [ids[0]]
    assert ids[3] in listed(client, admin, "from=2026-03-12")
    assert ids[2] not in listed(client, admin, "from=2026-03-12")
    # Far ends are ordinary dates, not a crash.
    assert listed(client, admin, "from=0001-01-01&to=9999-12-31&per_page=100") == \
        listed(client, admin, "per_page=100")
    sign_in(client, ADMIN)
    with rendered(app) as contexts:
        assert client.get("/admin/orders?from=2026-03-10&to=2026-03-11").status_code == 200
    assert [o["id"] for o in contexts[0]["orders"]] == [ids[2], ids[1]]
    assert contexts[0]["dates"] == {"from": "2026-03-10", "to": "2026-03-11"}


@pytest.mark.parametrize(("query", "reason"), [
    ("from=2026-02-30", "from must be a date as YYYY-MM-DD"),
    ("to=yesterday", "to must be a date as YYYY-MM-DD"),
    ("from=20260301", "from must be a date"),
    ("from=2026-W10-1", "from must be a date"),
    ("from=%EF%BC%92026-03-01", "from must be a date"),
    ("from=2026-03-02&to=2026-03-01", "from (2026-03-02) is after to (2026-03-01)"),
])
def test_a_bad_date_is_a_clear_400(client, admin, query, reason):
    answer = client.get(f"/api/orders?{query}", headers=admin)
    assert answer.status_code == 400
    assert reason in answer.json["error"]
    assert client.get(f"/api/orders/export?{query}", headers=admin).status_code == 400


def exported(client, headers, query: str = "") -> list[list[str]]:
    answer = client.get(f"/api/orders/export?{query}", headers=headers)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.mimetype == "text/csv"
    assert answer.headers["Content-Disposition"].startswith('attachment; filename="orders-')
    return list(csv.reader(io.StringIO(answer.get_data(as_text=True), newline="")))


def test_the_export_is_the_whole_view_in_its_order(app, client, admin, alice):
    place(client, alice, 30)
    query = "status=pending&q=alice&sort=total&page=2&per_page=5"
    rows = exported(client, admin, query)
    assert rows[0] == list(order_export.HEADER)
    everything = listed(client, admin, "status=pending&q=alice&sort=total&per_page=100")
    with app.app_context():
        numbers = [db.session.get(Order, i).order_number for i in everything]
    assert [row[0] for row in rows[1:]] == numbers  # every page, not only page 2
    first = client.get(f"/api/orders/{everything[0]}", headers=admin).json["order"]
    assert rows[1] == [first["order_number"], "Alice Customer", ALICE, "Pending Payment", "1",
                       first["total"], first["created_at"], first["updated_at"]]


def test_a_customer_exports_only_her_own_orders(client, alice):
    rows = exported(client, alice)
    assert {row[2] for row in rows[1:]} == {ALICE}
    assert len(rows) - 1 == client.get("/api/orders", headers=alice).json["page"]["total"]
    assert client.get("/api/orders/export").status_code == 401


@pytest.mark.parametrize("name", ["=HYPERLINK(\"http://x\")", "+1", "-1+2", "@SUM(A1)",
                                  "\tTab", "\rReturn", "Ann, \"the\" Customer\nline two"])
def test_export_cells_are_escaped_and_never_formulas(app, client, admin, name):
    with app.app_context():
        db.session.scalar(db.select(User).where(User.email == ALICE)).name = name
        db.session.commit()
    rows = exported(client, admin, "q=alice")
    names = {row[1] for row in rows[1:]}
    expected = f"'{name}" if name[0] in "=+-@\t\r" else name
    assert names == {expected}


def test_an_export_past_the_row_cap_is_refused_with_a_reason(client, admin, monkeypatch):
    total = client.get("/api/orders", headers=admin).json["page"]["total"]
    monkeypatch.setattr(order_export, "MAX_EXPORT_ROWS", total - 1)
    answer = client.get("/api/orders/export", headers=admin)
    assert answer.status_code == 422
    assert "narrow it with a date range" in answer.json["error"]
    assert len(exported(client, admin, "status=pending")) > 1
    monkeypatch.setattr(order_export, "MAX_EXPORT_ROWS", total)
    assert len(exported(client, admin)) == total + 1


def test_a_page_past_the_last_is_404_in_the_api_naming_the_last(client, admin):
    answer = client.get("/api/orders?per_page=2&page=4", headers=admin)
    assert answer.status_code == 404
    assert answer.json["error"] == "page 4 is past the last page, 3; ask for page=3"
    assert client.get("/api/orders?per_page=2&page=3", headers=admin).status_code == 200
    empty = client.get("/api/orders?q=nobody", headers=admin).json
    assert empty["orders"] == [] and empty["page"]["pages"] == 1
    assert client.get("/api/orders?q=nobody&page=2", headers=admin).status_code == 404


def test_a_customers_list_has_page_numbers_and_a_page_size(app, client):
    headers = login(client, ALICE)
    place(client, headers, 12)
    sign_in(client, ALICE)
    with rendered(app) as contexts:
        page = client.get("/orders?per_page=5&page=2")
    html = page.get_data(as_text=True)
    mine = [row for row in orders_table(app) if row["email"] == ALICE]
    assert [o["id"] for o in contexts[0]["orders"]] == sorted_ids(mine, "-created")[5:10]
    assert contexts[0]["page"] == {"number": 2, "pages": 3, "total": 15, "per_page": 5}
    for number in (1, 2, 3):
        assert f'href="/orders?per_page=5&amp;page={number}" aria-label="Page {number}"' in html
    assert 'aria-current="page">2</a>' in html
    assert re.findall(r"<option( selected)?>(\d+)</option>", html) == [
        (" selected", "5"), ("", "10"), ("", "25"), ("", "50"), ("", "100")]
    assert 'href="/orders?status=paid&amp;per_page=5"' in html  # tabs stay on this page
    # The export link takes the whole view (no page), with the session cookie.
    export = re.search(r'id="export-csv" href="([^"]+)"', html).group(1)
    assert export == "/api/orders/export"
    assert len(exported(client, {}, "")) == 1 + 15
    beyond = client.get("/orders?per_page=5&page=7")
    assert beyond.status_code == 302 and beyond.headers["Location"] == "/orders?per_page=5&page=3"


def test_the_summary_counts_today_in_utc_and_revenue_once_paid(app, client, admin, alice):
    ids = place(client, alice, 4, product_id=2)  # 89.00 each
    now = datetime(2026, 6, 1, 12, 0)
    set_created(app, {ids[0]: datetime(2026, 6, 1, 0, 0), ids[1]: datetime(2026, 6, 1, 23, 59),
                      ids[2]: datetime(2026, 5, 31, 23, 59, 59), ids[3]: datetime(2026, 6, 2)})
    assert client.post(f"/api/orders/{ids[1]}/transition", headers=admin,
                       json={"status": "paid"}).status_code == 200
    assert client.post(f"/api/orders/{ids[2]}/transition", headers=admin,
                       json={"status": "paid"}).status_code == 200  # yesterday's
    with app.app_context():
        summary = order_summary(now)
    rows = orders_table(app)
    assert summary == {
        "by_status": {status.value: sum(row["status"] == status.value for row in rows)
                      for status in OrderStatus},
        "orders_today": 2,
        "revenue_today": "89.00",
    }


def test_get_api_summary_is_for_admins(app, client, admin, alice):
    answer = client.get("/api/summary", headers=admin)
    assert answer.status_code == 200
    body = answer.json
    assert set(body) == {"by_status", "orders_today", "revenue_today"}
    assert body["by_status"] == {
        key: value for key, value in client.get("/api/orders", headers=admin).json[
            "counts"].items() if key != "all"}
    assert re.fullmatch(r"[0-9]+\.[0-9]{2}", body["revenue_today"])
    with app.app_context():
        assert body == order_summary(utcnow())
    forbidden = client.get("/api/summary", headers=alice)
    assert forbidden.status_code == 403 and forbidden.json["error"]
    assert client.get("/api/summary").status_code == 401


def test_the_dashboard_shows_the_summary_strip(app, client):
    sign_in(client, ADMIN)
    html = client.get("/admin/orders").get_data(as_text=True)
    with app.app_context():
        summary = order_summary(utcnow())
    pending = summary["by_status"]["pending"]
    to_ship = summary["by_status"]["paid"] + summary["by_status"]["processing"]
    assert f'data-statuses="pending">{pending}</dd>' in html
    assert f'data-statuses="paid processing">{to_ship}</dd>' in html
    assert 'src="/static/summary.js"' in html


def test_a_customers_list_has_no_summary_strip(client):
    sign_in(client, ALICE)
    assert 'id="summary"' not in client.get("/orders").get_data(as_text=True)

"""The HTML pages: sign-in with CSRF, who sees what, the order page, and /vendor."""

from __future__ import annotations

import re

import pytest

from tests.webapp.conftest import ADMIN, ALICE, PASSWORD, csrf_token, sign_in
from webapp.web.pages import VENDOR_FILES


def test_anonymous_visitors_are_sent_to_the_login_page(client):
    assert client.get("/").headers["Location"] == "/login"
    assert client.get("/admin/orders").headers["Location"].startswith("/login")
    assert "Sign in" in client.get("/login").get_data(as_text=True)


def test_session_cookie_is_http_only_and_same_site(client):
    answer = client.post("/login", data={"email": ADMIN, "password": PASSWORD,
                                         "csrf_token": csrf_token(client)})
    cookie = answer.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_login_form_needs_its_csrf_token(client):
    answer = client.post("/login", data={"email": ADMIN, "password": PASSWORD})
    assert answer.status_code == 400
    assert client.get("/admin/orders").status_code == 302  # still signed out


def test_wrong_password_is_401_with_a_message(client):
    answer = client.post("/login", data={"email": ADMIN, "password": "nope",
                                         "csrf_token": csrf_token(client)})
    assert answer.status_code == 401
    assert "Wrong email or password" in answer.get_data(as_text=True)


def test_admin_lands_on_the_live_dashboard_with_echo_configured(client, app):
    answer = client.post("/login", data={"email": ADMIN, "password": PASSWORD,
                                         "csrf_token": csrf_token(client)})
    assert answer.headers["Location"] == "/admin/orders"
    page = client.get("/admin/orders").get_data(as_text=True)
    assert 'data-channel="admin.orders"' in page
    assert page.count('<tr id="order-') == 6
    for script in ("/vendor/pusher.js", "/vendor/echo.js", "/static/echo-setup.js",
                   "/static/orders-list.js"):
        assert f'src="{script}"' in page
    assert f'"key": "{app.config["REVERB_APP_KEY"]}"' in page
    assert f'"port": {app.config["REVERB_PORT"]}' in page


def test_customer_lands_on_my_orders_and_cannot_see_the_dashboard(client):
    sign_in(client, ALICE)
    page = client.get("/orders").get_data(as_text=True)
    assert 'data-channel="user.2.orders"' in page
    assert page.count('<tr id="order-') == 3
    assert "Bob Customer" not in page
    assert client.get("/admin/orders").status_code == 403
    assert client.get("/orders/1").status_code == 403  # bob's
    assert client.get("/orders/6").status_code == 200


def test_order_page_shows_next_statuses_history_and_joins_viewers(client):
    sign_in(client, ADMIN)
    page = client.get("/orders/5").get_data(as_text=True)  # alice's paid order
    buttons = re.findall(r'<button type="submit" name="status" value="(\w+)">', page)
    assert buttons == ["processing", "cancelled", "refunded"]
    assert 'data-status="paid"' in page
    assert page.count("<li data-to=") == 2
    assert 'src="/static/order-page.js"' in page
    assert client.get("/orders/999").status_code == 404


def test_customer_order_page_has_no_status_buttons(client):
    sign_in(client, ALICE)
    page = client.get("/orders/5").get_data(as_text=True)
    assert 'id="transitions"' not in page
    assert 'data-channel="user.2.orders"' in page


def test_status_form_changes_the_order_with_csrf(client):
    token = sign_in(client, ADMIN)
    answer = client.post("/orders/5/transition", data={"status": "processing",
                                                       "csrf_token": token})
    assert answer.headers["Location"] == "/orders/5"
    assert 'data-status="processing"' in client.get("/orders/5").get_data(as_text=True)
    refused = client.post("/orders/5/transition", data={"status": "delivered",
                                                        "csrf_token": token})
    assert "cannot change status from processing to delivered" in client.get(
        refused.headers["Location"]).get_data(as_text=True)
    assert client.post("/orders/5/transition", data={"status": "shipped"}).status_code == 400
    too_long = client.post("/orders/5/transition", data={"status": "shipped", "notes": "x" * 1001,
                                                         "csrf_token": token})
    assert "notes must be at most 1000" in client.get(
        too_long.headers["Location"]).get_data(as_text=True)
    assert 'data-status="processing"' in client.get("/orders/5").get_data(as_text=True)


def test_customers_cannot_post_status_changes(client):
    token = sign_in(client, ALICE)
    answer = client.post("/orders/6/transition", data={"status": "paid", "csrf_token": token})
    assert answer.status_code == 403


def test_api_works_with_the_session_cookie_and_csrf_header(client):
    token = sign_in(client, ADMIN)
    assert client.get("/api/orders/6").status_code == 200
    answer = client.post("/api/orders/6/transition", json={"status": "paid"},
                         headers={"X-CSRF-TOKEN": token})
    assert answer.status_code == 200
    missing = client.post("/api/orders/6/transition", json={"status": "cancelled"})
    assert missing.status_code == 400 and "CSRF" in missing.json["error"]


def test_logout(client):
    token = sign_in(client, ALICE)
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/orders").status_code == 302


# (path, the setting naming the folder, the file in it): the browser libraries' builds, and
# @resound/resume's modules as they are in its package.
SERVED = [(f"/vendor/{name}", "NODE_MODULES", VENDOR_FILES[name]) for name in sorted(VENDOR_FILES)]
SERVED += [(f"/vendor/resume/{name}", "RESUME_MODULE", name)
           for name in ("index.js", "recovery.js")]


@pytest.mark.parametrize(("path", "folder", "name"), SERVED)
def test_vendor_serves_the_files_as_they_are(client, app, path, folder, name):
    answer = client.get(path)
    assert answer.status_code == 200
    assert answer.mimetype == "text/javascript"
    with open(f"{app.config[folder]}/{name}", "rb") as source:
        assert answer.data == source.read()
    answer.close()


@pytest.mark.parametrize("path", [
    "/vendor/pusher.min.js", "/vendor/..%2Fpackage.json", "/vendor/echo.common.js",
    "/vendor/resume/..%2Fpackage.json", "/vendor/resume/..%2F..%2F..%2Fpyproject.toml",
    "/vendor/resume/README.md", "/vendor/resume/missing.js",
])
def test_vendor_serves_nothing_else(client, path):
    answer = client.get(path)
    assert answer.status_code == 404
    assert answer.json["error"]  # a short JSON reason, not a file


def test_missing_node_modules_is_a_clear_404(make_app, tmp_path):
    client = make_app(NODE_MODULES=str(tmp_path)).test_client()
    answer = client.get("/vendor/echo.js")
    assert answer.status_code == 404
    assert "npm ci" in answer.json["error"]


def test_out_of_range_order_page_is_404(client):
    sign_in(client, ADMIN)
    assert client.get(f"/orders/{10**22}").status_code == 404


def test_customers_place_orders_from_my_orders(app, client):
    token = sign_in(client, ALICE)
    page = client.get("/orders").get_data(as_text=True)
    assert '<form id="new-order"' in page and "Wireless Mouse — EUR 24.99 · 120 in stock" in page
    answer = client.post("/orders", data={"product_id": "2", "quantity": "2", "csrf_token": token})
    assert answer.headers["Location"] == "/orders"
    page = client.get("/orders").get_data(as_text=True)
    assert page.count('<tr id="order-') == 4
    assert "178.00" in page


@pytest.mark.parametrize(("form", "reason"), [
    ({"product_id": "999", "quantity": "1"}, "unknown product id(s): 999"),
    ({"product_id": "x", "quantity": "1"}, "product_id must be a positive integer id"),
    ({"product_id": "1", "quantity": "0"}, "choose a quantity of at least one product"),
    ({"product_id": "1", "quantity": ""}, "choose a quantity of at least one product"),
    ({"product_id": "1", "quantity": "-2"}, "line 1: the quantity must be a whole number"),
    ({"product_id": "1", "quantity": "9" * 50}, "line 1: the quantity must be a whole number"),
    ({"product_id": "1"}, "every product needs a quantity field"),
    ({"product_id": "4", "quantity": "26"}, "not enough stock"),
])
def test_order_form_errors_are_shown(client, form, reason):
    token = sign_in(client, ALICE)
    answer = client.post("/orders", data={**form, "csrf_token": token})
    page = client.get(answer.headers["Location"]).get_data(as_text=True)
    assert reason in page.replace("&#39;", "'")
    assert page.count('<tr id="order-') == 3


def test_the_dashboard_has_no_order_form(client):
    sign_in(client, ADMIN)
    assert 'id="new-order"' not in client.get("/admin/orders").get_data(as_text=True)


def test_the_order_form_takes_several_lines_and_skips_empty_ones(client):
    token = sign_in(client, ALICE)
    answer = client.post("/orders", data={"product_id": ["1", "2", "3", "5"],
                                          "quantity": ["2", "0", "", "1"], "csrf_token": token})
    page = client.get(answer.headers["Location"]).get_data(as_text=True)
    assert "placed." in page
    order_id = int(re.findall(r'<tr id="order-(\d+)"', page)[0])
    order = client.get(f"/api/orders/{order_id}", headers={"X-CSRF-TOKEN": token}).json["order"]
    assert [(i["product_id"], i["quantity"]) for i in order["items"]] == [(1, 2), (5, 1)]


def test_the_status_form_refuses_a_stale_view_with_a_message(client):
    token = sign_in(client, ADMIN)
    assert client.post("/orders/6/transition", data={
        "status": "paid", "expected_status": "pending", "csrf_token": token,
    }).status_code == 302
    stale = client.post("/orders/6/transition", data={
        "status": "cancelled", "expected_status": "pending", "notes": "as I saw it",
        "csrf_token": token})
    page = client.get(stale.headers["Location"]).get_data(as_text=True)
    assert "order 6 is paid now, not pending as you saw it; reload it and try again" in page
    order = client.get("/api/orders/6").json["order"]
    assert order["status"] == "paid"
    assert [h["to"] for h in order["history"]] == ["pending", "paid"]


def test_the_status_form_says_what_it_did(client):
    token = sign_in(client, ADMIN)
    done = client.post("/orders/5/transition", data={
        "status": "processing", "expected_status": "paid", "csrf_token": token})
    assert "is now Processing." in client.get(done.headers["Location"]).get_data(as_text=True)

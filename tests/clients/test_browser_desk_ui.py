"""Issue 13, browser suite: the order desk in headless Chromium (js/browser_desk_ui.mjs): the
bugs found by trying the pages as a new user would, and the actions an admin and a customer
take; what the pages show is checked against the JSON API."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode

import pytest

from shared.signatures import sign_request
from tests.clients.browser import run_scenario, screenshot_names
from tests.clients.webapp_api import ADMIN, ALICE, WebappApi
from tests.servers import HOST, Broadcaster

pytestmark = pytest.mark.slow


def desk(node: str, chromium: str, api: WebappApi, scenario: str, **inputs: str) -> dict:
    admin_token, _ = api.login(ADMIN)
    return run_scenario(node, chromium, "browser_desk_ui.mjs", SCENARIO=scenario,
                        WEB_URL=api.base_url, ADMIN_EMAIL=ADMIN, CUSTOMER_EMAIL=ALICE,
                        ADMIN_TOKEN=admin_token, **inputs)


def orders_of(api: WebappApi, token: str) -> list[dict]:
    return api.request("GET", "/api/orders", token)["orders"]


def test_back_forward_never_shows_live_over_stale_data(node, chromium, api: WebappApi):
    alice_token, _ = api.login(ALICE)
    order = api.place_order(alice_token, [1])

    report = desk(node, chromium, api, "back_forward", ORDER_ID=str(order["id"]))

    assert report["before"] == "pending"
    assert report["afterBack"] == "paid"


def test_double_click_on_place_order_places_one_order(node, chromium, api: WebappApi):
    alice_token, _ = api.login(ALICE)
    before = len(orders_of(api, alice_token))

    report = desk(node, chromium, api, "double_click")

    assert len(orders_of(api, alice_token)) == before + 1
    assert report["rowsAdded"] == 1
    # One key per fill of the form: a second request, if any got out, repeats the first's key.
    assert len(report["keys"]) >= 1 and report["keys"][0]
    assert set(report["keys"]) == {report["keys"][0]}
    assert "placed" in report["message"]
    assert [Path(p).name for p in report["screenshots"]] == screenshot_names("login")


def test_order_form_takes_several_lines_and_checks_the_stock_first(
    node, chromium, api: WebappApi
):
    alice_token, _ = api.login(ALICE)
    products = api.request("GET", "/api/products", alice_token)["products"]

    report = desk(node, chromium, api, "order_form", SECOND_PRODUCT_ID=str(products[1]["id"]))

    assert report["stock"] == products[0]["stock"]
    refused = report["refused"]
    assert refused["posts"] == 0
    assert f"Only {products[0]['stock']} {products[0]['name']} in stock" in refused["message"]
    assert refused["focused"] == "line-1-quantity"
    assert refused["banner"] == ""  # the error is said once, next to its field
    placed = report["placed"]
    assert placed["posts"] == 1 and placed["rowsAdded"] == 1
    order = api.request("GET", f"/api/orders/{placed['orderId']}", alice_token)["order"]
    assert [(item["product_id"], item["quantity"]) for item in order["items"]] == [
        (products[0]["id"], 1), (products[1]["id"], 2)]
    assert order["order_number"] in placed["message"]
    assert [Path(p).name for p in report["screenshots"]] == screenshot_names(
        "customer-order-form-two-lines")


def test_a_stale_click_is_refused_with_a_message_and_keeps_the_note(
    node, chromium, api: WebappApi
):
    alice_token, _ = api.login(ALICE)
    order = api.place_order(alice_token, [1])

    report = desk(node, chromium, api, "stale_click", ORDER_ID=str(order["id"]))

    assert "Not changed" in report["message"]
    assert report["note"] == "Checked with the bank"
    assert report["buttons"] == ["processing", "cancelled", "refunded"]  # paid's next steps
    assert report["reconnectShown"] is True
    assert report["afterReconnect"] == {"reconnectShown": False,
                                        "words": "Live: changes appear as they happen."}
    history = api.request("GET", f"/api/orders/{order['id']}", alice_token)["order"]["history"]
    assert [entry["to"] for entry in history] == ["pending", "paid"]
    assert [entry["notes"] for entry in history] == [None, None]


def test_cancel_asks_first_and_keeps_the_focus(node, chromium, api: WebappApi):
    alice_token, _ = api.login(ALICE)
    order = api.place_order(alice_token, [1])

    report = desk(node, chromium, api, "confirm", ORDER_ID=str(order["id"]))

    assert order["order_number"] in report["question"]
    assert report["afterKeep"] == {"posts": 0, "status": "pending", "focused": "cancelled"}
    assert report["posts"] == 1
    assert "Cancelled" in report["message"]
    assert report["focused"] == "order-status"  # its button is gone with the final status
    assert api.request("GET", f"/api/orders/{order['id']}", alice_token)["order"][
        "status"] == "cancelled"


def terminate_url(broadcaster: Broadcaster, user_id: int) -> str:
    """The broadcaster's signed ``terminate_connections`` call for ``user_id``."""
    path = f"/apps/{broadcaster.app_id}/users/{user_id}/terminate_connections"
    query = sign_request(broadcaster.key, broadcaster.secret, "POST", path, body=b"{}")
    return f"http://{HOST}:{broadcaster.port}{path}?{urlencode(query)}"


def check_signed_out(report: dict) -> None:
    assert "You signed out" in report["banner"]
    assert report["link"] == "/login?next=%2Forders"
    assert report["view"] == "signed-out" and report["live"] is None
    assert [Path(p).name for p in report["screenshots"]] == screenshot_names(
        "customer-signed-out")


def test_a_tab_whose_socket_is_terminated_after_sign_out_says_so(
    node, chromium, api: WebappApi, broadcaster: Broadcaster
):
    _, alice = api.login(ALICE)

    report = desk(node, chromium, api, "signed_out",
                  TERMINATE_URL=terminate_url(broadcaster, alice["id"]))

    check_signed_out(report)


def test_signing_out_ends_the_other_tabs_live_access(node, chromium, api: WebappApi):
    report = desk(node, chromium, api, "signed_out")

    check_signed_out(report)


def test_dashboard_tabs_count_live_and_filter_search_and_pages(node, chromium, api: WebappApi):
    alice_token, _ = api.login(ALICE)
    for _ in range(26):  # more than one page of 25
        api.place_order(alice_token, [1])
    total = api.request("GET", "/api/orders", api.login(ADMIN)[0])["page"]["total"]

    report = desk(node, chromium, api, "dashboard", CUSTOMER_TOKEN=alice_token,
                  TOTAL=str(total))

    before = report["before"]
    assert before["all"] == total
    assert report["afterPlaced"] == {**before, "all": total + 1, "pending": before["pending"] + 1}
    assert report["afterPaid"] == {**report["afterPlaced"], "pending": before["pending"],
                                   "paid": before["paid"] + 1}
    assert report["pageTotal"] == total + 1
    paid_tab = report["paidTab"]
    assert paid_tab["current"] == "paid"
    assert set(paid_tab["statuses"]) == {"paid"} and len(paid_tab["statuses"]) == before["paid"] + 1
    assert report["searched"] == [f"order-{report['orderId']}"]
    assert report["firstPage"] == 25
    assert report["secondPage"] == total + 1 - 25
    assert "page 2 of 2" in report["caption"]
    assert [Path(p).name for p in report["screenshots"]] == screenshot_names(
        "admin-dashboard-filters", "admin-dashboard-page-2")

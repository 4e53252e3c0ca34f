"""Issue 13, browser suite: the order desk's server side in headless Chromium
(js/browser_desk.mjs): ?next= after sign-in, HEAD, error pages in the layout, Back after a
change (Cache-Control: no-store), a double submit with one Idempotency-Key, and a stale
status click without JavaScript. The expected values come from the JSON API."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.clients.browser import run_scenario, screenshot_names
from tests.clients.webapp_api import ADMIN, ALICE, WebappApi
from webapp.web.errors import CSRF_MESSAGE

pytestmark = pytest.mark.slow

HOSTILE = ["//evil.example", "https://evil.example/", "/\\evil.example", "javascript:alert(1)"]


def scenario(node: str, chromium: str, api: WebappApi, name: str, **inputs: str) -> dict:
    return run_scenario(node, chromium, "browser_desk.mjs", SCENARIO=name, WEB_URL=api.base_url,
                        ADMIN_EMAIL=ADMIN, CUSTOMER_EMAIL=ALICE, **inputs)


def alices_order(api: WebappApi) -> dict:
    token, _ = api.login(ALICE)
    return api.place_order(token, [1])


def test_sign_in_returns_to_the_page_asked_for_and_never_to_another_site(
    node, chromium, api: WebappApi
):
    order = alices_order(api)
    report = scenario(node, chromium, api, "next", ORDER_ID=str(order["id"]),
                      HOSTILE=json.dumps(HOSTILE))
    web = api.base_url
    assert report["sentTo"] == f"{web}/login?next=%2Forders%2F{order['id']}"
    assert report["landed"] == f"{web}/orders/{order['id']}"
    assert report["loginWhenSignedIn"] == f"{web}/orders"
    assert report["loginWithNext"] == f"{web}/orders/{order['id']}"
    assert report["hostile"] == {target: f"{web}/orders" for target in HOSTILE}


def test_head_answers_200(node, chromium, api: WebappApi):
    report = scenario(node, chromium, api, "head")
    assert report["signedOut"] == 200
    assert report["signedIn"] == {"login": 200, "orders": 200}


def test_error_pages_are_in_the_layout_with_a_way_back(node, chromium, api: WebappApi):
    report = scenario(node, chromium, api, "errors")
    assert report["forbidden"] == {"status": 403, "layout": 1, "title": "Not allowed",
                                   "message": "the orders dashboard is for admins",
                                   "back": "/"}
    assert report["backTo"] == f"{api.base_url}/orders"
    assert report["missing"]["status"] == 404
    assert (report["missing"]["layout"], report["missing"]["title"]) == (1, "Page not found")
    assert report["csrf"] == {"status": 400, "layout": 1, "title": "Bad request",
                              "message": CSRF_MESSAGE, "back": "/"}
    assert report["pageErrors"] == []
    assert [Path(p).name for p in report["screenshots"]] == screenshot_names(
        "error-403", "error-400-csrf")


def test_back_shows_the_order_as_it_is_now(node, chromium, api: WebappApi):
    order = alices_order(api)
    report = scenario(node, chromium, api, "back", ORDER_ID=str(order["id"]), NEW_STATUS="paid")
    assert report["url"] == f"{api.base_url}/orders"
    assert (report["before"], report["afterBack"]) == ("pending", "paid")


def test_a_double_submit_with_one_key_places_one_order(node, chromium, api: WebappApi):
    admin_token, _ = api.login(ADMIN)
    before = api.request("GET", "/api/orders", admin_token)["page"]["total"]
    report = scenario(node, chromium, api, "double")
    first, second = report["answers"]
    assert (first["status"], second["status"]) == (201, 201)
    assert first["body"] == second["body"]
    assert api.request("GET", "/api/orders", admin_token)["page"]["total"] == before + 1


def test_a_stale_status_click_is_refused_with_a_message(node, chromium, api: WebappApi):
    order = alices_order(api)
    report = scenario(node, chromium, api, "stale", ORDER_ID=str(order["id"]),
                      NEW_STATUS="paid", STALE_STATUS="cancelled")
    assert report["seen"] == "pending"
    assert report["flash"] == (f"order {order['id']} is paid now, not pending as you saw it; "
                               "reload it and try again")
    assert report["now"] == "paid"
    admin_token, _ = api.login(ADMIN)
    history = api.request("GET", f"/api/orders/{order['id']}", admin_token)["order"]["history"]
    assert [entry["to"] for entry in history] == ["pending", "paid"]

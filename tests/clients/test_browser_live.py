"""Issue 14, browser suite: the order page's "Viewing now" list and the admin dashboard's live
rows, in headless Chromium (js/browser_live.mjs). The expected values come from the JSON API."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.clients.browser import run_scenario, screenshot_names
from tests.clients.webapp_api import ADMIN, ALICE, LABELS, WebappApi

pytestmark = pytest.mark.slow


def viewer(user: dict) -> dict:
    return {"id": user["id"], "name": user["name"]}


def test_order_page_lists_who_is_viewing_it_live(node, chromium, api: WebappApi):
    alice_token, alice = api.login(ALICE)
    _, admin = api.login(ADMIN)
    order = api.place_order(alice_token, [1])

    report = run_scenario(node, chromium, "browser_live.mjs", SCENARIO="viewers",
                          WEB_URL=api.base_url, ADMIN_EMAIL=ADMIN, CUSTOMER_EMAIL=ALICE,
                          ORDER_ID=str(order["id"]))

    assert report["alone"] == [viewer(admin)]
    by_id = sorted([viewer(admin), viewer(alice)], key=lambda user: user["id"])
    for page in ("admin", "customer"):
        assert sorted(report["together"][page], key=lambda user: user["id"]) == by_id, page
    assert report["afterLeaving"] == [viewer(admin)]
    assert [Path(p).name for p in report["screenshots"]] == screenshot_names(
        "order-viewers-together", "order-viewers-after-leaving")


def test_admin_dashboard_shows_a_new_order_and_its_status_change_live(
    node, chromium, api: WebappApi
):
    admin_token, _ = api.login(ADMIN)
    existing = {order["id"] for order in api.request("GET", "/api/orders", admin_token)["orders"]}

    report = run_scenario(node, chromium, "browser_live.mjs", SCENARIO="dashboard",
                          WEB_URL=api.base_url, ADMIN_EMAIL=ADMIN, CUSTOMER_EMAIL=ALICE,
                          NEW_STATUS="paid")

    assert report["orderId"] not in existing
    order = api.request("GET", f"/api/orders/{report['orderId']}", admin_token)["order"]
    assert order["user"]["email"] == ALICE and order["status"] == "paid"
    assert [item["quantity"] for item in order["items"]] == [2]  # as the customer's form said
    row = {"position": 0, "customer": order["user"]["name"], "items": order["items_count"],
           "total": order["total"]}
    assert report["dashboardUrl"] == f"{api.base_url}/admin/orders"
    assert report["created"] == {**row, "status": "pending", "label": LABELS["pending"]}
    assert report["updated"] == {**row, "status": "paid", "label": LABELS["paid"]}
    assert report["rowsAfter"] == report["rowsBefore"] + 1
    assert report["notReloaded"] is True

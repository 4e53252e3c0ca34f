"""Issue 5, browser suite: the webapp's own pages in headless Chromium (Debian's, never a
downloaded one), driven by playwright-core from js/browser_orders.mjs.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.clients.browser import run_scenario, screenshot_names
from tests.clients.webapp_api import ADMIN, ALICE, LABELS, WebappApi

pytestmark = pytest.mark.slow


def test_customer_sees_an_admins_status_change_live(node, chromium, api: WebappApi):
    alice_token, _ = api.login(ALICE)
    order = api.place_order(alice_token, [1, 1])

    report = run_scenario(node, chromium, "browser_orders.mjs", WEB_URL=api.base_url,
                          ADMIN_EMAIL=ADMIN, CUSTOMER_EMAIL=ALICE, ORDER_ID=str(order["id"]),
                          NEW_STATUS="paid")

    assert report["myOrders"] == f"{api.base_url}/orders"
    assert report["dashboard"] == f"{api.base_url}/admin/orders"
    assert (report["before"], report["after"]) == (LABELS["pending"], LABELS["paid"])
    assert report["notReloaded"] is True
    assert report["afterReconnect"] == report["offlineStatus"] != "paid"
    assert [Path(p).name for p in report["screenshots"]] == screenshot_names(
        "customer-my-orders-before", "admin-dashboard", "admin-order-before",
        "admin-order-after", "customer-my-orders-after",
    )

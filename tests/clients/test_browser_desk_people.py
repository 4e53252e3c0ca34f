"""Issue 20, browser suite (js/browser_desk_people.mjs), headless Chromium against the webapp
under gunicorn and a real broadcaster: the paused banner when the broadcaster stops, the
customer's pages at 390 px, an admin's order for a customer and a customer's cancel. The
expected values come from the JSON API."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from tests.clients.browser import run_scenario, run_scenario_with_steps, screenshot_names
from tests.clients.webapp_api import ADMIN, ALICE, BOB, LABELS, WebappApi
from tests.servers import Broadcaster, Webapp, start_webapp, start_worker

pytestmark = pytest.mark.slow

TAP_TARGET_PX = 24


@pytest.fixture
def webapp(broadcaster: Broadcaster, tmp_path: Path) -> Iterator[Webapp]:
    """The webapp as the Procfile serves it (gunicorn, 2 workers) and its outbox worker."""
    web = start_webapp(broadcaster.port, tmp_path / "webapp.sqlite3",
                       extra_env={"WEB_CONCURRENCY": "2"}, procfile=True)
    worker = start_worker(web)
    yield web
    worker.stop()
    web.stop()


def inputs(api: WebappApi, order_id: int, **more: str) -> dict[str, str]:
    return {"WEB_URL": api.base_url, "ADMIN_EMAIL": ADMIN, "CUSTOMER_EMAIL": ALICE,
            "ORDER_ID": str(order_id), **more}


def test_a_lost_connection_pauses_the_pages_until_it_is_back(
    node, chromium, api: WebappApi, broadcaster: Broadcaster
):
    alice_token, _ = api.login(ALICE)
    order = api.place_order(alice_token, [1])

    report = run_scenario_with_steps(
        node, chromium, "browser_desk_people.mjs",
        {"stop": broadcaster.stop, "start": broadcaster.start},
        SCENARIO="paused", **inputs(api, order["id"]))

    assert report["beforeStop"]["shown"] is False
    stopped = datetime.fromisoformat(report["stoppedAt"])
    for page in ("admin", "customer"):
        away = report["whileAway"][page]
        assert away["shown"] is True and away["body"] == "paused", page
        assert "Live updates are paused." in away["text"]
        assert datetime.fromisoformat(away["since"]) >= stopped  # since the connection went
    assert report["whileAway"]["viewerDot"] == "rgb(154, 164, 178)"  # grey, not green
    assert report["whileAway"]["viewersColor"] == "rgb(80, 90, 105)"  # --muted
    assert "the customer will see it when the connection is back" in report["message"]
    assert report["customerRow"] == "pending"
    for page in ("admin", "customer"):
        assert report["back"][page]["shown"] is False and report["back"][page]["body"] is None
    detail = api.request("GET", f"/api/orders/{order['id']}", alice_token)["order"]
    assert detail["status"] == "paid"
    assert [Path(p).name for p in report["screenshots"]] == screenshot_names("admin-order-paused")


def test_the_customers_pages_on_a_phone(node, chromium, api: WebappApi):
    alice_token, _ = api.login(ALICE)
    admin_token, _ = api.login(ADMIN)
    order = api.place_order(alice_token, [1])
    products = api.request("GET", "/api/products", alice_token)["products"]

    report = run_scenario(node, chromium, "browser_desk_people.mjs", SCENARIO="phone",
                          ADMIN_TOKEN=admin_token, **inputs(api, order["id"]))

    assert report["login"] == {"focused": "email", "inCard": True,
                               "error": "Wrong email or password."}
    folded = report["folded"]
    assert folded["formTop"] is None and folded["ordersTop"] is not None  # orders first
    assert folded["buttonTop"] < folded["ordersTop"]
    mine = api.request("GET", "/api/orders", alice_token)["orders"]
    assert len(folded["rows"]) == len(mine)
    for row in folded["rows"]:
        assert row["height"] >= TAP_TARGET_PX and row["hits"] == [True, True, True], row
    assert folded["chips"] == {"tops": 1, "scrolls": True, "overflow": "auto"}
    assert folded["pageScrollsSideways"] is False
    assert report["opened"] == {"expanded": "true", "focused": "line-1-product",
                                "formVisible": True}
    in_stock = [p for p in products if p["stock"] > 0]
    assert len(report["picker"]) == len(in_stock)
    for shown, product in zip(report["picker"], in_stock, strict=True):
        assert shown["visible"] and shown["whole"], shown
        assert f"{product['stock']} in stock" in shown["text"]
        assert product["price"].split(".")[0] in shown["text"].replace(",", "")
    refused = report["refused"]
    assert refused["invalid"] == "true"
    assert refused["describedBy"] == "line-1-quantity-error"
    assert "in stock; lower the quantity" in refused["error"]
    assert 0 <= refused["gap"] < TAP_TARGET_PX  # right under the field
    assert refused["nativeBubble"] is False and refused["banner"] == ""
    assert refused["focused"] == "line-1-quantity"
    assert report["cleared"]["invalid"] is None and report["cleared"]["error"] is None
    assert report["cleared"]["describedBy"] is None
    assert report["announced"] == {
        "text": f"Order {order['order_number']} is now {LABELS['paid']}.", "polite": "polite"}
    assert [Path(p).name for p in report["screenshots"]] == screenshot_names(
        "login-refused", "customer-phone-orders", "customer-phone-order-form-error")


def test_an_admin_orders_for_a_customer_and_a_customer_cancels(node, chromium, api: WebappApi):
    alice_token, _ = api.login(ALICE)
    _, bob = api.login(BOB)
    order = api.place_order(alice_token, [1])

    report = run_scenario(node, chromium, "browser_desk_people.mjs", SCENARIO="people",
                          BOB_ID=str(bob["id"]), **inputs(api, order["id"]))

    placed = api.request("GET", f"/api/orders/{report['placed']['orderId']}",
                         api.login(ADMIN)[0])["order"]
    assert placed["user"]["id"] == bob["id"] and report["placed"]["customer"] == bob["name"]
    assert [(item["product_id"], item["quantity"]) for item in placed["items"]] == [(1, 2)]
    assert placed["history"][0]["changed_by"] == "Ada Admin"
    assert report["buttons"] == ["cancelled"]
    after = report["afterCancel"]
    assert after["editorHidden"] is True
    assert "Cancelled now" in after["message"]
    assert after["history"] == [LABELS["pending"], f"{LABELS['pending']} → {LABELS['cancelled']}"]
    assert api.request("GET", f"/api/orders/{order['id']}", alice_token)["order"][
        "status"] == "cancelled"
    assert [Path(p).name for p in report["screenshots"]] == screenshot_names(
        "admin-new-order-for-customer", "customer-cancel-confirm")

"""Issue 20, browser suite: the admin list's bulk bar and one-click next step in headless
Chromium (js/browser_bulk.mjs), against gunicorn as the Procfile runs it, the broadcaster and
the outbox worker; what the page shows is checked against the JSON API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.clients.browser import run_scenario
from tests.clients.webapp_api import ADMIN, ALICE, WebappApi
from tests.servers import Broadcaster, start_webapp, start_worker

pytestmark = pytest.mark.slow


@pytest.fixture
def served(broadcaster: Broadcaster, tmp_path: Path) -> Iterator[WebappApi]:
    """The webapp under gunicorn (the Procfile's web command) and its outbox worker."""
    web = start_webapp(broadcaster.port, tmp_path / "webapp.sqlite3", procfile=True)
    worker = start_worker(web)
    yield WebappApi(web.url)
    worker.stop()
    web.stop()


def run(node: str, chromium: str, api: WebappApi, scenario: str, order_ids: list[int]) -> dict:
    admin_token, _ = api.login(ADMIN)
    return run_scenario(node, chromium, "browser_bulk.mjs", SCENARIO=scenario,
                        WEB_URL=api.base_url, ADMIN_EMAIL=ADMIN, ADMIN_TOKEN=admin_token,
                        ORDER_IDS=",".join(map(str, order_ids)))


def status_of(api: WebappApi, token: str, order_id: int) -> str:
    return api.request("GET", f"/api/orders/{order_id}", token)["order"]["status"]


def test_the_bulk_bar_moves_the_selected_reports_the_refused_and_asks_before_cancelling(
    node, chromium, served: WebappApi
):
    alice, _ = served.login(ALICE)
    orders = [served.place_order(alice, [1]) for _ in range(3)]
    ids = [order["id"] for order in orders]

    report = run(node, chromium, served, "bulk", ids)

    assert report["before"] == {"count": "No orders selected", "moveDisabled": True}
    assert report["selected"] == {"count": "3 orders selected", "selectAllMixed": True}
    moved = report["moved"]
    assert moved["statuses"] == ["paid", "paid", "cancelled"]
    assert moved["refused"] == [str(ids[2])]
    assert moved["report"].startswith("Moved 2 of 3 orders to Paid. 1 refused: "
                                      f"{orders[2]['order_number']}: order {ids[2]} is "
                                      "cancelled now, not pending as you saw it")
    assert moved["count"] == "1 order selected"  # the refused one stays selected
    assert (moved["focused"], moved["posts"]) == ("bulk-apply", 1)
    assert report["question"] == "Move 2 orders to Cancelled?"
    assert report["afterKeep"] == {"posts": 1, "statuses": ["paid", "paid", "cancelled"],
                                   "focused": "bulk-apply"}
    assert report["cancelled"] == {"statuses": ["cancelled"] * 3, "posts": 2,
                                   "report": "Moved 2 of 2 orders to Cancelled.",
                                   "count": "No orders selected"}
    assert [status_of(served, alice, order_id) for order_id in ids] == ["cancelled"] * 3
    history = served.request("GET", f"/api/orders/{ids[0]}", alice)["order"]["history"]
    assert [entry["to"] for entry in history] == ["pending", "paid", "cancelled"]


def test_the_rows_next_step_moves_one_order_and_a_stale_view_gets_the_409_message(
    node, chromium, served: WebappApi
):
    alice, _ = served.login(ALICE)
    order = served.place_order(alice, [1])

    report = run(node, chromium, served, "next_step", [order["id"]])

    assert report["before"].startswith("Mark paid")
    assert report["afterPaid"]["label"].startswith("Start processing")
    assert report["afterPaid"]["focused"] == "processing"
    assert report["afterPaid"]["overflowPx"] == 0  # "Start processing" whole, not cut off
    assert f"Order {order['order_number']} is Paid now." in report["afterPaid"]["message"]
    assert "Not changed, someone else changed order" in report["message"]
    assert f"order {order['id']} is processing now, not paid as you saw it" in report["message"]
    assert report["afterConflict"].startswith("Ship")
    assert status_of(served, alice, order["id"]) == "processing"

"""Issue 19, browser suite: the order desk's pages resume instead of reloading. With history on
the order channels (as scripts/run.sh configures the demo), a customer's pages and the admin
dashboard that the server cut off show what changed meanwhile once they reconnect: no reload,
no re-fetch of the list, and a message saying what came in (js/browser_desk_resume.mjs)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest

from shared.signatures import sign_request
from tests.clients.browser import run_scenario, screenshot_names
from tests.clients.driver import ROOT
from tests.clients.webapp_api import ADMIN, ALICE, WebappApi
from tests.servers import Broadcaster, start_broadcaster


def demo_history() -> str:
    """RESOUND_APP_HISTORY as scripts/run.sh sets it for the demo (its default)."""
    found = re.search(r"^export RESOUND_APP_HISTORY=\$\{RESOUND_APP_HISTORY:-'(.+)'\}$",
                      (ROOT / "scripts" / "run.sh").read_text(), re.MULTILINE)
    assert found, "scripts/run.sh sets no default RESOUND_APP_HISTORY"
    return found.group(1)


@pytest.fixture
def broadcaster() -> Iterator[Broadcaster]:
    """The webapp's broadcaster, keeping history as the demo does."""
    running = start_broadcaster({"RESOUND_APP_HISTORY": demo_history()})
    yield running
    running.stop()


def cut_url(server: Broadcaster, user_id: int) -> str:
    """A signed ``POST users/{id}/terminate_connections`` (body ``{}``) for the scenario."""
    path = f"/apps/{server.app_id}/users/{user_id}/terminate_connections"
    query = sign_request(server.key, server.secret, "POST", path, body=b"{}")
    return f"{server.http_url}{path}?{urlencode(query)}"


def reloads(fetches: list[str]) -> list[str]:
    """The list fetches that re-load a view (the dashboard's tab counts, per_page=1, are not)."""
    return [query for query in fetches if "per_page=1" not in query]


@pytest.mark.slow
def test_a_customer_cut_off_sees_the_change_made_meanwhile_without_a_reload(
    node, chromium, api: WebappApi, broadcaster: Broadcaster
):
    alice_token, alice = api.login(ALICE)
    order = api.place_order(alice_token, [1])

    report = run_scenario(node, chromium, "browser_desk_resume.mjs", SCENARIO="customer",
                          WEB_URL=api.base_url, ADMIN_EMAIL=ADMIN, CUSTOMER_EMAIL=ALICE,
                          ORDER_ID=str(order["id"]), NEW_STATUS="paid",
                          CUT_URL=cut_url(broadcaster, alice["id"]))

    assert (report["before"], report["whileAway"]) == ("pending", "pending")
    assert report["after"] == {"list": "paid", "detail": "paid"}
    assert report["notReloaded"] == {"list": True, "detail": True}
    assert reloads(report["listFetches"]) == []
    for page in ("list", "detail"):
        assert "1 change made while this page was offline" in report["messages"][page], page
    assert [Path(p).name for p in report["screenshots"]] == screenshot_names(
        "customer-my-orders-resumed", "customer-order-resumed")


@pytest.mark.slow
def test_the_admin_dashboard_cut_off_shows_an_order_placed_meanwhile_without_a_reload(
    node, chromium, api: WebappApi, broadcaster: Broadcaster
):
    _, admin = api.login(ADMIN)

    report = run_scenario(node, chromium, "browser_desk_resume.mjs", SCENARIO="dashboard",
                          WEB_URL=api.base_url, ADMIN_EMAIL=ADMIN, CUSTOMER_EMAIL=ALICE,
                          CUT_URL=cut_url(broadcaster, admin["id"]))

    assert report["whileAway"] is False
    assert report["rowsAfter"][0] == report["newRow"]
    assert report["newRow"] not in report["rowsBefore"]
    assert report["notReloaded"] is True
    assert reloads(report["listFetches"]) == []
    assert "made while this page was offline" in report["message"]
    assert [Path(p).name for p in report["screenshots"]] == screenshot_names(
        "admin-dashboard-resumed")

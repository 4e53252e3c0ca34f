"""Issue 20, browser suite: the order lists' sorting, a filtered and searched view under live
updates, the admins' live summary strip and the page size, in headless Chromium against real
gunicorn and a real broadcaster (js/browser_desk_list.mjs); what the pages show is checked
against the JSON API."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from tests.clients.browser import run_scenario, screenshot_names
from tests.clients.webapp_api import ADMIN, ALICE, BOB, WebappApi

pytestmark = pytest.mark.slow


def scenario(node: str, chromium: str, api: WebappApi, name: str, **inputs: str) -> dict:
    admin_token, _ = api.login(ADMIN)
    return run_scenario(node, chromium, "browser_desk_list.mjs", SCENARIO=name,
                        WEB_URL=api.base_url, ADMIN_EMAIL=ADMIN, CUSTOMER_EMAIL=ALICE,
                        ADMIN_TOKEN=admin_token, CUSTOMER_TOKEN=api.login(ALICE)[0],
                        OTHER_TOKEN=api.login(BOB)[0], **inputs)


def row_ids(api: WebappApi, query: str) -> list[str]:
    """The rows' element ids of the list ``GET /api/orders?<query>`` answers, as an admin."""
    orders = api.request("GET", f"/api/orders?{query}", api.login(ADMIN)[0])["orders"]
    return [f"order-{order['id']}" for order in orders]


def test_sorting_by_a_column_header_with_the_keyboard_and_live(node, chromium, api: WebappApi):
    report = scenario(node, chromium, api, "sorting")

    cheapest = f"order-{report['cheapestId']}"

    def before_it_came(query: str) -> list[str]:
        """The API's list for ``query`` without the order placed at the end."""
        return [i for i in row_ids(api, query) if i != cheapest]

    by_default = report["byDefault"]
    assert by_default["ids"] == before_it_came("sort=-created") == before_it_came("")
    assert (by_default["column"], by_default["ariaSort"]) == ("Created ↓", "descending")
    assert "newest first" in by_default["caption"]
    assert report["stops"] == ["Order", "Customer", "Status", "Total"]
    descending = report["descending"]
    assert (descending["column"], descending["ariaSort"]) == ("Total ↓", "descending")
    assert "by total, highest first" in descending["caption"]
    assert report["ascending"]["ariaSort"] == "ascending"
    assert report["ascending"]["ids"] != descending["ids"]
    assert report["afterPlaced"] == row_ids(api, "sort=total")
    assert report["afterPlaced"][0] == cheapest
    assert report["ascending"]["ids"] == before_it_came("sort=total")
    assert descending["ids"] == before_it_came("sort=-total")
    assert [Path(p).name for p in report["screenshots"]] == screenshot_names(
        "admin-dashboard-sorted")


def test_a_filtered_view_takes_in_and_drops_rows_live_with_counts_and_summary(
    node, chromium, api: WebappApi
):
    report = scenario(node, chromium, api, "live_filter")

    before, entered, left = report["before"], report["entered"], report["left"]
    hers, his = f"order-{report['hersId']}", f"order-{report['hisId']}"
    view = "status=pending&q=alice&sort=total"
    # Her new pending order entered the view, in its place; his (bob's) did not.
    assert hers in entered["ids"] and his not in entered["ids"]
    assert entered["ids"] == [hers, *before["ids"]]  # the cheapest order, sorted by total
    assert entered["counts"]["pending"] == before["counts"]["pending"] + 2
    assert entered["summary"]["orders_today"] == before["summary"]["orders_today"] + 2
    assert entered["summary"]["pending"] == before["summary"]["pending"] + 2
    # Paid, it left the view; the counts and the strip followed.
    assert left["ids"] == before["ids"] == row_ids(api, view)
    assert left["counts"]["pending"] == before["counts"]["pending"] + 1
    assert left["counts"]["paid"] == before["counts"]["paid"] + 1
    assert left["summary"]["to_ship"] == before["summary"]["to_ship"] + 1
    assert Decimal(left["summary"]["revenue_today"]) == (
        Decimal(before["summary"]["revenue_today"]) + Decimal(report["hersTotal"]))
    summary = api.request("GET", "/api/summary", api.login(ADMIN)[0])
    assert left["summary"] == {
        "orders_today": summary["orders_today"], "revenue_today": summary["revenue_today"],
        "pending": summary["by_status"]["pending"],
        "to_ship": summary["by_status"]["paid"] + summary["by_status"]["processing"]}
    assert [Path(p).name for p in report["screenshots"]] == screenshot_names(
        "admin-dashboard-filtered-live")


def test_a_customer_chooses_the_page_size_and_a_page_number(node, chromium, api: WebappApi):
    alice_token, _ = api.login(ALICE)
    for _ in range(12):
        api.place_order(alice_token, [1])
    mine = [f"order-{order['id']}" for order in api.request(
        "GET", "/api/orders?per_page=100", alice_token)["orders"]]

    report = scenario(node, chromium, api, "pages")

    assert report["first"] == mine[:10]
    second = report["second"]
    assert second["ids"] == mine[10:20]
    assert second["current"] == "2"
    assert "page 2 of 2" in second["caption"]
    # The Sort choice keeps the page size and goes back to the first page.
    phone = report["phoneSorted"]
    assert phone["url"].endswith("/orders?per_page=10&q=&from=&to=&sort=-total")
    assert phone["ids"] == [f"order-{order['id']}" for order in api.request(
        "GET", "/api/orders?per_page=10&sort=-total", alice_token)["orders"]]
    assert [Path(p).name for p in report["screenshots"]] == screenshot_names(
        "customer-orders-page-2")


def test_a_page_that_the_live_changes_empty_goes_to_the_last_page(node, chromium,
                                                                 api: WebappApi):
    alice_token, _ = api.login(ALICE)
    api.place_order(alice_token, [1])
    pending = row_ids(api, "status=pending")
    assert len(pending) == 2

    report = scenario(node, chromium, api, "page_gone")

    assert report["before"]["ids"] == pending[1:]
    assert report["after"]["ids"] == pending[:1] == row_ids(api, "status=pending")
    assert "page 1 of 1" in report["after"]["caption"]


def test_a_plain_list_follows_events_and_reads_its_view_again_only_on_a_later_page(
    node, chromium, api: WebappApi
):
    alice_token, _ = api.login(ALICE)
    oldest = api.place_order(alice_token, [1])
    for _ in range(2):
        api.place_order(alice_token, [1])
    first_page = row_ids(api, "per_page=2")
    assert f"order-{oldest['id']}" not in first_page

    report = scenario(node, chromium, api, "plain_pages", ORDER_ID=str(oldest["id"]))

    assert report["before"]["first"] == first_page
    # Paid on page 2: page 1 keeps its rows (the order is not added on top of it).
    assert report["afterPaid"]["first"] == first_page
    assert f"order-{oldest['id']}" in report["afterPaid"]["second"]
    # A new order: on top of page 1, one row pushed to page 2, which shifts.
    assert report["afterPlaced"]["first"] == row_ids(api, "per_page=2")
    assert report["afterPlaced"]["first"][0] == f"order-{report['placedId']}"
    assert report["afterPlaced"]["second"] == row_ids(api, "per_page=2&page=2")
    # Page 1 read only the counts; page 2 read its view again.
    counts = "?status=all&per_page=1"
    assert report["fetches"]["first"] and set(report["fetches"]["first"]) == {counts}
    assert "?page=2&per_page=2" in report["fetches"]["second"]


def test_a_script_that_runs_after_its_channel_is_subscribed_shows_what_it_missed(
    node, chromium, api: WebappApi
):
    """summary.js runs only after the page's channel is subscribed and an order's event has
    come: the strip re-reads the summary then instead of waiting for the next event."""
    report = scenario(node, chromium, api, "late_script")

    assert report["after"]["orders_today"] == report["before"]["orders_today"] + 1
    assert report["after"]["orders_today"] == api.request(
        "GET", "/api/summary", api.login(ADMIN)[0])["orders_today"]

"""Issue 11, browser suite: the admin dashboard shows who is online and who views which order,
live, in headless Chromium (js/browser_activity.mjs).

The broadcaster does not send webhooks yet, so :class:`WebhookMirror` plays its part: it watches
the broadcaster through its HTTP API (the official SDK) and posts the webhooks Pusher sends for
what it sees (occupied/vacated, member added/removed), signed, to the real webapp."""

from __future__ import annotations

import threading
from pathlib import Path

import pusher
import pytest

from tests.clients.browser import run_scenario, screenshot_names
from tests.clients.webapp_api import ADMIN, ALICE, WebappApi
from tests.webapp.webhooks import (
    member_added,
    member_removed,
    now_ms,
    occupied,
    post_webhook,
    vacated,
)

pytestmark = pytest.mark.slow

POLL_SECONDS = 0.1


class WebhookMirror:
    """Posts a webhook to ``web_url`` for each change it sees on the watched channels."""

    def __init__(self, sdk: pusher.Pusher, web_url: str, user_channel: str,
                 presence_channel: str) -> None:
        self.sdk, self.web_url = sdk, web_url
        self.user_channel, self.presence_channel = user_channel, presence_channel
        self.stopped = threading.Event()
        self.posted: list[dict] = []
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> WebhookMirror:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stopped.set()
        self.thread.join(timeout=10)
        if self.error is not None:
            raise AssertionError(f"the webhook mirror failed: {self.error!r}") from self.error

    def _run(self) -> None:
        try:
            self._mirror()
        except BaseException as error:  # reported by __exit__, in the test's thread
            self.error = error

    def _mirror(self) -> None:
        occupied_before, members_before = False, set()
        while not self.stopped.wait(POLL_SECONDS):
            is_occupied = self.sdk.channel_info(self.user_channel)["occupied"]
            members = {user["id"] for user in
                       self.sdk.users_info(self.presence_channel)["users"]}
            events = [] if is_occupied == occupied_before else [
                (occupied if is_occupied else vacated)(self.user_channel)]
            events += [member_added(self.presence_channel, int(user_id))
                       for user_id in sorted(members - members_before)]
            events += [member_removed(self.presence_channel, int(user_id))
                       for user_id in sorted(members_before - members)]
            if events:
                post_webhook(self.web_url, events, now_ms())
                self.posted.extend(events)
            occupied_before, members_before = is_occupied, members


def test_admin_dashboard_shows_who_is_online_and_viewing_live(
    node, chromium, api: WebappApi, pusher_api: pusher.Pusher
):
    alice_token, alice = api.login(ALICE)
    order = api.place_order(alice_token, [1])
    user_channel = f"private-user.{alice['id']}.orders"
    presence_channel = f"presence-orders.{order['id']}.viewers"

    with WebhookMirror(pusher_api, api.base_url, user_channel, presence_channel) as mirror:
        report = run_scenario(node, chromium, "browser_activity.mjs", WEB_URL=api.base_url,
                              ADMIN_EMAIL=ADMIN, CUSTOMER_EMAIL=ALICE,
                              CUSTOMER_ID=str(alice["id"]), ORDER_ID=str(order["id"]))

    assert report["before"] == {"online": [], "viewing": []}
    assert report["whileOpen"] == {
        "online": [{"id": alice["id"], "text": alice["name"]}],
        "viewing": [{"userId": alice["id"], "orderId": order["id"],
                     "text": f"{alice['name']} is viewing order {order['order_number']}"}],
    }
    assert report["freshPage"] == report["whileOpen"]
    assert report["afterClosing"] == {"online": [], "viewing": []}
    assert report["notReloaded"] is True
    # The page closed: both facts went away, in one webhook or two, in either order.
    assert sorted(event["name"] for event in mirror.posted[-2:]) == [
        "channel_vacated", "member_removed"]
    assert [Path(p).name for p in report["screenshots"]] == screenshot_names(
        "admin-dashboard-activity")

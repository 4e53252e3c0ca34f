"""The admins' "online now" and "viewing" heal themselves: the worker asks the broadcaster
(``GET channels``, ``GET channels/{name}/users``) every ``LIVE_PRESENCE_CHECK_SECONDS``, and a
row it no longer confirms, set by a webhook whose ``channel_vacated`` or ``member_removed`` was
lost, is marked absent and the new view broadcast. Rows the broadcaster confirms stay."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from pusher.signature import sign

from tests.clients.webapp_api import ADMIN, ALICE, BOB, WebappApi
from tests.pusher_socket import PusherSocket, member
from tests.servers import (
    APP_KEY,
    APP_SECRET,
    Broadcaster,
    Webapp,
    free_port,
    start_webapp,
    start_worker,
)
from tests.webapp.conftest import Databases
from tests.webapp.test_webhooks import ADMIN_CHANNEL, next_view, person
from tests.webapp.webhooks import member_added, now_ms, occupied, post_webhook
from webapp.broadcasting.presence import expire_unconfirmed, snapshot
from webapp.broadcasting.reverb_client import DeliveryError, ReverbClient

CHECK_SECONDS = "0.2"


@pytest.fixture
def checked(server: Broadcaster, database: Databases) -> Iterator[Webapp]:
    """The webapp and its worker, which checks live presence every 0.2 s."""
    web = start_webapp(server.port, database.seeded(), {"LIVE_PRESENCE_CHECK_SECONDS":
                                                       CHECK_SECONDS})
    worker = start_worker(web)
    yield web
    worker.stop()
    web.stop()


def test_rows_whose_webhooks_were_lost_expire_and_confirmed_rows_stay(checked, sockets):
    api = WebappApi(checked.url)
    admin_token, admin = api.login(ADMIN)
    alice_token, alice = api.login(ALICE)
    bob = api.login(BOB)[1]
    order = api.place_order(alice_token, [1])
    viewers = f"presence-orders.{order['id']}.viewers"
    admin_socket: PusherSocket = sockets()
    admin_socket.joined(ADMIN_CHANNEL)
    # Really there: bob's page on his channel, the admin on the order's page.
    sockets().joined(f"private-user.{bob['id']}.orders")
    sockets().joined(viewers, member(str(admin["id"])))
    # The webhooks say alice is online and viewing too; her leaving ones never come.
    post_webhook(checked.url, [
        occupied(f"private-user.{bob['id']}.orders"), member_added(viewers, admin["id"]),
        occupied(f"private-user.{alice['id']}.orders"), member_added(viewers, alice["id"]),
    ], now_ms())
    viewing = {"order_id": order["id"], "order_number": order["order_number"]}
    assert next_view(admin_socket) == {
        "online": [person(alice), person(bob)],
        "viewing": [{**viewing, "user": person(admin)}, {**viewing, "user": person(alice)}]}

    healed = {"online": [person(bob)], "viewing": [{**viewing, "user": person(admin)}]}
    assert next_view(admin_socket) == healed
    assert api.request("GET", "/api/activity", admin_token) == healed


def test_a_ghost_in_a_channel_nobody_is_on_disappears(checked, sockets):
    api = WebappApi(checked.url)
    alice_token, alice = api.login(ALICE)
    order = api.place_order(alice_token, [1])
    admin_socket: PusherSocket = sockets()
    admin_socket.joined(ADMIN_CHANNEL)
    post_webhook(checked.url, [member_added(f"presence-orders.{order['id']}.viewers",
                                            alice["id"])], now_ms())
    assert [view["user"] for view in next_view(admin_socket)["viewing"]] == [person(alice)]
    assert next_view(admin_socket) == {"online": [], "viewing": []}


@pytest.mark.sqlite_only("what an unreachable broadcaster does, not the database")
def test_an_unreachable_broadcaster_changes_nothing(make_app):
    app = make_app()
    client = ReverbClient.from_config({**app.config, "REVERB_PORT": free_port()})
    channel = "private-user.2.orders"
    body = json.dumps({"time_ms": now_ms() - 60_000, "events": [occupied(channel)]})
    answer = app.test_client().post(
        "/broadcasting/webhooks", data=body, content_type="application/json",
        headers={"X-Pusher-Key": APP_KEY, "X-Pusher-Signature": sign(APP_SECRET, body)})
    assert answer.status_code == 200, answer.json
    with app.app_context():
        with pytest.raises(DeliveryError, match="unreachable"):
            expire_unconfirmed(client, 0)
        assert [user["id"] for user in snapshot()["online"]] == [2]


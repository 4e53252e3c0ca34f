"""Issue 5, Node suite: laravel-echo 2 with pusher-js 8 against the real broadcaster and the real
Flask app (its /broadcasting/auth with bearer tokens, its outbox and worker).

Where a test proves that something did *not* arrive, it sends a later event that must arrive,
on the same path, and then checks the log: events from one server reach one socket in order, so
anything wrongly sent earlier would already be there.
"""

from __future__ import annotations

from typing import Any

import pusher
import pytest

from tests.clients.driver import Client, NodeDriver
from tests.clients.options import reverb_options
from tests.clients.webapp_api import ADMIN, ALICE, BOB, WebappApi, order_payload
from tests.servers import Broadcaster

UPDATED, CREATED = ".order.status.updated", ".order.created"
ADMIN_ORDERS = "admin.orders"


def user_orders(user: dict[str, Any]) -> str:
    return f"user.{user['id']}.orders"


def viewers(order: dict[str, Any]) -> str:
    return f"orders.{order['id']}.viewers"


def connect(driver: NodeDriver, name: str, server: Broadcaster, api: WebappApi,
            token: str) -> Client:
    """``new Echo({broadcaster: 'reverb', ..., authEndpoint, bearerToken})`` for one user."""
    options = reverb_options(
        server, authEndpoint=f"{api.base_url}/broadcasting/auth", bearerToken=token,
        userAuthentication={"endpoint": f"{api.base_url}/broadcasting/user-auth", "headers": {}},
    )
    return Client.echo(driver, name, options)


def listen(client: Client, channel: str, event: str) -> str:
    """``Echo.private(channel).listen(event, ...)``, waiting until the subscription succeeded."""
    full_name = client.listen(channel, event)
    client.wait_for(type="subscribed", channel=full_name)
    return full_name


def test_customer_receives_an_admins_transition_with_the_seed_payload(
    driver, broadcaster, api: WebappApi
):
    admin_token, admin = api.login(ADMIN)
    alice_token, alice = api.login(ALICE)
    order = api.place_order(alice_token, [1, 2, 3, 1])
    alice_echo = connect(driver, "alice", broadcaster, api, alice_token)
    admin_echo = connect(driver, "admin", broadcaster, api, admin_token)
    alice_channel = listen(alice_echo, user_orders(alice), UPDATED)
    admin_channel = listen(admin_echo, ADMIN_ORDERS, UPDATED)

    moved = api.transition(admin_token, order["id"], "paid")

    expected = order_payload(moved, "pending", admin["name"])
    assert expected["items_count"] == 4 and len(expected["items_summary"]) == 3
    assert alice_echo.wait_for(channel=alice_channel, name=UPDATED)["data"] == expected
    assert admin_echo.wait_for(channel=admin_channel, name=UPDATED)["data"] == expected


def test_admin_orders_receives_order_created(driver, broadcaster, api: WebappApi):
    admin_token, _ = api.login(ADMIN)
    bob_token, bob = api.login(BOB)
    admin_echo = connect(driver, "admin", broadcaster, api, admin_token)
    channel = listen(admin_echo, ADMIN_ORDERS, CREATED)

    order = api.place_order(bob_token, [2])

    got = admin_echo.wait_for(channel=channel, name=CREATED)["data"]
    assert got == order_payload(order, None, bob["name"])
    assert got["current_status"] == "pending"


def test_another_customers_channel_is_refused_and_nothing_arrives(
    driver, broadcaster, api: WebappApi
):
    admin_token, _ = api.login(ADMIN)
    alice_token, alice = api.login(ALICE)
    bob_token, bob = api.login(BOB)
    bobs_order = api.place_order(bob_token, [1])
    alices_order = api.place_order(alice_token, [1])
    alice_echo = connect(driver, "alice", broadcaster, api, alice_token)
    own = listen(alice_echo, user_orders(alice), UPDATED)
    foreign = alice_echo.listen(user_orders(bob), UPDATED)

    refused = alice_echo.wait_for(type="error", channel=foreign)["data"]
    assert refused["status"] == 403

    api.transition(admin_token, bobs_order["id"], "paid")
    api.transition(admin_token, alices_order["id"], "paid")

    assert alice_echo.wait_for(channel=own, name=UPDATED)["data"]["order_id"] == alices_order["id"]
    assert alice_echo.seen(channel=foreign, type="event") == []
    assert alice_echo.seen(channel=foreign, type="subscribed") == []


def test_presence_here_joining_and_leaving_across_users_and_tabs(
    driver, broadcaster, api: WebappApi
):
    admin_token, admin = api.login(ADMIN)
    alice_token, alice = api.login(ALICE)
    room = api.place_order(alice_token, [1])
    other_room = api.place_order(alice_token, [2])
    alice_info = {"id": alice["id"], "name": alice["name"]}
    admin_info = {"id": admin["id"], "name": admin["name"]}

    tab1 = connect(driver, "alice-tab1", broadcaster, api, alice_token)
    channel = tab1.subscribe(viewers(room), kind="join")
    assert tab1.wait_for(type="here", channel=channel)["data"] == [alice_info]

    admin_echo = connect(driver, "admin", broadcaster, api, admin_token)
    admin_echo.subscribe(viewers(room), kind="join")
    here = admin_echo.wait_for(type="here", channel=channel)["data"]
    assert sorted(here, key=lambda u: u["id"]) == sorted([alice_info, admin_info],
                                                         key=lambda u: u["id"])
    assert tab1.wait_for(type="joining", channel=channel)["data"] == admin_info

    # A second tab of the same user is no new member: no joining now, no leaving when it goes.
    tab2 = connect(driver, "alice-tab2", broadcaster, api, alice_token)
    tab2.subscribe(viewers(room), kind="join")
    assert len(tab2.wait_for(type="here", channel=channel)["data"]) == 2
    marker = tab2.listen_for_whisper(viewers(other_room), "marker", kind="join")
    admin_echo.listen_for_whisper(viewers(other_room), "marker", kind="join")
    admin_echo.wait_for(type="here", channel=marker)
    tab2.wait_for(type="here", channel=marker)
    tab2.leave(viewers(room))
    # Same socket, so the broadcaster handles the leave before this whisper.
    tab2.whisper(viewers(other_room), "marker", {"after": "tab2 left"}, kind="join")
    admin_echo.wait_for(type="whisper", channel=marker)

    tab1.disconnect()
    assert admin_echo.wait_for(type="leaving", channel=channel)["data"] == alice_info
    # No joining for tab 2, and the one leaving came after the marker: not when tab 2 left.
    sequence = [e["type"] for e in admin_echo.seen()
                if e.get("channel") == channel or e["type"] == "whisper"]
    assert sequence == ["subscribed", "here", "whisper", "leaving"]


def test_whispers_between_two_clients(driver, broadcaster, api: WebappApi):
    admin_token, _ = api.login(ADMIN)
    alice_token, _ = api.login(ALICE)
    order = api.place_order(alice_token, [1])
    alice_echo = connect(driver, "alice", broadcaster, api, alice_token)
    admin_echo = connect(driver, "admin", broadcaster, api, admin_token)
    channel = f"presence-{viewers(order)}"
    for client in (alice_echo, admin_echo):
        client.listen_for_whisper(viewers(order), "typing", kind="join")
        client.wait_for(type="here", channel=channel)

    alice_echo.whisper(viewers(order), "typing", {"typing": True, "who": "alice"}, kind="join")
    got = admin_echo.wait_for(type="whisper", channel=channel)
    assert got["data"] == {"typing": True, "who": "alice"}

    admin_echo.whisper(viewers(order), "typing", {"typing": False, "who": "admin"}, kind="join")
    got = alice_echo.wait_for(type="whisper", channel=channel)
    assert got["data"] == {"typing": False, "who": "admin"}
    # Each answer left only after the other side's whisper arrived: no echo came back before it.
    assert [e["data"]["who"] for e in alice_echo.seen(type="whisper")] == ["admin"]
    assert [e["data"]["who"] for e in admin_echo.seen(type="whisper")] == ["alice"]


def test_to_others_does_not_echo_to_the_requesting_socket(driver, broadcaster, api: WebappApi):
    admin_token, _ = api.login(ADMIN)
    alice_token, _ = api.login(ALICE)
    first, second = api.place_order(alice_token, [1]), api.place_order(alice_token, [2])
    acting = connect(driver, "admin-acting", broadcaster, api, admin_token)
    watching = connect(driver, "admin-watching", broadcaster, api, admin_token)
    channel = listen(acting, ADMIN_ORDERS, UPDATED)
    listen(watching, ADMIN_ORDERS, UPDATED)

    api.transition(admin_token, first["id"], "paid", socket_id=acting.socket_id)
    assert watching.wait_for(name=UPDATED)["data"]["order_id"] == first["id"]
    api.transition(admin_token, second["id"], "paid")

    assert watching.wait_for(name=UPDATED, count=2)["data"]["order_id"] == second["id"]
    assert acting.wait_for(channel=channel, name=UPDATED)["data"]["order_id"] == second["id"]
    assert [e["data"]["order_id"] for e in acting.seen(type="event")] == [second["id"]]


@pytest.mark.slow
def test_reconnects_and_resubscribes_after_a_broadcaster_restart(
    driver, broadcaster, api: WebappApi
):
    admin_token, _ = api.login(ADMIN)
    alice_token, alice = api.login(ALICE)
    order = api.place_order(alice_token, [1])
    alice_echo = connect(driver, "alice", broadcaster, api, alice_token)
    channel = listen(alice_echo, user_orders(alice), UPDATED)

    broadcaster.stop()
    alice_echo.wait_for(type="state", previous="connected")
    broadcaster.start()

    alice_echo.wait_for(type="state", current="connected", count=2, timeout=30)
    alice_echo.wait_for(type="subscribed", channel=channel, count=2)
    moved = api.transition(admin_token, order["id"], "paid")
    got = alice_echo.wait_for(channel=channel, name=UPDATED)["data"]
    assert (got["order_id"], got["current_status"]) == (moved["id"], "paid")


def test_signed_in_user_gets_send_to_user_and_can_be_terminated(
    driver, broadcaster, api: WebappApi, pusher_api: pusher.Pusher
):
    alice_token, alice = api.login(ALICE)
    bob_token, bob = api.login(BOB)
    alice_echo = connect(driver, "alice", broadcaster, api, alice_token)
    bob_echo = connect(driver, "bob", broadcaster, api, bob_token)

    user_data = alice_echo.signin()
    assert user_data == {"id": str(alice["id"]), "user_info": {"name": alice["name"]}}
    bob_echo.signin()
    pusher_api.send_to_user(str(alice["id"]), "order.reminder", {"order_id": 7})
    got = alice_echo.wait_for(type="user_event", name="order.reminder")
    assert got["data"] == {"order_id": 7}

    pusher_api.terminate_user_connections(str(alice["id"]))
    alice_echo.wait_for(type="state", previous="connected")
    pusher_api.send_to_user(str(bob["id"]), "order.reminder", {"order_id": 8})

    assert bob_echo.wait_for(type="user_event", name="order.reminder")["data"] == {"order_id": 8}
    assert bob_echo.seen(type="state")[-1]["current"] == "connected"

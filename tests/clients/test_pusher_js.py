"""Issue 2: pusher-js from npm, configured as Echo configures it for Reverb, against the bare
broadcaster. Private and presence auth comes from the test's own endpoint (auth_endpoint.py);
server events come through the HTTP API via the official ``pusher`` Python SDK.
"""

from __future__ import annotations

import re

import pusher

from tests.clients.auth_endpoint import AuthEndpoint
from tests.clients.driver import Client, NodeDriver
from tests.clients.options import pusher_options
from tests.servers import Broadcaster

PUBLIC, PRIVATE, PRESENCE = "orders", "private-orders.7", "presence-orders.7.viewers"
SUCCEEDED = "pusher:subscription_succeeded"


def connect(driver: NodeDriver, server: Broadcaster, auth: AuthEndpoint, user_id: str,
            user_name: str) -> Client:
    headers = {"X-User-Id": user_id, "X-User-Name": user_name}
    return Client.pusher(driver, user_name, server.key, pusher_options(server, auth.url, headers))


def member(user_id: str, name: str) -> dict:
    return {"id": user_id, "info": {"id": user_id, "name": name}}


def test_connects_with_a_pusher_socket_id(driver, broadcaster, auth_endpoint):
    alice = connect(driver, broadcaster, auth_endpoint, "1", "alice")

    assert re.fullmatch(r"\d+\.\d+", alice.socket_id)


def test_public_private_and_presence_channels_receive_http_api_events(
    driver, broadcaster, auth_endpoint, pusher_api: pusher.Pusher
):
    alice = connect(driver, broadcaster, auth_endpoint, "1", "alice")
    for channel in (PUBLIC, PRIVATE, PRESENCE):
        alice.subscribe(channel)
    for channel in (PUBLIC, PRIVATE):
        alice.wait_for(channel=channel, name=SUCCEEDED)
    presence = alice.wait_for(channel=PRESENCE, name=SUCCEEDED)["data"]
    assert presence == {
        "count": 1,
        "me": member("1", "alice"),
        "members": {"1": {"id": "1", "name": "alice"}},
    }
    authorized = sorted(r["channel_name"] for r in auth_endpoint.requests)
    assert authorized == sorted([PRIVATE, PRESENCE])

    payload = {"order_id": 7, "status": "shipped", "note": "ünïcode ✓"}
    pusher_api.trigger([PUBLIC, PRIVATE, PRESENCE], "order.shipped", payload)

    for channel in (PUBLIC, PRIVATE, PRESENCE):
        assert alice.wait_for(channel=channel, name="order.shipped")["data"] == payload


def test_presence_members_come_and_go(driver, broadcaster, auth_endpoint):
    alice = connect(driver, broadcaster, auth_endpoint, "1", "alice")
    alice.subscribe(PRESENCE)
    alice.wait_for(channel=PRESENCE, name=SUCCEEDED)

    bob = connect(driver, broadcaster, auth_endpoint, "2", "bob")
    bob.subscribe(PRESENCE)
    seen_by_bob = bob.wait_for(channel=PRESENCE, name=SUCCEEDED)["data"]
    assert seen_by_bob["count"] == 2
    assert seen_by_bob["members"] == {"1": {"id": "1", "name": "alice"},
                                      "2": {"id": "2", "name": "bob"}}
    assert alice.wait_for(name="pusher:member_added")["data"] == member("2", "bob")

    bob.disconnect()
    assert alice.wait_for(name="pusher:member_removed")["data"] == member("2", "bob")


def test_client_events_reach_the_other_client_and_never_echo(driver, broadcaster, auth_endpoint):
    alice = connect(driver, broadcaster, auth_endpoint, "1", "alice")
    bob = connect(driver, broadcaster, auth_endpoint, "2", "bob")
    for client in (alice, bob):
        for channel in (PRIVATE, PRESENCE):
            client.subscribe(channel)
            client.wait_for(channel=channel, name=SUCCEEDED)
            client.bind(channel, "client-typing")

    assert alice.trigger(PRIVATE, "client-typing", {"from": "alice"}) is True
    got = bob.wait_for(type="bound", channel=PRIVATE)
    assert got["data"] == {"from": "alice"}

    assert alice.trigger(PRESENCE, "client-typing", {"from": "alice"}) is True
    got = bob.wait_for(type="bound", channel=PRESENCE)
    assert (got["data"], got["metadata"]) == ({"from": "alice"}, {"user_id": "1"})

    # Bob answers only after Alice's events reached him, so an echo of Alice's own events would
    # reach her before Bob's answer: her log must hold Bob's answer and nothing else.
    assert bob.trigger(PRESENCE, "client-typing", {"from": "bob"}) is True
    got = alice.wait_for(type="bound", channel=PRESENCE)
    assert (got["data"], got["metadata"]) == ({"from": "bob"}, {"user_id": "2"})
    assert [e["data"] for e in alice.seen(type="bound")] == [{"from": "bob"}]
    assert [e["data"] for e in bob.seen(type="bound")] == [{"from": "alice"}, {"from": "alice"}]


def test_a_forged_signature_is_refused_and_the_connection_stays_usable(
    driver, broadcaster, auth_endpoint, pusher_api: pusher.Pusher
):
    forged = "private-forged.7"
    alice = connect(driver, broadcaster, auth_endpoint, "1", "alice")
    alice.subscribe(forged)

    assert alice.wait_for(type="connection_error")["data"]["code"] == 4009
    alice.subscribe(PUBLIC)
    alice.wait_for(channel=PUBLIC, name=SUCCEEDED)
    pusher_api.trigger([forged, PUBLIC], "order.shipped", {"order_id": 7})

    assert alice.wait_for(channel=PUBLIC, name="order.shipped")["data"] == {"order_id": 7}
    assert alice.seen(channel=forged) == []
    assert alice.seen(type="state")[-1]["current"] == "connected"


def test_cache_channels_replay_the_last_event_or_report_a_miss(
    driver, broadcaster, auth_endpoint, pusher_api: pusher.Pusher
):
    warm, cold = "private-cache-orders.7", "cache-orders.8"
    pusher_api.trigger([warm], "order.shipped", {"order_id": 7, "n": 1})
    pusher_api.trigger([warm], "order.shipped", {"order_id": 7, "n": 2})
    alice = connect(driver, broadcaster, auth_endpoint, "1", "alice")
    alice.subscribe(warm)
    alice.subscribe(cold)

    assert alice.wait_for(channel=warm, name="order.shipped")["data"] == {"order_id": 7, "n": 2}
    alice.wait_for(channel=cold, name="pusher:cache_miss")
    assert [e["name"] for e in alice.seen(channel=warm)] == [SUCCEEDED, "order.shipped"]


def test_pusher_js_pings_when_idle_and_the_broadcaster_pongs(driver, broadcaster, auth_endpoint):
    options = pusher_options(broadcaster, auth_endpoint.url, {})
    options.update(activityTimeout=300, pongTimeout=5000)
    alice = Client.pusher(driver, "alice", broadcaster.key, options)

    alice.wait_for(type="pong", count=2)
    assert [e["current"] for e in alice.seen(type="state")] == ["connected"]

"""Every endpoint driven by the official Pusher Python SDK; WebSocket subscribers check delivery."""

import json

import pytest
from websockets.exceptions import ConnectionClosed

from tests.api.wire import TIMEOUT, post_json, signed_request
from tests.pusher_socket import member


def test_trigger_reaches_public_and_private_subscribers(sdk, sockets):
    public, private = sockets(), sockets()
    public.joined("sdk-news")
    private.joined("private-sdk-orders")
    assert sdk.trigger(["sdk-news", "private-sdk-orders"], "order.created", {"id": 7}) == {}
    for subscriber, channel in ((public, "sdk-news"), (private, "private-sdk-orders")):
        event = subscriber.next_event()
        assert event["event"] == "order.created"
        assert event["channel"] == channel
        assert json.loads(event["data"]) == {"id": 7}


def test_trigger_keeps_string_data_as_sent(sdk, sockets):
    subscriber = sockets()
    subscriber.joined("sdk-raw")
    sdk.trigger("sdk-raw", "raw", "plain text, not JSON")
    assert subscriber.next_event()["data"] == "plain text, not JSON"


def test_trigger_socket_id_excludes_that_socket_only(sdk, sockets):
    sender, other = sockets(), sockets()
    sender.joined("sdk-chat")
    other.joined("sdk-chat")
    sdk.trigger("sdk-chat", "said", {"n": 1}, socket_id=sender.socket_id)
    sdk.trigger("sdk-chat", "said", {"n": 2})
    assert [json.loads(other.next_event()["data"])["n"] for _ in range(2)] == [1, 2]
    # The sender's first event is the second one: the first was never sent to it.
    assert json.loads(sender.next_event()["data"]) == {"n": 2}


def test_trigger_batch_delivers_each_event_to_its_channel(sdk, sockets):
    first, second = sockets(), sockets()
    first.joined("sdk-batch-a")
    second.joined("private-sdk-batch-b")
    result = sdk.trigger_batch([
        {"channel": "sdk-batch-a", "name": "one", "data": {"n": 1}},
        {"channel": "private-sdk-batch-b", "name": "two", "data": {"n": 2}},
    ])
    assert result == {}
    assert (first.next_event()["event"], second.next_event()["event"]) == ("one", "two")


def test_trigger_info_reports_counts(server, sockets):
    for user in ("ann", "ann", "bob"):
        sockets().joined("presence-sdk-info", member(user))
    sockets().joined("sdk-info")
    status, body = post_json(server, f"/apps/{server.app_id}/events", {
        "name": "hello", "data": "{}", "channels": ["presence-sdk-info", "sdk-info", "sdk-empty"],
        "info": "subscription_count,user_count",
    })
    assert status == 200
    assert body == {"channels": {
        "presence-sdk-info": {"subscription_count": 3, "user_count": 2},
        "sdk-info": {"subscription_count": 1},
        "sdk-empty": {"subscription_count": 0},
    }}


def test_batch_info_reports_counts_per_item(server, sockets):
    sockets().joined("sdk-batch-info")
    status, body = post_json(server, f"/apps/{server.app_id}/batch_events", {"batch": [
        {"channel": "sdk-batch-info", "name": "a", "data": "1", "info": "subscription_count"},
        {"channel": "sdk-batch-info", "name": "b", "data": "2"},
    ]})
    assert (status, body) == (200, {"batch": [{"subscription_count": 1}, {}]})


def test_channels_info_lists_occupied_channels_only(sdk, sockets):
    sockets().joined("sdk-list-one")
    sockets().joined("presence-sdk-list", member("carl"))
    sdk.trigger("sdk-list-never-subscribed", "e", "x")
    listed = sdk.channels_info()["channels"]
    assert {"sdk-list-one", "presence-sdk-list"} <= set(listed)
    assert "sdk-list-never-subscribed" not in listed
    assert sdk.channels_info(prefix_filter="sdk-list-") == {"channels": {"sdk-list-one": {}}}
    presence = sdk.channels_info(prefix_filter="presence-sdk-list", attributes=["user_count"])
    assert presence == {"channels": {"presence-sdk-list": {"user_count": 1}}}


def test_channels_info_forgets_a_channel_when_its_last_subscriber_leaves(sdk, sockets):
    subscriber = sockets()
    subscriber.joined("sdk-leaving")
    assert "sdk-leaving" in sdk.channels_info(prefix_filter="sdk-leaving")["channels"]
    subscriber.ws.send(json.dumps({"event": "pusher:unsubscribe",
                                   "data": {"channel": "sdk-leaving"}}))
    subscriber.ws.send('{"event":"pusher:ping","data":{}}')
    assert subscriber.next_message()["event"] == "pusher:pong"  # the unsubscribe has been handled
    assert sdk.channels_info(prefix_filter="sdk-leaving") == {"channels": {}}


def test_channel_info_counts(sdk, sockets):
    for user in ("dee", "dee", "eve"):
        sockets().joined("presence-sdk-one", member(user))
    assert sdk.channel_info("presence-sdk-one", ["user_count", "subscription_count"]) == {
        "occupied": True, "user_count": 2, "subscription_count": 3,
    }
    assert sdk.channel_info("sdk-nobody-here", ["subscription_count"]) == {
        "occupied": False, "subscription_count": 0,
    }
    assert sdk.channel_info("presence-sdk-nobody") == {"occupied": False}


def test_channel_info_cache_gives_the_last_event(sdk, sockets):
    sockets().joined("cache-sdk-price")
    sdk.trigger("cache-sdk-price", "price", {"eur": 1})
    sdk.trigger("cache-sdk-price", "price", {"eur": 2})
    info = sdk.channel_info("cache-sdk-price", ["cache", "subscription_count"])
    assert info["occupied"] is True
    assert info["subscription_count"] == 1
    assert info["cache"]["event"] == "price"
    assert json.loads(info["cache"]["data"]) == {"eur": 2}


def test_users_info_lists_each_member_once(sdk, sockets):
    for user in ("fay", "gus", "fay"):
        sockets().joined("presence-sdk-users", member(user))
    users = sdk.users_info("presence-sdk-users")["users"]
    assert sorted(user["id"] for user in users) == ["fay", "gus"]


def test_terminate_user_connections_closes_only_that_users_sockets(sdk, sockets):
    hal_tabs = [sockets(), sockets()]
    for tab in hal_tabs:
        tab.joined("presence-sdk-terminate", member("hal"))
    ida = sockets()
    ida.joined("presence-sdk-terminate", member("ida"))
    assert sdk.terminate_user_connections("hal") == {}
    for tab in hal_tabs:
        with pytest.raises(ConnectionClosed):
            while True:
                tab.recv(TIMEOUT)
    sdk.trigger("presence-sdk-terminate", "still-here", "{}")
    assert ida.next_event()["event"] == "still-here"


def test_connections_counts_open_sockets(server, sockets):
    path = f"/apps/{server.app_id}/connections"
    status, before = signed_request(server, "GET", path)
    assert status == 200
    sockets(), sockets()
    assert signed_request(server, "GET", path) == (200, {"connections": before["connections"] + 2})


def test_terminate_under_apps_path_as_php_and_node_sdks_send_it(server, sockets):
    tab = sockets()
    tab.joined("presence-sdk-terminate-php", member("jon"))
    path = f"/apps/{server.app_id}/users/jon/terminate_connections"
    assert post_json(server, path, {}) == (200, {})
    with pytest.raises(ConnectionClosed):
        while True:
            tab.recv(TIMEOUT)


def test_send_to_user_reaches_every_signed_in_socket_of_that_user(sdk, sockets):
    tabs = [sockets(), sockets()]
    for tab in tabs:
        tab.sign_in("kim")
    other = sockets()
    other.sign_in("lee")
    assert sdk.send_to_user("kim", "notice", {"hi": "kim"}) == {}
    for tab in tabs:
        event = tab.next_event()
        assert (event["event"], event["channel"]) == ("notice", "#server-to-user-kim")
        assert json.loads(event["data"]) == {"hi": "kim"}
    sdk.send_to_user("lee", "notice", {"hi": "lee"})
    assert json.loads(other.next_event()["data"]) == {"hi": "lee"}


def test_terminate_closes_signed_in_sockets(sdk, sockets):
    tab = sockets()
    tab.sign_in("max")
    sdk.terminate_user_connections("max")
    with pytest.raises(ConnectionClosed):
        while True:
            tab.recv(TIMEOUT)

"""Three broadcaster processes on one redis-server behave as one server: presence rosters and
member events across nodes, and the same HTTP API answers on every node.

"Exactly once" is proved with a marker: after the event, a trigger on the channel; whatever
the cluster published before it (a duplicate, an early remove) reaches a socket before it.
"""

from __future__ import annotations

import json

import redis

from tests.api.wire import post_json
from tests.cluster.conftest import Cluster, unique
from tests.pusher_socket import PusherSocket, member
from tests.servers import APP_ID, Broadcaster
from tests.waiting import eventually

MEMBER_EVENTS = ("pusher_internal:member_added", "pusher_internal:member_removed")


def member_events(observers: list[PusherSocket], via: Broadcaster,
                  channel: str) -> list[list[tuple[str, str]]]:
    """Trigger one marker on ``channel`` through ``via``; for each observer, the member events
    it got before the marker, as (event, user id)."""
    status, answer = post_json(via, f"/apps/{via.app_id}/events",
                               {"name": "marker", "channel": channel, "data": "{}"})
    assert status == 200, answer
    return [events_before_marker(observer, channel) for observer in observers]


def events_before_marker(socket: PusherSocket, channel: str) -> list[tuple[str, str]]:
    seen: list[tuple[str, str]] = []
    while True:
        message = socket.next_message(wanted=lambda m: m.get("channel") == channel)
        assert message is not None, f"the marker never reached {socket.socket_id}: {seen}"
        if message["event"] == "marker":
            return seen
        assert message["event"] in MEMBER_EVENTS, message
        seen.append((message["event"].removeprefix("pusher_internal:"),
                     json.loads(message["data"])["user_id"]))


def roster(joined: dict) -> tuple[int, set[str], dict]:
    presence = json.loads(joined["data"])["presence"]
    return presence["count"], set(presence["ids"]), presence["hash"]


def sockets_of(cluster: Cluster, channel: str, user: str) -> int:
    """How many sockets Redis holds for ``user`` in presence ``channel`` (a precondition only:
    that a closed tab's leave has been decided before the marker goes out)."""
    client = redis.Redis.from_url(cluster.url)
    try:
        count = client.hget(f"resound:{{{APP_ID}:{channel}}}:usersockets", user)
    finally:
        client.close()
    return int(count or 0)


def test_subscription_succeeded_carries_the_whole_clusters_roster(cluster):
    channel = unique("presence-roster-")
    one, two, three = cluster.nodes
    ann = cluster.member_on(one, channel, "ann")
    bob_joined = cluster.socket(two)
    assert roster(bob_joined.joined(channel, member("bob"))) == (
        2, {"ann", "bob"}, {"ann": {"name": "ann"}, "bob": {"name": "bob"}})
    cat_joined = cluster.socket(three).joined(channel, member("cat"))
    assert roster(cat_joined)[:2] == (3, {"ann", "bob", "cat"})
    assert member_events([ann, bob_joined], three, channel) == [
        [("member_added", "bob"), ("member_added", "cat")], [("member_added", "cat")]]


def test_a_users_tabs_on_two_nodes_are_one_member_added_once_removed_with_the_last(cluster):
    channel = unique("presence-tabs-")
    one, two, three = cluster.nodes
    observers = [cluster.member_on(node, channel, f"watcher{i}")
                 for i, node in enumerate(cluster.nodes)]
    member_events(observers, one, channel)  # the later watchers' own adds
    first_tab = cluster.member_on(one, channel, "dan")
    second_tab = cluster.socket(two)
    assert roster(second_tab.joined(channel, member("dan")))[0] == 4
    assert member_events(observers, three, channel) == [[("member_added", "dan")]] * 3

    first_tab.close()
    eventually(lambda: sockets_of(cluster, channel, "dan") == 1, 10.0, "dan's first tab leaving")
    assert member_events(observers, three, channel) == [[]] * 3
    cluster.roster_agreed(channel, {"watcher0", "watcher1", "watcher2", "dan"})

    second_tab.close()
    eventually(lambda: sockets_of(cluster, channel, "dan") == 0, 10.0, "dan's last tab leaving")
    assert member_events(observers, one, channel) == [[("member_removed", "dan")]] * 3
    cluster.roster_agreed(channel, {"watcher0", "watcher1", "watcher2"})


def test_every_node_gives_the_same_api_answers(cluster):
    channel, public = unique("presence-counts-"), unique("counts-")
    one, two, three = cluster.nodes
    cluster.member_on(one, channel, "u0")
    cluster.member_on(two, channel, "u1")
    cluster.member_on(three, channel, "u2")
    cluster.member_on(three, channel, "u0")  # u0's second tab: one more socket, not a user
    for node in (one, two):
        cluster.socket(node).joined(public)
    cluster.socket(three)  # connected, subscribed to nothing

    cluster.connections_agreed(7)
    prefix = channel[:-4]
    cluster.agreed(lambda node: cluster.get(node, "/channels", filter_by_prefix=prefix,
                                            info="user_count"),
                   (200, {"channels": {channel: {"user_count": 3}}}), "presence channels")
    cluster.agreed(lambda node: cluster.get(node, "/channels", filter_by_prefix=public),
                   (200, {"channels": {public: {}}}), "public channels")
    cluster.agreed(lambda node: cluster.get(node, f"/channels/{channel}",
                                            info="subscription_count,user_count"),
                   (200, {"occupied": True, "subscription_count": 4, "user_count": 3}),
                   "the presence channel's counts")
    cluster.agreed(lambda node: cluster.get(node, f"/channels/{public}",
                                            info="subscription_count"),
                   (200, {"occupied": True, "subscription_count": 2}),
                   "the public channel's counts")
    cluster.roster_agreed(channel, {"u0", "u1", "u2"})
    for node in cluster.nodes:
        status, answer = post_json(node, f"/apps/{node.app_id}/events", {
            "name": "counted", "channels": [channel, public], "data": "{}",
            "info": "subscription_count,user_count"})
        assert (status, answer) == (200, {"channels": {
            channel: {"subscription_count": 4, "user_count": 3},
            public: {"subscription_count": 2}}})
        status, answer = post_json(node, f"/apps/{node.app_id}/batch_events", {"batch": [
            {"name": "counted", "channel": channel, "data": "{}", "info": "user_count"},
            {"name": "counted", "channel": public, "data": "{}",
             "info": "subscription_count"}]})
        assert (status, answer) == (200, {"batch": [{"user_count": 3},
                                                    {"subscription_count": 2}]})


def test_a_node_started_after_a_cache_publish_serves_the_last_event(cluster):
    channel = unique("cache-late-")
    status, answer = post_json(cluster.nodes[0], f"/apps/{APP_ID}/events",
                               {"name": "price", "channel": channel, "data": '{"eur": 3}'})
    assert status == 200, answer
    late = cluster.start_node()
    try:
        socket = cluster.socket(late)
        assert socket.joined(channel)["channel"] == channel
        cached = socket.next_message(wanted=lambda m: m.get("channel") == channel)
        assert cached is not None and (cached["event"], cached["data"]) == ("price", '{"eur": 3}')
        assert cluster.get(late, f"/channels/{channel}", info="cache") == (
            200, {"occupied": True, "cache": {"event": "price", "data": '{"eur": 3}'}})
    finally:
        cluster.close_sockets()
        late.stop()
        cluster.nodes.remove(late)

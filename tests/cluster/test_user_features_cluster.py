"""User features across a three-node cluster on real Redis. Watchlist: "online" means signed in
on a socket on any node, each change reaches watchers on every node once, and the users of a
node killed with ``kill -9`` go offline when the reaper removes it. Subscription counts are
cluster-wide."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from shared.signatures import sign_user
from tests.cluster.conftest import Cluster, running_cluster, unique
from tests.pusher_socket import PusherSocket

REAPED = 40.0  # seconds: node TTL and reaper interval, with room to spare
WATCHLIST_EVENTS = "pusher_internal:watchlist_events"


@pytest.fixture(scope="module")
def module_features() -> Iterator[Cluster]:
    with running_cluster({"RESOUND_APP_WATCHLIST_EVENTS": "true",
                          "RESOUND_APP_SUBSCRIPTION_COUNT": "true"}) as cluster:
        yield cluster


@pytest.fixture
def features(module_features: Cluster) -> Iterator[Cluster]:
    """The module's cluster with the user features on, whole again after each test."""
    yield module_features
    module_features.close_sockets()
    module_features.heal()


def sign_in(socket: PusherSocket, user_id: str, *watchlist: str) -> None:
    user_data = json.dumps({"id": user_id, "watchlist": list(watchlist)})
    auth = sign_user(socket.key, socket.secret, socket.socket_id, user_data)
    socket.send({"event": "pusher:signin", "data": {"user_data": user_data, "auth": auth}})
    answer = socket.next_message()
    assert answer is not None and answer["event"] == "pusher:signin_success", answer


def next_events(socket: PusherSocket, timeout: float = 10.0) -> list[tuple[str, list[str]]]:
    message = socket.next_message(timeout, lambda m: m["event"] == WATCHLIST_EVENTS)
    assert message is not None, f"no {WATCHLIST_EVENTS} within {timeout} s"
    return [(event["name"], event["user_ids"]) for event in json.loads(message["data"])["events"]]


@pytest.mark.slow
def test_online_anywhere_in_the_cluster_and_offline_when_a_dead_node_is_reaped(
    features,
):
    one, two, three = features.nodes
    bob_on_two = features.socket(two)
    sign_in(bob_on_two, "bob")
    ann = features.socket(one)
    sign_in(ann, "ann", "bob", "cy")
    snapshot = next_events(ann)
    if snapshot == [("online", ["bob"])]:
        # bob's own announcement, still on its way through Redis when ann began watching,
        # may come before the snapshot; the snapshot follows
        snapshot = next_events(ann)
    if snapshot == [("offline", ["bob", "cy"])]:
        # bob's sign-in succeeds before his node has counted him online in Redis: ann's
        # snapshot may come first, and then bob's announcement must follow
        assert next_events(ann) == [("online", ["bob"])]
    else:
        assert snapshot == [("online", ["bob"]), ("offline", ["cy"])]
    cy_on_three = features.socket(three)
    sign_in(cy_on_three, "cy")
    assert next_events(ann) == [("online", ["cy"])]
    bob_on_three = features.socket(three)
    sign_in(bob_on_three, "bob")  # bob's second socket: he was online already
    bob_on_two.close()  # and still is, on node three
    features.kill(three)  # cy's and bob's last sockets die with the node
    assert sorted([next_events(ann, REAPED), next_events(ann, REAPED)]) == [
        [("offline", ["bob"])], [("offline", ["cy"])]]
    assert ann.silent(1.0)  # each once, and no "online" for bob's second socket


def next_count(socket: PusherSocket, channel: str, timeout: float = 10.0) -> int:
    message = socket.next_message(timeout, lambda m: m["event"] == "pusher_internal:"
                                  "subscription_count" and m.get("channel") == channel)
    assert message is not None, f"no subscription count on {channel} within {timeout} s"
    return json.loads(message["data"])["subscription_count"]


def test_subscription_counts_are_cluster_wide(features):
    one, two, three = features.nodes
    channel = unique("scores-")
    first = features.socket(one)
    first.subscribe(channel)
    assert next_count(first, channel) == 1
    second = features.socket(two)
    second.subscribe(channel)
    assert next_count(second, channel) == 2
    assert next_count(first, channel) == 2
    third = features.socket(three)
    third.subscribe(channel)
    assert [next_count(socket, channel) for socket in (first, second, third)] == [3, 3, 3]
    third.close()
    assert [next_count(socket, channel) for socket in (first, second)] == [2, 2]

"""Watchlist events across a three-node cluster on real Redis: "online" means signed in on a
socket on any node, each change reaches watchers on every node once, and the users of a node
killed with ``kill -9`` go offline when the reaper removes it."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from shared.signatures import sign_user
from tests.cluster.conftest import Cluster, running_cluster
from tests.pusher_socket import PusherSocket

REAPED = 40.0  # seconds: node TTL and reaper interval, with room to spare
WATCHLIST_EVENTS = "pusher_internal:watchlist_events"


@pytest.fixture(scope="module")
def watchlist_cluster() -> Iterator[Cluster]:
    with running_cluster({"RESOUND_APP_WATCHLIST_EVENTS": "true"}) as cluster:
        yield cluster


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


def test_online_anywhere_in_the_cluster_and_offline_when_a_dead_node_is_reaped(
    watchlist_cluster,
):
    one, two, three = watchlist_cluster.nodes
    bob_on_two = watchlist_cluster.socket(two)
    sign_in(bob_on_two, "bob")
    ann = watchlist_cluster.socket(one)
    sign_in(ann, "ann", "bob", "cy")
    assert next_events(ann) == [("online", ["bob"]), ("offline", ["cy"])]
    cy_on_three = watchlist_cluster.socket(three)
    sign_in(cy_on_three, "cy")
    assert next_events(ann) == [("online", ["cy"])]
    bob_on_three = watchlist_cluster.socket(three)
    sign_in(bob_on_three, "bob")  # bob's second socket: he was online already
    bob_on_two.close()  # and still is, on node three
    watchlist_cluster.kill(three)  # cy's and bob's last sockets die with the node
    assert sorted([next_events(ann, REAPED), next_events(ann, REAPED)]) == [
        [("offline", ["bob"])], [("offline", ["cy"])]]
    assert ann.silent(1.0)  # each once, and no "online" for bob's second socket

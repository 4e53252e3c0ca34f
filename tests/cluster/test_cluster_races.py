"""Races across the three nodes, each side released by a barrier so that they start together:
the presence member cap holds cluster-wide, and one user joining or leaving on two nodes at the
same moment is still one member_added and one member_removed for every observer."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest

from tests.cluster.conftest import Cluster, running_cluster, unique
from tests.cluster.test_cluster import member_events, sockets_of
from tests.pusher_socket import PusherSocket, error, member
from tests.waiting import eventually

CAP = 5
CAP_ROUNDS = 50
RACE_ROUNDS = 200  # one user's two tabs join, then leave, on two nodes at once


@pytest.fixture(scope="module")
def module_cluster() -> Iterator[Cluster]:
    with running_cluster({"REVERB_APP_MAX_PRESENCE_MEMBERS": str(CAP)}) as cluster:
        yield cluster


def together(actions: list[Callable[[], object]]) -> list[object]:
    """Run each action in its own thread, released at once by a barrier; their results."""
    barrier = threading.Barrier(len(actions))
    results: list[object] = [None] * len(actions)

    def run(index: int) -> None:
        barrier.wait(timeout=10)
        results[index] = actions[index]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(actions))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads), "a racer never finished"
    return results


def subscribe_outcome(socket: PusherSocket, channel: str, user: str) -> Callable[[], dict]:
    def subscribe() -> dict:
        socket.subscribe(channel, member(user))
        return socket.outcome(channel)

    return subscribe


def test_ten_users_racing_for_a_cap_of_five_across_three_nodes(cluster):
    for _ in range(CAP_ROUNDS):
        race_for_the_cap(cluster)
        cluster.close_sockets()


def race_for_the_cap(cluster: Cluster) -> None:
    channel = unique("presence-cap-")
    users = [f"user{i}" for i in range(10)]
    sockets = [cluster.socket(cluster.nodes[i % 3]) for i in range(10)]
    outcomes = together([subscribe_outcome(socket, channel, user)
                         for socket, user in zip(sockets, users, strict=True)])
    admitted = {user for user, outcome in zip(users, outcomes, strict=True)
                if outcome["event"] == "pusher_internal:subscription_succeeded"}
    refused = [error(outcome) for outcome in outcomes
               if outcome["event"] != "pusher_internal:subscription_succeeded"]
    assert len(admitted) == CAP
    assert [code for code, _ in refused] == [4004] * (10 - CAP)
    cluster.roster_agreed(channel, admitted)


def test_one_user_joining_and_leaving_on_two_nodes_at_once_is_one_event_each(cluster):
    channel = unique("presence-race-")
    observers = [cluster.member_on(node, channel, f"watcher{i}")
                 for i, node in enumerate(cluster.nodes)]
    member_events(observers, cluster.nodes[0], channel)  # the later watchers' own adds
    for round_ in range(RACE_ROUNDS):
        first, second = cluster.nodes[round_ % 3], cluster.nodes[(round_ + 1) % 3]
        tabs = [PusherSocket.to(first), PusherSocket.to(second)]
        try:
            outcomes = together([subscribe_outcome(tab, channel, "racer") for tab in tabs])
            assert [o["event"] for o in outcomes] == ["pusher_internal:subscription_succeeded"] * 2
            assert member_events(observers, second, channel) == [[("member_added", "racer")]] * 3
        finally:
            together([tab.close for tab in tabs])
        eventually(lambda: sockets_of(cluster, channel, "racer") == 0, 10.0,
                   "both of racer's tabs leaving")
        assert member_events(observers, first, channel) == [[("member_removed", "racer")]] * 3
    cluster.roster_agreed(channel, {"watcher0", "watcher1", "watcher2"})

"""A model test: random joins, leaves (unsubscribe) and closes of sockets spread over the three
nodes, on one presence channel. Once things settle, every node's API and every observer's view
of the roster (its subscription_succeeded, then each member event) equal the model's."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.cluster.conftest import Cluster, unique
from tests.cluster.test_cluster_failures import roster_seen
from tests.pusher_socket import PusherSocket, member

USERS = ("ann", "bob", "cat")
Step = tuple[str, int, int]  # (join | leave | close, user or socket index, node index)

steps = st.lists(st.tuples(st.sampled_from(("join", "join", "leave", "close")),
                           st.integers(0, 99), st.integers(0, 2)), min_size=1, max_size=12)


@dataclass
class Tab:
    user: str
    socket: PusherSocket
    joined: bool = True
    open: bool = True


def play(cluster: Cluster, channel: str, script: list[Step]) -> list[Tab]:
    tabs: list[Tab] = []
    for action, which, node in script:
        if action == "join":
            user = USERS[which % len(USERS)]
            tabs.append(Tab(user, cluster.member_on(cluster.nodes[node], channel, user)))
            continue
        live = [tab for tab in tabs if tab.open]
        if not live:
            continue
        tab = live[which % len(live)]
        if action == "leave":
            tab.socket.send({"event": "pusher:unsubscribe", "data": {"channel": channel}})
            tab.joined = False
        else:
            tab.socket.close()
            tab.open = False
    return tabs


@settings(max_examples=15, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(script=steps)
def test_random_joins_leaves_and_closes_converge_to_the_model(cluster, script):
    channel = unique("presence-model-")
    observers = [cluster.socket(node) for node in cluster.nodes]
    joined = [observer.joined(channel, member(f"watcher{i}"))
              for i, observer in enumerate(observers)]
    try:
        tabs = play(cluster, channel, script)
        watching = {"watcher0", "watcher1", "watcher2"}
        expected = watching | {tab.user for tab in tabs if tab.joined and tab.open}
        cluster.roster_agreed(channel, expected)
        subscriptions = len(observers) + sum(tab.joined and tab.open for tab in tabs)
        cluster.agreed(lambda node: cluster.get(node, f"/channels/{channel}",
                                                info="subscription_count"),
                       (200, {"occupied": True, "subscription_count": subscriptions}),
                       "subscriptions")
        cluster.connections_agreed(len(observers) + sum(tab.open for tab in tabs))
        for observer, answer in zip(observers, joined, strict=True):
            assert roster_seen(observer, answer, cluster.nodes[0], channel) == expected
    finally:
        cluster.close_sockets()

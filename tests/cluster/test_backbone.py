"""The backbone: interest routing, and three broadcaster processes on each Redis mode (one
server, a Redis Cluster of 3 masters and 3 replicas, a Sentinel setup) behaving as one server,
through a master killed under load.

A node hears a channel's stream (sharded pub/sub) only while one of its sockets is on the
channel; on a cluster each stream lives on the master that owns its slot.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import redis

from broadcaster.cluster.redis_bus import stream_name
from shared.redis_modes import parse_redis_url, sync_client
from tests.api.wire import post_json
from tests.cluster.conftest import Cluster, running_cluster, unique
from tests.conftest import REDIS_MODES
from tests.pusher_socket import PusherSocket, member
from tests.redis_cluster import redis_cluster
from tests.redis_sentinel import redis_sentinel
from tests.servers import APP_ID, Broadcaster
from tests.waiting import eventually

BACK = 30.0  # seconds within which everything must flow again after a master is killed


def hearing(url: str, channel: str) -> int:
    """How many connections (nodes) hear ``channel``'s stream, asked of the master that owns
    its slot."""
    stream = stream_name("reverb", APP_ID, channel)
    client = sync_client(parse_redis_url(url))
    if hasattr(client, "get_node_from_key"):  # a cluster: ask the stream's own master
        node = client.get_node_from_key(stream)
        client.close()
        client = redis.Redis(host=node.host, port=node.port)
    try:
        reply = client.execute_command("PUBSUB", "SHARDNUMSUB", stream)
    finally:
        client.close()
    return int(reply[1])


@pytest.fixture(scope="module", params=REDIS_MODES)
def mode_cluster(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """Three nodes on the session's Redis of each mode."""
    with running_cluster(url=request.getfixturevalue(f"redis_{request.param}_url")) as cluster:
        yield cluster
    # sockets are closed by running_cluster's stop


def test_a_node_hears_a_channel_only_while_its_sockets_are_on_it(mode_cluster):
    a, b, c = mode_cluster.nodes
    channel = unique("interest-")
    first = mode_cluster.socket(a)
    first.joined(channel)
    assert hearing(mode_cluster.url, channel) == 1  # node A only, before its success
    late = mode_cluster.socket(c)
    late.joined(channel)
    assert hearing(mode_cluster.url, channel) == 2
    mode_cluster.trigger(b, channel, "next")
    assert late.next_event()["event"] == "next"  # C gets the channel's next event
    assert first.next_event()["event"] == "next"
    late.send({"event": "pusher:unsubscribe", "data": {"channel": channel}})
    eventually(lambda: hearing(mode_cluster.url, channel) == 1, 10,
               "node C no longer hearing the channel")
    mode_cluster.trigger(b, channel, "after")
    assert first.next_event()["event"] == "after"
    assert late.silent()


def test_three_nodes_are_one_server_on_every_redis_mode(mode_cluster):
    a, b, c = mode_cluster.nodes
    channel, room = unique("shared-"), unique("presence-room-")
    sockets = [mode_cluster.socket(node) for node in (a, b, c)]
    for socket in sockets:
        socket.joined(channel)
    mode_cluster.trigger(b, channel, "everywhere", '{"n":1}')
    for socket in sockets:
        event = socket.next_event()
        assert (event["event"], event["data"]) == ("everywhere", '{"n":1}')
    ann = mode_cluster.member_on(a, room, "ann")
    bob = mode_cluster.socket(c)
    joined = bob.joined(room, member("bob"))
    assert json.loads(joined["data"])["presence"]["ids"] in (["ann", "bob"], ["bob", "ann"])
    added = ann.next_message(wanted=lambda m: m["event"] == "pusher_internal:member_added")
    assert json.loads(added["data"])["user_id"] == "bob"
    mode_cluster.roster_agreed(room, {"ann", "bob"})


# --- a master killed under load --------------------------------------------------------------


class Load:
    """Triggers on ``channel`` through ``node``, numbered, until stopped: which were accepted
    (200), refused (503), and when the first acceptance after ``killed_at`` came."""

    def __init__(self, node: Broadcaster, channel: str) -> None:
        self.node, self.channel = node, channel
        self.accepted: list[int] = []
        self.refused: list[int] = []
        self.other: list[tuple[int, int]] = []
        self.killed_at: float | None = None
        self.back_at: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(60)

    def _run(self) -> None:
        number = 0
        while not self._stop.is_set():
            number += 1
            status, _ = post_json(self.node, f"/apps/{self.node.app_id}/events",
                                  {"name": f"e{number}", "channel": self.channel, "data": "{}"})
            if status == 200:
                self.accepted.append(number)
                if self.killed_at is not None and self.back_at is None and \
                        self.refused and self.refused[-1] > self._killed_number:
                    self.back_at = time.monotonic()
            elif status == 503:
                self.refused.append(number)
            else:
                self.other.append((number, status))
            if self.killed_at is None:
                self._killed_number = number
            time.sleep(0.01)

    def killed(self) -> None:
        self.killed_at = time.monotonic()

    def flowing_again(self) -> bool:
        """Acceptances again after the kill: 20 more accepted than when refusals stopped."""
        return self.killed_at is not None and len(
            [n for n in self.accepted if n > self._killed_number]) >= 20 and (
            not self.refused or self.accepted[-1] > self.refused[-1] + 20)


def received(socket: PusherSocket, marker: str) -> list[int]:
    """The numbers of the events ``socket`` got, up to ``marker``."""
    numbers = []
    while True:
        event = socket.next_event(timeout=BACK)
        assert event is not None, f"the marker never came; got {len(numbers)} events"
        if event["event"] == marker:
            return numbers
        numbers.append(int(event["event"][1:]))


def failover(cluster: Cluster, kill: Callable[[str], Callable[[], None]]) -> None:
    """Subscribers on two nodes, triggers through the third; ``kill(stream)`` kills the master
    that carries the channel and returns a wait for its replacement. Nothing accepted is lost;
    everything flows again within BACK seconds of the kill."""
    a, b, c = cluster.nodes
    channel = unique("failover-")
    subscribers = [cluster.socket(node) for node in (b, c)]
    for socket in subscribers:
        socket.joined(channel)
    with Load(a, channel) as load:
        eventually(lambda: len(load.accepted) >= 20, 10, "the load getting going")
        replaced = kill(stream_name("reverb", APP_ID, channel))
        load.killed()
        replaced()
        eventually(load.flowing_again, BACK, "triggers accepted again after the kill")
    assert load.other == [], "answers other than 200 and 503"
    took = (load.back_at or time.monotonic()) - load.killed_at
    status, _ = post_json(a, f"/apps/{a.app_id}/events",
                          {"name": "marker", "channel": channel, "data": "{}"})
    assert status == 200
    for socket in subscribers:
        got = received(socket, "marker")
        lost = sorted(set(load.accepted) - set(got))
        assert lost == [], (f"{len(lost)} accepted events lost of {len(load.accepted)} "
                            f"({len(load.refused)} refused): {lost[:20]}")
        assert set(got) <= set(load.accepted), "a refused event was delivered"
        assert got == sorted(got), "events out of order"
    assert took < BACK, f"flowing again only {took:.1f} s after the kill"


def test_a_cluster_master_killed_under_load_loses_no_accepted_event():
    with redis_cluster() as setup, running_cluster(url=setup.url) as cluster:
        def kill(stream: str) -> Callable[[], None]:
            killed = setup.kill_master_of(stream)
            return lambda: setup.wait_failover(stream, killed)

        failover(cluster, kill)


def test_a_sentinel_master_killed_under_load_loses_no_accepted_event():
    with redis_sentinel() as setup, running_cluster(url=setup.url) as cluster:
        def kill(stream: str) -> Callable[[], None]:
            killed = setup.kill_master()
            return lambda: setup.wait_failover(killed)

        failover(cluster, kill)


def test_a_socket_subscribing_to_many_new_channels_at_once_gets_every_success(mode_cluster):
    """pusher-js resubscribes every channel at once after a reconnect: each new channel waits
    for the node to hear it, and none of that holds the socket's next messages back (150 once
    closed the socket with 4100: its backlog of messages past 100)."""
    socket = mode_cluster.socket(mode_cluster.nodes[0])
    names = [unique(f"many-{n}-") for n in range(150)]
    for name in names:
        socket.subscribe(name)
    succeeded = set()
    while len(succeeded) < len(names):
        message = socket.next_message()
        assert message is not None, f"{len(succeeded)} of {len(names)} subscriptions succeeded"
        assert message["event"] == "pusher_internal:subscription_succeeded", message
        succeeded.add(message["channel"])
    assert succeeded == set(names)

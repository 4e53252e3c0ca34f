"""Bursts of webhooks with Redis scaling: 1,000 sockets, each alone on its channel, close at
once, and exactly 1,000 ``channel_vacated`` (and, on presence channels, 1,000 ``member_removed``)
arrive, none twice: on a fresh server, warm, and after a Redis restart. A real broadcaster, a
real redis-server restarted on the same port, a real HTTP receiver; the node's metrics count
them queued and sent, none dropped, and the Redis steps tried again."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator

import pytest

from tests.cluster.conftest import Cluster
from tests.servers import Broadcaster, free_port
from tests.test_metrics import scrape, value
from tests.waiting import eventually
from tests.webhooks.crowd import Crowd
from tests.webhooks.receiver import Receiver, webhooks_env

BURST = 1000
pytestmark = pytest.mark.slow

DEADLINE = 90.0  # seconds for a burst's webhooks to arrive (3 s window, 8 requests at a time)


@pytest.fixture
def metrics_port() -> int:
    return free_port()


@pytest.fixture
def cluster(receiver: Receiver, metrics_port: int) -> Iterator[Cluster]:
    """One broadcaster node on a fresh redis-server, sending endings to ``receiver``."""
    cluster = Cluster({**webhooks_env(receiver.url, "channel_vacated", "member_removed"),
                       "RESOUND_METRICS_PORT": str(metrics_port)})
    try:
        cluster.start_redis()
        cluster.start_node()
        yield cluster
    finally:
        cluster.stop()


def arrived(receiver: Receiver, name: str, prefix: str) -> Counter[str]:
    """How many ``name`` webhooks each channel starting with ``prefix`` got."""
    return Counter(event["channel"] for event in receiver.events
                   if event["name"] == name and event["channel"].startswith(prefix))


def burst(node: Broadcaster, receiver: Receiver, prefix: str, names: tuple[str, ...],
          meanwhile: Callable[[], None] = lambda: None,
          afterwards: Callable[[], None] = lambda: None) -> None:
    """Open :data:`BURST` sockets on channels ``prefix0``..., run ``meanwhile``, close them all
    at once, run ``afterwards``; require every one of ``names`` once per channel, and nothing
    twice."""
    channels = [f"{prefix}{i}" for i in range(BURST)]
    crowd = Crowd(node.ws_url)
    try:
        crowd.open(channels)
        meanwhile()
        crowd.close()
        afterwards()
        for name in names:
            try:
                eventually(lambda name=name: len(arrived(receiver, name, prefix)) == BURST,
                           DEADLINE, f"{BURST} {name} webhooks")
            except AssertionError as failure:
                got = len(arrived(receiver, name, prefix))
                raise AssertionError(f"{failure}: {got} of {BURST} arrived") from None
        # One more ending, decided after the burst's: once it is in, a doubled one would be too.
        crowd.open([f"{prefix}marker"])
        crowd.close()
        eventually(lambda: arrived(receiver, names[0], f"{prefix}marker"), DEADLINE,
                   "the marker's webhook")
    finally:
        crowd.stop()
    for name in names:
        assert arrived(receiver, name, prefix) == Counter({**dict.fromkeys(channels, 1),
                                                           f"{prefix}marker": 1}), name


def counted(metrics_port: int, receiver: Receiver) -> dict[str, float]:
    """The node's webhook counters, once it sent what the receiver got (the gauge at 0)."""
    eventually(lambda: value(scrape(metrics_port), "resound_webhook_queue") == 0,
               what="the webhook queue empty")
    samples = scrape(metrics_port)
    assert value(samples, "resound_webhook_events_total") == len(receiver.events)
    return {name: value(samples, f"resound_webhook_{name}") for name in (
        "queued_total", "dropped_total", "redis_retries_total")}


def restart_redis(cluster: Cluster) -> None:
    """Stop the redis-server and start an empty one on the same port while the node runs;
    wait until the node is registered in it again."""
    cluster.stop_redis()
    cluster.heal()


def test_1000_channels_vacated_at_once_fresh_then_warm(cluster: Cluster, receiver: Receiver,
                                                      metrics_port: int) -> None:
    node, = cluster.nodes
    burst(node, receiver, "fresh-", ("channel_vacated",))
    burst(node, receiver, "warm-", ("channel_vacated",))
    assert counted(metrics_port, receiver) == {
        "queued_total": 2 * (BURST + 1), "dropped_total": 0, "redis_retries_total": 0}


def test_1000_channels_vacated_at_once_after_a_redis_restart(
        cluster: Cluster, receiver: Receiver, metrics_port: int) -> None:
    node, = cluster.nodes
    burst(node, receiver, "restart-", ("channel_vacated",), lambda: restart_redis(cluster))
    counts = counted(metrics_port, receiver)
    assert counts["queued_total"] == BURST + 1 and counts["dropped_total"] == 0
    assert counts["redis_retries_total"] >= 1  # the sender's pop, at least, met the restart


def test_1000_channels_vacated_while_redis_is_down_arrive_once_it_is_back(
        cluster: Cluster, receiver: Receiver, metrics_port: int) -> None:
    node, = cluster.nodes
    burst(node, receiver, "outage-", ("channel_vacated",), cluster.stop_redis, cluster.heal)
    counts = counted(metrics_port, receiver)
    assert counts["queued_total"] == BURST + 1 and counts["dropped_total"] == 0
    assert counts["redis_retries_total"] >= 1


def test_1000_presence_members_leave_at_once(cluster: Cluster, receiver: Receiver) -> None:
    node, = cluster.nodes
    burst(node, receiver, "presence-fresh-", ("member_removed", "channel_vacated"))

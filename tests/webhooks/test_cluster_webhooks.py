"""Webhooks from a three-node cluster on a real Redis: each is sent once per cluster."""

from __future__ import annotations

import secrets
import time

import pytest
import redis

from shared.redis_modes import parse_redis_url, sync_client
from tests.cluster.conftest import Cluster, running_cluster
from tests.conftest import REDIS_MODES
from tests.servers import APP_ID
from tests.waiting import eventually
from tests.webhooks.receiver import Receiver, webhooks_env

pytestmark = pytest.mark.slow

QUIET = 4.0  # seconds past the 3 s window in which a duplicate would have arrived


@pytest.mark.parametrize("mode", ["own", *REDIS_MODES])
def test_one_occupied_and_one_vacated_for_subscribers_on_three_nodes(
        mode: str, request: pytest.FixtureRequest) -> None:
    """On a redis-server of the test's own, then on the session's Redis of each mode, whose
    earlier tests may have left webhooks of their own channels queued: the names are new."""
    url = "" if mode == "own" else request.getfixturevalue(f"redis_{mode}_url")
    news, room = f"news-{secrets.token_hex(4)}", f"presence-room-{secrets.token_hex(4)}"
    receiver = Receiver()
    try:
        with running_cluster(webhooks_env(receiver.url, "channel_occupied", "channel_vacated",
                                          "member_added", "member_removed"), url) as cluster:
            sockets = [cluster.socket(node) for node in cluster.nodes]
            for socket in sockets:
                socket.joined(news)
            eventually(lambda: receiver.names(news) == ["channel_occupied"],
                       what="channel_occupied")
            for socket in sockets[:2]:
                socket.close()
            time.sleep(QUIET)
            assert receiver.names(news) == ["channel_occupied"]
            sockets[2].close()
            eventually(lambda: receiver.names(news) == ["channel_occupied", "channel_vacated"],
                       what="channel_vacated")

            tabs = [cluster.member_on(node, room, "7") for node in cluster.nodes]
            eventually(lambda: "member_added" in receiver.names(room),
                       what="member_added")
            for tab in tabs:
                tab.close()
            eventually(lambda: "member_removed" in receiver.names(room),
                       what="member_removed")
            time.sleep(QUIET)
            assert [name for name in receiver.names(room)
                    if name.startswith("member_")] == ["member_added", "member_removed"]
    finally:
        receiver.close()


def test_a_webhook_leased_by_a_node_that_died_is_sent_by_another() -> None:
    receiver = Receiver(statuses=[500] * 10_000)  # the first node's sender keeps retrying
    cluster = Cluster(webhooks_env(receiver.url, "channel_occupied"))
    try:
        cluster.start_redis()
        first = cluster.start_node()
        cluster.socket(first).joined("news")
        leased = redis.Redis.from_url(cluster.url)
        eventually(lambda: leased.keys("resound:{webhooks}:leased:*") and receiver.posts,
                   what="the first node's sender holding the webhook")
        cluster.kill(first)
        receiver.statuses.clear()
        cluster.start_node()
        eventually(lambda: receiver.names("news") == ["channel_occupied"], timeout=60,
                   what="the webhook from the node still alive")
    finally:
        cluster.stop()
        receiver.close()


def acknowledged(cluster: Cluster) -> None:
    """Wait until no node holds a webhook it has sent but not yet taken off its leased list.
    A node killed in between has its leased webhooks sent again by another (at least once), so a
    test that kills a node right after the receiver saw a webhook would see it twice."""
    leased = sync_client(parse_redis_url(cluster.url))
    try:
        eventually(lambda: not leased.keys("resound:{webhooks}:leased:*"),
                   what="every node's sent webhooks taken off its leased list")
    finally:
        leased.close()


def test_a_member_on_a_node_that_died_is_removed_once() -> None:
    receiver = Receiver()
    try:
        with running_cluster(webhooks_env(receiver.url, "member_added",
                                          "member_removed")) as cluster:
            doomed = cluster.nodes[0]
            cluster.member_on(doomed, "presence-room", "7")
            eventually(lambda: receiver.names("presence-room") == ["member_added"],
                       what="member_added")
            acknowledged(cluster)
            cluster.kill(doomed)
            eventually(lambda: receiver.names("presence-room") == [
                "member_added", "member_removed"], timeout=60, what="member_removed by the reaper")
            time.sleep(QUIET)
            assert receiver.names("presence-room") == ["member_added", "member_removed"]
    finally:
        receiver.close()


def test_a_channel_whose_last_node_died_is_vacated_once() -> None:
    receiver = Receiver()
    try:
        with running_cluster(webhooks_env(receiver.url, "channel_occupied",
                                          "channel_vacated")) as cluster:
            survivor, doomed = cluster.nodes[:2]
            cluster.socket(survivor).joined("shared")
            cluster.socket(doomed).joined("shared")
            cluster.socket(doomed).joined("lonely")
            eventually(lambda: receiver.names("lonely") == ["channel_occupied"],
                       what="channel_occupied")
            acknowledged(cluster)
            cluster.kill(doomed)
            eventually(lambda: receiver.names("lonely") == [
                "channel_occupied", "channel_vacated"], timeout=60, what="channel_vacated")
            time.sleep(QUIET)
            assert receiver.names("lonely") == ["channel_occupied", "channel_vacated"]
            assert receiver.names("shared") == ["channel_occupied"]
    finally:
        receiver.close()


def test_each_cluster_wide_subscription_count_is_sent_once() -> None:
    receiver = Receiver()
    try:
        with running_cluster(webhooks_env(receiver.url, "subscription_count")) as cluster:
            sockets = []
            for expected, node in enumerate(cluster.nodes, start=1):
                sockets.append(cluster.socket(node))
                sockets[-1].joined("news")
                eventually(lambda expected=expected: expected in receiver.counts("news"),
                           what=f"the count {expected} (every node polls it)")
            sockets.pop().close()
            eventually(lambda: receiver.counts("news")[-1:] == [2], what="the count after a leave")
            time.sleep(QUIET)  # time for a node that saw a change late to send it again
            assert receiver.counts("news") == [1, 2, 3, 2]
    finally:
        receiver.close()


def test_after_an_empty_redis_restart_a_channel_on_two_nodes_is_vacated_by_the_last() -> None:
    receiver = Receiver()
    try:
        with running_cluster(webhooks_env(receiver.url, "channel_occupied",
                                          "channel_vacated")) as cluster:
            first, second = (cluster.socket(node) for node in cluster.nodes[:2])
            for socket in (first, second):
                socket.joined("shared")
            eventually(lambda: receiver.names("shared") == ["channel_occupied"],
                       what="channel_occupied")
            cluster.stop_redis()
            cluster.heal()  # an empty redis-server on the same port
            holders = redis.Redis.from_url(cluster.url)
            eventually(lambda: holders.scard(f"resound:{{{APP_ID}:shared}}:nodes") == 2,
                       what="both nodes putting themselves back as holders of the channel")
            holders.close()
            first.close()
            time.sleep(QUIET)
            assert receiver.names("shared") == ["channel_occupied"]
            second.close()
            eventually(lambda: receiver.names("shared") == ["channel_occupied",
                                                            "channel_vacated"],
                       what="channel_vacated from the last node")
    finally:
        receiver.close()

"""The real Redis Cluster and Sentinel setups the tests run on, and what our clients do when a
master dies: the same client object (from shared/redis_modes.py) works again once the cluster or
the sentinels have promoted the replica, with no new client and no restart."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

import pytest
import redis

from shared.redis_modes import async_client, parse_redis_url, sync_client
from tests.redis_cluster import MASTERS, RedisCluster
from tests.redis_nodes import RedisNode
from tests.redis_sentinel import SENTINELS, SERVICE, RedisSentinel

RECOVERY = 30.0  # seconds the issue allows from a master's death until everything flows again


def test_the_cluster_has_three_masters_each_with_a_synced_replica(redis_cluster_setup):
    roles = [node.info("replication")["role"] for node in redis_cluster_setup.nodes]
    assert sorted(roles) == ["master"] * MASTERS + ["slave"] * MASTERS
    assert redis_cluster_setup.whole()
    assert parse_redis_url(redis_cluster_setup.url).mode == "cluster"


def test_the_sentinels_agree_on_one_master_with_a_replica(redis_sentinel_setup):
    master = redis_sentinel_setup.master()
    assert master.info("replication")["role"] == "master"
    assert master.info("replication")["connected_slaves"] == 1
    with redis_sentinel_setup.sentinels[0].client() as sentinel:
        assert sentinel.sentinel_master(SERVICE)["num-other-sentinels"] == SENTINELS - 1
    assert parse_redis_url(redis_sentinel_setup.url).service == SERVICE


def written_to(node: RedisNode, key: str) -> str | None:
    """``key``'s value as ``node`` itself holds it."""
    with node.client() as client:
        return client.get(key)


# --- Sentinel ---------------------------------------------------------------------------------

@pytest.fixture
def sentinel_failover(redis_sentinel_setup: RedisSentinel):
    """Kills the shared setup's master when called and returns the new one; the killed node is
    started again (as a replica) after the test."""
    killed: list[RedisNode] = []

    def fail_over() -> RedisNode:
        killed.append(redis_sentinel_setup.kill_master())
        return redis_sentinel_setup.wait_failover(killed[-1])

    yield fail_over
    for node in killed:
        redis_sentinel_setup.restart(node)


def test_the_sync_sentinel_client_follows_a_failover(redis_sentinel_url, sentinel_failover):
    key = f"resound-test:{uuid.uuid4().hex}"
    with sync_client(parse_redis_url(redis_sentinel_url), decode_responses=True,
                     socket_timeout=2) as client:
        client.set(key, "before")
        new_master = sentinel_failover()
        client.set(key, "after")  # the first command after the failover: no error
        assert written_to(new_master, key) == "after"
        assert client.get(key) == "after"


def async_client_across(url: str, fail_over: Callable[[str], RedisNode]) -> None:
    """One async client of ``url`` writes a key, ``fail_over(key)`` replaces the master, and
    the same client's first command after it works and lands on the new master."""
    key = f"resound-test:{uuid.uuid4().hex}"

    async def scenario() -> tuple[RedisNode, str | None]:
        client = async_client(parse_redis_url(url), decode_responses=True, socket_timeout=2)
        try:
            await client.set(key, "before")
            new_master = await asyncio.to_thread(fail_over, key)
            await client.set(key, "after")  # the first command after the failover: no error
            return new_master, await client.get(key)
        finally:
            await client.aclose()

    new_master, read_back = asyncio.run(scenario())
    assert written_to(new_master, key) == "after"
    assert read_back == "after"


def test_the_async_sentinel_client_follows_a_failover(redis_sentinel_url, sentinel_failover):
    async_client_across(redis_sentinel_url, lambda key: sentinel_failover())


# --- Cluster ----------------------------------------------------------------------------------

@pytest.fixture
def cluster_failover(redis_cluster_setup: RedisCluster):
    """Kills the master of a key's slot when called and returns the replica that took over; the
    killed node is started again (it rejoins as a replica) after the test."""
    killed: list[RedisNode] = []

    def fail_over(key: str) -> RedisNode:
        killed.append(redis_cluster_setup.kill_master_of(key))
        return redis_cluster_setup.wait_failover(key, killed[-1])

    yield fail_over
    for node in killed:
        redis_cluster_setup.restart(node)


def test_the_sync_cluster_client_works_again_after_a_master_dies(redis_cluster_url,
                                                                cluster_failover):
    key = f"resound-test:{uuid.uuid4().hex}"
    with sync_client(parse_redis_url(redis_cluster_url), decode_responses=True,
                     socket_timeout=2) as client:
        client.set(key, "before")
        new_master = cluster_failover(key)
        client.set(key, "after")  # the first command after the failover: no error
        assert written_to(new_master, key) == "after"
        assert client.get(key) == "after"


def test_the_async_cluster_client_works_again_after_a_master_dies(redis_cluster_url,
                                                                 cluster_failover):
    async_client_across(redis_cluster_url, cluster_failover)


# --- sharded pub/sub across a failover --------------------------------------------------------

async def delivered_again(pubsub, publisher, channel: str) -> tuple[bytes, int]:
    """Publish on ``channel`` until ``pubsub`` receives one of the publications (within
    ``RECOVERY`` s); return it and how many reads raised a connection error first. A reader of
    a dead master's connection gets one such error; the next read resubscribes (redis-py does
    that itself) on the new master."""
    receive = getattr(pubsub, "get_sharded_message", pubsub.get_message)
    deadline = asyncio.get_running_loop().time() + RECOVERY
    errors = 0
    while asyncio.get_running_loop().time() < deadline:
        try:
            await publisher.spublish(channel, b"after")
            message = await receive(ignore_subscribe_messages=True, timeout=0.5)
        except redis.ConnectionError:
            errors += 1
            continue
        if message is not None and message["type"] == "smessage":
            return message["data"], errors
    raise AssertionError(f"no publication reached the subscriber within {RECOVERY} s")


@pytest.mark.parametrize("mode", ["cluster", "sentinel"])
def test_a_sharded_subscription_resumes_on_the_new_master(request, mode):
    """The same pub/sub object keeps its SSUBSCRIBE across the failover: what is published
    after it arrives (what was published while no master owned the channel is lost)."""
    url = request.getfixturevalue(f"redis_{mode}_url")
    channel = f"resound-test:{{{uuid.uuid4().hex}}}"
    fail_over = request.getfixturevalue(f"{mode}_failover")

    async def scenario() -> tuple[bytes, int]:
        target = parse_redis_url(url)
        subscriber, publisher = async_client(target), async_client(target)
        pubsub = subscriber.pubsub()
        try:
            await pubsub.ssubscribe(channel)
            await asyncio.to_thread(fail_over, *([channel] if mode == "cluster" else []))
            return await delivered_again(pubsub, publisher, channel)
        finally:
            await pubsub.aclose()
            await subscriber.aclose()
            await publisher.aclose()

    data, errors = asyncio.run(scenario())
    assert data == b"after"
    assert errors <= 1

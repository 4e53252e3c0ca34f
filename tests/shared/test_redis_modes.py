"""shared/redis_modes.py: which Redis a URL names, and clients that reach it in every mode, on
real servers (one redis-server, a Redis Cluster, a Sentinel setup)."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from shared.redis_modes import (
    RedisTarget,
    async_client,
    limits_storage,
    parse_redis_url,
    redacted,
    sync_client,
)


@pytest.mark.parametrize("url, expected", [
    ("redis://u:p%40ss@r.test:6380/2", RedisTarget(
        mode="single", url="redis://u:p%40ss@r.test:6380/2", nodes=(("r.test", 6380),), db=2,
        username="u", password="p@ss")),
    ("redis://r.test", RedisTarget(mode="single", url="redis://r.test",
                                   nodes=(("r.test", 6379),))),
    ("rediss://:pw@r.test:6390/0", RedisTarget(
        mode="single", url="rediss://:pw@r.test:6390/0", nodes=(("r.test", 6390),),
        password="pw", tls=True)),
    ("unix:///run/redis.sock?db=3", RedisTarget(
        mode="single", url="unix:///run/redis.sock?db=3", nodes=(), db=3,
        path="/run/redis.sock")),
    ("redis+cluster://a.test:7000,b.test:7001", RedisTarget(
        mode="cluster", url="redis+cluster://a.test:7000,b.test:7001",
        nodes=(("a.test", 7000), ("b.test", 7001)))),
    ("redis+cluster://user:p%2Cw@[::1]:7000,b.test:7001/", RedisTarget(
        mode="cluster", url="redis+cluster://user:p%2Cw@[::1]:7000,b.test:7001/",
        nodes=(("::1", 7000), ("b.test", 7001)), username="user", password="p,w")),
    ("redis+sentinel://:pw@a.test:26379,b.test:26379,c.test:26379/main", RedisTarget(
        mode="sentinel", url="redis+sentinel://:pw@a.test:26379,b.test:26379,c.test:26379/main",
        nodes=(("a.test", 26379), ("b.test", 26379), ("c.test", 26379)), service="main",
        password="pw")),
    ("redis+sentinel://a.test:26379/main/4", RedisTarget(
        mode="sentinel", url="redis+sentinel://a.test:26379/main/4",
        nodes=(("a.test", 26379),), service="main", db=4)),
    ("redis+sentinel://a.test:26379/main/", RedisTarget(
        mode="sentinel", url="redis+sentinel://a.test:26379/main/",
        nodes=(("a.test", 26379),), service="main")),
])
def test_each_form_parses_into_its_target(url, expected):
    assert parse_redis_url(url) == expected


@pytest.mark.parametrize("url, reason", [
    ("r.test:6379", "must start with redis://, rediss://, unix://, redis+cluster:// or "
                    "redis+sentinel://"),
    ("http://r.test", "must start with redis://"),
    ("redis://r.test:port", "is not a Redis URL"),
    ("redis://r.test/one", "the database in 'redis://r.test/one' must be a number"),
    ("unix://", "names no socket"),
    ("redis+cluster://a.test,b.test:7001", "has 'a.test' where host:port belongs"),
    ("redis+cluster://a.test:70000", "has 'a.test:70000' where host:port belongs"),
    ("redis+cluster://", "has '' where host:port belongs"),
    ("redis+cluster://a.test:7000/2", "a Redis Cluster has only database 0"),
    ("redis+cluster://a.test:7000?ssl=true", "has ?options, which this form does not take"),
    ("redis+sentinel://a.test:26379", "names no master after the sentinels"),
    ("redis+sentinel://a.test:26379/", "names no master after the sentinels"),
    ("redis+sentinel://a.test:26379/main/x", "has 'main/x' after the sentinels"),
    ("redis+sentinel://a.test:26379/main/1/2", "has 'main/1/2' after the sentinels"),
])
def test_a_bad_url_says_what_form_is_expected(url, reason):
    with pytest.raises(ValueError, match="expected|forms:") as caught:
        parse_redis_url(url)
    assert reason in str(caught.value)
    assert "\n" not in str(caught.value)


def test_errors_and_reprs_never_show_the_password():
    with pytest.raises(ValueError) as caught:
        parse_redis_url("redis+sentinel://user:s3cret@a.test:26379")
    assert "s3cret" not in str(caught.value)
    assert "s3cret" not in repr(parse_redis_url("redis+cluster://:s3cret@a.test:7000"))


@pytest.mark.parametrize("url, shown", [
    ("redis://user:pw@host:6380/1", "redis://user:***@host:6380/1"),
    ("redis://:pw@host", "redis://:***@host"),
    ("redis://host:6379/0", "redis://host:6379/0"),
    ("redis://user@host:6379/0", "redis://user@host:6379/0"),
    ("redis+cluster://user:p@ss@a:7000,b:7001", "redis+cluster://user:***@a:7000,b:7001"),
    ("redis+sentinel://:pw@a:26379,b:26379/main/2", "redis+sentinel://:***@a:26379,b:26379/main/2"),
    ("unix://:pw@/run/redis.sock?db=1", "unix://:***@/run/redis.sock?db=1"),
    ("not a url", "not a url"),
])
def test_redacted_hides_the_password_in_every_form(url, shown):
    assert redacted(url) == shown


@pytest.mark.parametrize("url, uri, options", [
    ("redis://:pw@r.test:6380/2", "redis://:pw@r.test:6380/2", {}),
    ("unix:///run/redis.sock?db=1", "redis+unix:///run/redis.sock?db=1", {}),
    ("redis+cluster://us%40er:p%2Cw@a.test:7000,[::1]:7001",
     "redis+cluster://a.test:7000,[::1]:7001", {"username": "us@er", "password": "p,w"}),
    ("redis+sentinel://:p%2Fw@a.test:26379,b.test:26379/main/3",
     "redis+sentinel://a.test:26379,b.test:26379/main",
     {"password": "p/w", "db": 3, "use_replicas": False}),
])
def test_flask_limiter_gets_a_uri_it_reads_as_we_do(url, uri, options):
    """limits reads unix sockets as redis+unix://, the whole sentinel path as the master's name,
    and multi-host credentials undecoded: those go as options, which it prefers."""
    assert limits_storage(parse_redis_url(url)) == (uri, options)


# --- real servers in each mode ------------------------------------------------------------------

def test_the_sync_client_round_trips_in_each_mode(redis_mode_url):
    key = f"resound-test:{uuid.uuid4().hex}"
    with sync_client(parse_redis_url(redis_mode_url), decode_responses=True) as client:
        client.set(key, "value", ex=60)
        assert client.get(key) == "value"


def test_the_async_client_round_trips_in_each_mode(redis_mode_url):
    key = f"resound-test:{uuid.uuid4().hex}"

    async def round_trip() -> str | None:
        client = async_client(parse_redis_url(redis_mode_url), decode_responses=True)
        try:
            await client.set(key, "value", ex=60)
            return await client.get(key)
        finally:
            await client.aclose()

    assert asyncio.run(round_trip()) == "value"


def test_sharded_pubsub_through_each_modes_client(redis_mode_url):
    """SSUBSCRIBE on one client's pub/sub, SPUBLISH through another: the message arrives (in a
    cluster, through the shard that owns the channel's slot). redis-py's cluster pub/sub reads
    shard messages with ``get_sharded_message``, the others with ``get_message``."""
    channel = f"resound-test:{{{uuid.uuid4().hex}}}"

    async def publish_and_receive() -> dict:
        target = parse_redis_url(redis_mode_url)
        subscriber, publisher = async_client(target), async_client(target)
        pubsub = subscriber.pubsub()
        receive = getattr(pubsub, "get_sharded_message", pubsub.get_message)
        try:
            await pubsub.ssubscribe(channel)
            confirmation = await receive(timeout=5.0)
            while confirmation is not None and confirmation["type"] != "ssubscribe":
                confirmation = await receive(timeout=5.0)
            assert confirmation is not None, "SSUBSCRIBE was never confirmed"
            assert await publisher.spublish(channel, b"payload") == 1
            message = await receive(ignore_subscribe_messages=True,
                                                        timeout=5.0)
            assert message is not None, "the published message never arrived"
            return message
        finally:
            await pubsub.aclose()
            await subscriber.aclose()
            await publisher.aclose()

    message = asyncio.run(publish_and_receive())
    assert message["type"] == "smessage"
    assert message["data"] == b"payload"

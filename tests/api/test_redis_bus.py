"""The Redis bus against a real redis-server: two buses (as two processes would) share
publications, in order; junk on the channel is skipped; a dead Redis is a clear start-up error."""

import asyncio

import pytest
import redis

from broadcaster.cluster.redis_bus import (
    RedisBus,
    RedisUnavailable,
    decode_publication,
    encode_publication,
)
from broadcaster.config import redacted
from broadcaster.protocol.publication import TERMINATE_USER, Publication
from tests.api.redis_server import redis_server
from tests.servers import HOST, free_port


async def wait_for(condition, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def started(url: str, channel: str) -> tuple[RedisBus, list[Publication]]:
    received: list[Publication] = []
    bus = RedisBus(url, channel)
    bus.attach(received.append)
    await bus.start()
    return bus, received


def test_every_bus_gets_every_publication_in_order(redis_url):
    async def scenario():
        one, got_one = await started(redis_url, "t-order")
        two, got_two = await started(redis_url, "t-order")
        sent = [Publication("1", ("a", "b"), f"e{i}", str(i), "1.2" if i % 2 else None)
                for i in range(300)]
        for publication in sent:
            one.publish(publication)
        await wait_for(lambda: len(got_one) == len(got_two) == len(sent))
        await one.stop()
        await two.stop()
        return sent, got_one, got_two

    sent, got_one, got_two = asyncio.run(scenario())
    assert got_one == sent
    assert got_two == sent


def test_junk_on_the_channel_is_skipped(redis_url):
    async def scenario():
        bus, received = await started(redis_url, "t-junk")
        writer = redis.asyncio.Redis.from_url(redis_url)
        for junk in (b"not json", b"[1]", b'{"app_id": 1}'):
            await writer.publish("t-junk", junk)
        good = Publication("1", ("a",), "e", "{}")
        await writer.publish("t-junk", encode_publication(good))
        await wait_for(lambda: received)
        await writer.aclose()
        await bus.stop()
        return received, good

    received, good = asyncio.run(scenario())
    assert received == [good]


def test_unreachable_redis_is_a_clear_start_up_error():
    async def scenario():
        bus = RedisBus(f"redis://:secret@{HOST}:{free_port()}/0")
        bus.attach(lambda publication: None)
        await bus.start()

    with pytest.raises(RedisUnavailable, match="REDIS_URL") as caught:
        asyncio.run(scenario())
    assert "secret" not in str(caught.value)


def test_publication_codec():
    for publication in (Publication("7", ("x", "y"), "e", '{"a":1}', "3.4"),
                        Publication("7", ("presence-x",), "client-e", None, "3.4", "u1"),
                        Publication("7", (), "", None, user_id="u1", kind=TERMINATE_USER)):
        assert decode_publication(encode_publication(publication)) == publication
    for bad in (b"", b"nope", b"[]", b'{"app_id":"1","channels":"x","event":"e","data":"d"}',
                b'{"app_id":"1","channels":["x"],"event":"e","data":{}}',
                b'{"app_id":"1","channels":["x"],"event":"e","data":"d","user_id":7}',
                b'{"app_id":"1","channels":["x"],"event":"e","data":"d","kind":"explode"}'):
        with pytest.raises(ValueError):
            decode_publication(bad)


def test_redacted_hides_the_password():
    assert redacted("redis://user:pw@host:6380/1") == "redis://user:***@host:6380/1"
    assert redacted("redis://host:6379/0") == "redis://host:6379/0"


def test_bus_recovers_when_redis_restarts():
    port = free_port()

    async def scenario():
        with redis_server(port) as url:
            bus, received = await started(url, "t-restart")
            bus.publish(Publication("1", ("a",), "before", "{}"))
            await wait_for(lambda: len(received) == 1)
        with redis_server(port):
            # Publications keep trying until the restarted Redis is back and resubscribed.
            deadline = asyncio.get_running_loop().time() + 15
            while len(received) < 2:
                assert asyncio.get_running_loop().time() < deadline, "no delivery after restart"
                bus.publish(Publication("1", ("a",), "after", "{}"))
                await asyncio.sleep(0.2)
            await bus.stop()
        return received

    received = asyncio.run(scenario())
    assert [publication.event for publication in received][:2] == ["before", "after"]

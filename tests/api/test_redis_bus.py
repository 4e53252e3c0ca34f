"""The Redis bus against a real redis-server: two buses (as two processes would) share
publications of the channels they hear, in order; junk on a stream is skipped; a dead Redis is a
clear start-up error; markers keep their place on a stream; cache channels' last events are
kept."""

import asyncio
import dataclasses

import pytest
import redis

from broadcaster.cluster.redis_bus import (
    CACHE_TTL_MS,
    RedisBus,
    RedisUnavailable,
    cache_key,
    decode_publication,
    encode_publication,
    stream_name,
)
from broadcaster.config import redacted
from broadcaster.protocol.publication import TERMINATE_USER, Publication
from broadcaster.protocol.requests import LISTENING
from shared.payloads import encode_message, loads
from tests.api.redis_server import redis_server
from tests.cluster.buses import started, wait_for
from tests.servers import HOST, free_port


def test_each_bus_gets_in_order_only_the_channels_it_hears(redis_url):
    """Interest routing: a publication on channels a and b reaches a bus once per channel it
    hears, restricted to that channel, in order; a bus that hears neither gets nothing."""
    async def scenario():
        one, got_one = await started(redis_url, "t-order", hear=("a", "b"))
        two, got_two = await started(redis_url, "t-order", hear=("b",))
        bystander, got_bystander = await started(redis_url, "t-order", hear=("c",))
        sent = [Publication("1", ("a", "b"), f"e{i}", str(i), "1.2" if i % 2 else None)
                for i in range(300)]
        for publication in sent:
            one.publish(publication)
        marker = Publication("1", ("c",), "marker", None)
        one.publish(marker)
        await wait_for(lambda: len(got_one) == 2 * len(sent) and len(got_two) == len(sent)
                       and got_bystander == [marker])
        for bus in (one, two, bystander):
            await bus.stop()
        return sent, got_one, got_two

    sent, got_one, got_two = asyncio.run(scenario())
    for channel in ("a", "b"):
        assert [p for p in got_one if p.channels == (channel,)] == [
            dataclasses.replace(p, channels=(channel,)) for p in sent]
    assert got_two == [dataclasses.replace(p, channels=("b",)) for p in sent]


def test_junk_on_a_stream_is_skipped_with_a_log_line(redis_url, caplog):
    async def scenario():
        bus, received = await started(redis_url, "t-junk")
        writer = redis.asyncio.Redis.from_url(redis_url)
        stream = stream_name("t-junk", "1", "a")
        for junk in (b"not json", b"[1]", b'{"app_id": 1}'):
            await writer.execute_command("SPUBLISH", stream, junk)
        good = Publication("1", ("a",), "e", "{}")
        await writer.execute_command("SPUBLISH", stream, encode_publication(good))
        await wait_for(lambda: received)
        await writer.aclose()
        await bus.stop()
        return received, good

    received, good = asyncio.run(scenario())
    assert received == [good]
    ignored = [record.getMessage() for record in caplog.records
               if "ignored a message on Redis stream t-junk:{1:a}" in record.getMessage()]
    assert len(ignored) == 3, ignored


def test_unreachable_redis_is_a_clear_start_up_error():
    async def scenario():
        bus = RedisBus(f"redis://:secret@{HOST}:{free_port()}/0")
        bus.attach(lambda publication, position=None: None)
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


def test_codec_carries_every_field_of_publication():
    # Every field differs from its default, so one dropped on the way would show.
    publication = Publication("7", ("presence-x", "y"), "client-e", '{"a":1}', "3.4", "u1",
                              TERMINATE_USER)
    defaults = Publication("", (), "", None)
    fields = [field.name for field in dataclasses.fields(Publication)]
    assert all(getattr(publication, name) != getattr(defaults, name) for name in fields)
    assert sorted(loads(encode_publication(publication))) == sorted(fields)
    assert decode_publication(encode_publication(publication)) == publication
    # A sender that predates a defaulted field: the field takes its default.
    assert decode_publication(b'{"app_id":"7","channels":["x"],"event":"e","data":null}') == \
        Publication("7", ("x",), "e", None)
    with pytest.raises(ValueError, match="'event' missing"):
        decode_publication(b'{"app_id":"7","channels":["x"],"data":null}')


# One script, so Redis runs it atomically: no other publication can come in between.
ALTERNATE = """
for i, payload in ipairs(ARGV) do
  redis.call('SPUBLISH', KEYS[1], payload)
  redis.call('SPUBLISH', KEYS[1], '!marker' .. i)
end
"""


def test_markers_keep_their_place_among_a_streams_publications(redis_url):
    async def scenario():
        arrived: list[str] = []
        bus, _ = await started(redis_url, "t-marker")
        bus.attach(lambda publication, position=None: arrived.append(publication.event))
        bus.on_marker(lambda marker: arrived.append(marker.decode()))
        raw = redis.asyncio.Redis.from_url(redis_url)
        payloads = [encode_publication(Publication("1", ("a",), f"bus{i}", None))
                    for i in range(1, 21)]
        await raw.eval(ALTERNATE, 1, stream_name("t-marker", "1", "a"), *payloads)
        expected = [name for i in range(1, 21) for name in (f"bus{i}", f"marker{i}")]
        await wait_for(lambda: len(arrived) == len(expected), what="all 40 messages")
        await raw.aclose()
        await bus.stop()
        return arrived, expected

    arrived, expected = asyncio.run(scenario())
    assert arrived == expected


def test_a_channel_is_heard_from_its_first_hold_to_its_last_release(redis_url):
    """Holding subscribes the channel's stream (confirmed before ``hears``), releasing the last
    hold unsubscribes it, and what is published meanwhile arrives only while held."""
    async def scenario():
        bus, received = await started(redis_url, "t-hold", hear=())
        raw = redis.asyncio.Redis.from_url(redis_url)
        stream = stream_name("t-hold", "1", "news")

        async def subscribers() -> int:
            return dict(zip(*[iter(await raw.execute_command(
                "PUBSUB", "SHARDNUMSUB", stream))] * 2, strict=True))[stream.encode()]

        before = (bus.hears("1", "news"), await subscribers())
        bus.hold("1", "news")
        bus.hold("1", "news")
        heard = await bus.heard("1", "news")
        held = (bus.hears("1", "news"), await subscribers())
        bus.publish(Publication("1", ("news",), "while-held", None))
        await wait_for(lambda: received, what="the publication while held")
        bus.release("1", "news")
        still = bus.hears("1", "news")
        bus.release("1", "news")
        await wait_for(lambda: not bus.hears("1", "news"), what="the last release")
        deadline = asyncio.get_running_loop().time() + 10
        while await subscribers():
            assert asyncio.get_running_loop().time() < deadline, "still subscribed"
            await asyncio.sleep(0.01)
        bus.publish(Publication("1", ("news",), "after-release", None))
        bus.publish(Publication("1", ("a",), "elsewhere", None))  # heard by nobody
        bus.hold("1", "a")
        await bus.heard("1", "a")
        bus.publish(Publication("1", ("a",), "marker", None))
        await wait_for(lambda: len(received) == 2, what="the marker")
        await raw.aclose()
        await bus.stop()
        return before, heard, held, still, [p.event for p in received]

    before, heard, held, still, events = asyncio.run(scenario())
    assert before == (False, 0)
    assert heard is LISTENING
    assert held == (True, 1)
    assert still is True
    assert events == ["while-held", "marker"]


def test_cache_channels_last_event_is_kept_in_redis_with_a_ttl(redis_url):
    async def scenario():
        bus, received = await started(redis_url, "t-cache", hear=(
            "cache-news", "news", "private-cache-x", "presence-cache-room"))
        raw = redis.asyncio.Redis.from_url(redis_url)
        await raw.flushdb()
        bus.publish(Publication("1", ("cache-news", "news", "private-cache-x"), "e", '{"a":1}'))
        bus.publish(Publication("1", ("presence-cache-room",), "client-e", "{}", "1.1", "u1"))
        bus.publish(Publication("1", ("cache-gone",), "", None, user_id="u1",
                                kind=TERMINATE_USER))
        # the first once per channel, the others once
        await wait_for(lambda: len(received) == 5, what="the three publications")
        keys = {key.decode(): (await raw.get(key), await raw.pttl(key))
                for key in await raw.keys("*")}
        await raw.aclose()
        await bus.stop()
        return keys

    keys = asyncio.run(scenario())
    assert sorted(keys) == sorted([cache_key("1", "cache-news"), cache_key("1", "private-cache-x"),
                                   cache_key("1", "presence-cache-room")])
    assert cache_key("1", "cache-news") == "resound:{1:cache-news}:cache"
    assert keys[cache_key("1", "cache-news")][0] == \
        encode_message("e", '{"a":1}', channel="cache-news")
    assert keys[cache_key("1", "presence-cache-room")][0] == \
        encode_message("client-e", "{}", channel="presence-cache-room", user_id="u1")
    for _, ttl in keys.values():
        assert 0 < ttl <= CACHE_TTL_MS == 1_800_000


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

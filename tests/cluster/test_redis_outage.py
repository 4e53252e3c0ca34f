"""The Redis bus through outages of a real redis-server (stopped, or frozen with SIGSTOP, then
back on the same port): ``unavailable()`` gives a reason from the outage until the bus has
resubscribed, and what was published meanwhile arrives once, in order, on every node."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time

import redis

from broadcaster.cluster import redis_bus
from broadcaster.cluster.redis_bus import stream_name
from broadcaster.protocol.publication import Publication
from tests.api.redis_server import redis_server
from tests.api.wire import post_json
from tests.cluster.buses import started, wait_for
from tests.pusher_socket import PusherSocket
from tests.servers import free_port, start_broadcaster

BACK = 15.0  # seconds allowed for reconnecting, resubscribing and settling after an outage


def numbered(prefix: str, count: int) -> list[Publication]:
    return [Publication("1", ("orders",), f"{prefix}{i}", str(i)) for i in range(count)]


async def settled_marker(bus: redis_bus.RedisBus, *lists: list[Publication]) -> Publication:
    """Publish a marker on ``bus`` and wait until every list got it: whatever was published
    before it has arrived by then, so a duplicate or a straggler would show."""
    marker = Publication("1", ("orders",), "marker", None)
    bus.publish(marker)
    await wait_for(lambda: all(marker in received for received in lists), what="the marker")
    return marker


def test_unavailable_until_resubscribed_then_a_publication_reaches_every_node():
    port = free_port()

    async def scenario():
        with redis_server(port) as url:
            sender, sender_got = await started(url, "t-outage")
            receiver, receiver_got = await started(url, "t-outage", hear=("orders", "news"))
            to_receiver: list[bytes] = []
            receiver.on_marker(to_receiver.append)
            available_before = sender.unavailable()
        await wait_for(lambda: sender.unavailable() and receiver.unavailable(),
                       what="both buses noticing the outage")
        reason = sender.unavailable()
        with redis_server(port) as url:
            raw = redis.asyncio.Redis.from_url(url)
            await wait_for(lambda: sender.unavailable() is None, BACK, "the sender's return")
            # Right then: the sender is subscribed again on every stream it holds.
            subscribed = await shard_subscribers(raw, stream_name("t-outage", "1", "orders"),
                                                 stream_name("t-outage", "1", "news"))
            right_after = Publication("1", ("orders",), "right-after", None)
            sender.publish(right_after)
            await wait_for(lambda: right_after in receiver_got, what="the receiver getting it")
            await raw.execute_command("SPUBLISH", stream_name("t-outage", "1", "news"), b"!to b")
            await wait_for(lambda: to_receiver, what="a marker on a stream only b holds")
            await raw.aclose()
            await sender.stop()
            await receiver.stop()
        return available_before, reason, subscribed, sender, receiver_got, to_receiver

    available_before, reason, subscribed, sender, receiver_got, to_receiver = \
        asyncio.run(scenario())
    assert available_before is None
    assert reason.startswith(f"Redis at redis://127.0.0.1:{port}/0 is unreachable")
    assert subscribed == [2, 1]  # orders: both buses; news: the receiver only
    assert [publication.event for publication in receiver_got] == ["right-after"]
    assert to_receiver == [b"to b"]
    assert sender.reconnects == 1
    assert sender.dropped == 0


def test_a_peer_resubscribing_one_retry_later_still_gets_the_first_publication():
    port = free_port()
    first = Publication("1", ("orders",), "first", None)

    async def publish_when_available(bus: redis_bus.RedisBus) -> None:
        await wait_for(lambda: bus.unavailable() is None, BACK, "the sender's return")
        bus.publish(first)

    async def scenario():
        with redis_server(port) as url:
            sender, _ = await started(url, "t-late")
        await wait_for(lambda: sender.unavailable(), what="the sender noticing the outage")
        with redis_server(port) as url:
            publishing = asyncio.create_task(publish_when_available(sender))
            raw = redis.asyncio.Redis.from_url(url)
            await wait_for_subscriber(raw, stream_name("t-late", "1", "orders"))
            # A peer whose reconnect attempt comes one retry period after the sender's.
            await asyncio.sleep(redis_bus.RETRY_DELAY)
            late = raw.pubsub()
            await late.ssubscribe(stream_name("t-late", "1", "orders"))
            await publishing
            message = None
            deadline = asyncio.get_running_loop().time() + BACK
            while message is None:  # None for the subscription's confirmation too
                assert asyncio.get_running_loop().time() < deadline, "the late peer got nothing"
                message = await late.get_message(ignore_subscribe_messages=True, timeout=1.0)
            await late.aclose()
            await raw.aclose()
            await sender.stop()
        return message

    message = asyncio.run(scenario())
    assert redis_bus.decode_publication(message["data"]) == first


async def shard_subscribers(raw: redis.asyncio.Redis, *streams: str) -> list[int]:
    """How many connections hear each of ``streams`` (sharded pub/sub)."""
    reply = await raw.execute_command("PUBSUB", "SHARDNUMSUB", *streams)
    return [int(count) for count in reply[1::2]]


async def wait_for_subscriber(raw: redis.asyncio.Redis, channel: str) -> None:
    deadline = asyncio.get_running_loop().time() + BACK
    while (await shard_subscribers(raw, channel)) == [0]:
        assert asyncio.get_running_loop().time() < deadline, f"nobody subscribed to {channel}"
        await asyncio.sleep(0.01)


def test_publications_made_during_an_outage_arrive_once_in_order():
    port = free_port()

    async def scenario():
        with redis_server(port) as url:
            sender, sender_got = await started(url, "t-queued")
            receiver, receiver_got = await started(url, "t-queued")
        # Published at once: the writer may still try the dead connection, then keeps them.
        sent = numbered("early", 20)
        for publication in sent:
            sender.publish(publication)
        await wait_for(lambda: sender.unavailable(), what="the sender noticing the outage")
        sent += numbered("late", 20)
        for publication in sent[20:]:
            sender.publish(publication)
        with redis_server(port):
            marker = await settled_marker(sender, sender_got, receiver_got)
            await sender.stop()
            await receiver.stop()
        return sent, marker, sender, sender_got, receiver_got

    sent, marker, sender, sender_got, receiver_got = asyncio.run(scenario())
    assert receiver_got == [*sent, marker]
    assert sender_got == [*sent, marker]
    assert sender.dropped == 0


def test_past_the_bound_publications_are_dropped_counted_and_logged(monkeypatch, caplog):
    monkeypatch.setattr(redis_bus, "MAX_PENDING", 10)
    port = free_port()

    async def scenario():
        with redis_server(port) as url:
            sender, _ = await started(url, "t-bound")
            receiver, receiver_got = await started(url, "t-bound")
        await wait_for(lambda: sender.unavailable(), what="the sender noticing the outage")
        sent = numbered("e", 15)
        for publication in sent:
            sender.publish(publication)
        with redis_server(port):
            await wait_for(lambda: len(receiver_got) == 10, BACK, "the ten kept publications")
            await sender.stop()  # whatever it still sent reaches Redis before the marker
            marker = await settled_marker(receiver, receiver_got)
            await receiver.stop()
        return sent, marker, sender, receiver_got

    with caplog.at_level(logging.WARNING, "broadcaster.cluster.redis_bus"):
        sent, marker, sender, receiver_got = asyncio.run(scenario())
    assert receiver_got == [*sent[:10], marker]
    assert sender.dropped == 5
    messages = [record.getMessage() for record in caplog.records]
    # One line for the whole run of drops, not one per publication.
    assert [message for message in messages if message.startswith("dropping publications")] \
        == [f"dropping publications: 10 are already waiting for Redis at "
            f"redis://127.0.0.1:{port}/0"]


def test_a_frozen_redis_is_noticed_by_the_ping_and_nothing_is_lost():
    port = free_port()

    async def scenario():
        with redis_server(port) as url:
            pid = redis.Redis.from_url(url).info("server")["process_id"]
            sender, sender_got = await started(url, "t-frozen")
            receiver, receiver_got = await started(url, "t-frozen")
            os.kill(pid, signal.SIGSTOP)  # no error, no EOF: only an unanswered PING tells
            try:
                await wait_for(lambda: sender.unavailable() and receiver.unavailable(),
                               what="both buses noticing the frozen Redis")
                sent = numbered("e", 10)
                for publication in sent:
                    sender.publish(publication)
            finally:
                os.kill(pid, signal.SIGCONT)
            marker = await settled_marker(sender, sender_got, receiver_got)
            await sender.stop()
            await receiver.stop()
        return sent, marker, sender_got, receiver_got

    sent, marker, sender_got, receiver_got = asyncio.run(scenario())
    assert receiver_got == [*sent, marker]
    assert sender_got == [*sent, marker]


def test_a_bus_that_falls_behind_refuses_before_it_would_drop():
    """A Redis too slow for the publications (frozen here, before the PING can tell): from nine
    tenths of the bound the bus is unavailable (the API's 503), so what the API accepted is
    never dropped; once Redis catches up, every publication arrives and it is available again
    (it answered None while falling behind, before)."""
    port = free_port()

    async def scenario():
        with redis_server(port) as url:
            pid = redis.Redis.from_url(url).info("server")["process_id"]
            sender, sender_got = await started(url, "t-behind")
            os.kill(pid, signal.SIGSTOP)
            try:
                sent = numbered("e", redis_bus.MAX_PENDING * 9 // 10 + redis_bus.MAX_PIPELINE)
                for publication in sent:
                    sender.publish(publication)
                behind = sender.unavailable()
            finally:
                os.kill(pid, signal.SIGCONT)
            await wait_for(lambda: len(sender_got) >= len(sent), BACK, "every publication")
            await wait_for(lambda: sender.unavailable() is None, BACK, "the bus caught up")
            await sender.stop()
        return behind, sent, sender_got, sender

    behind, sent, sender_got, sender = asyncio.run(scenario())
    assert behind is not None and "is behind" in behind
    assert sender_got[:len(sent)] == sent
    assert sender.dropped == 0


def trigger_until_accepted(node, event: str) -> None:
    """POST the event as the webapp's outbox does: again after a 503, until accepted."""
    deadline = time.monotonic() + BACK
    while True:
        status, answer = post_json(node, f"/apps/{node.app_id}/events",
                                   {"name": event, "channels": ["orders"], "data": "{}"})
        if status == 200:
            return
        assert status == 503 and time.monotonic() < deadline, (status, answer)
        time.sleep(0.1)


def test_events_triggered_through_an_outage_reach_the_other_node_once_in_order():
    port = free_port()
    nodes, socket = [], None
    try:
        with redis_server(port) as url:
            env = {"REVERB_SCALING_ENABLED": "true", "REDIS_URL": url}
            nodes = [start_broadcaster(env), start_broadcaster(env)]
            socket = PusherSocket.to(nodes[1])
            socket.joined("orders")
            trigger_until_accepted(nodes[0], "before")
            assert socket.next_event()["event"] == "before"
        time.sleep(0.2)  # let the nodes see Redis go, as a caller during an outage would
        events = [f"during{i}" for i in range(5)]
        accepted = []
        for event in events:
            status, _ = post_json(nodes[0], f"/apps/{nodes[0].app_id}/events",
                                  {"name": event, "channels": ["orders"], "data": "{}"})
            assert status in (200, 503)
            if status == 200:
                accepted.append(event)
        with redis_server(port):
            for event in events:
                if event not in accepted:
                    trigger_until_accepted(nodes[0], event)
            trigger_until_accepted(nodes[0], "marker")
            got: list[str] = []
            while not got or got[-1] != "marker":
                message = socket.next_event(BACK)
                assert message is not None, f"only {got} reached the other node"
                got.append(message["event"])
        assert got == [*events, "marker"]
    finally:
        if socket is not None:
            socket.close()
        for node in nodes:
            node.stop()

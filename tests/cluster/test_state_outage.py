"""Presence joins across a Redis restart (empty): refused while the node's bus is away or
resubscribing, and, once it is back, made only after the node has registered again."""

import asyncio
import logging

import redis

from broadcaster.cluster.redis_state import RedisState
from broadcaster.config import AppConfig
from broadcaster.protocol.requests import Joined, Unavailable
from broadcaster.protocol.state import AppState
from tests.api.redis_server import redis_server
from tests.broadcaster.recording import RecordingClient
from tests.cluster.buses import started, wait_for
from tests.cluster.test_state_contract import APP, join, settles
from tests.servers import free_port

BACK = 15.0  # seconds allowed for reconnecting, resubscribing and settling


def test_joins_wait_for_the_bus_and_for_the_node_to_register_again():
    port = free_port()

    async def scenario():
        with redis_server(port) as url:
            bus, _ = await started(url, "t-state-outage")
            # No heartbeat during the test: only the join itself may re-register the node.
            state = RedisState(url, "n1", bus, heartbeat_interval=600, node_ttl=1200)
            state.attach({APP: AppState(AppConfig(id=APP, key="k", secret="s"))}, bus.publish)
            await state.start()
        await wait_for(lambda: bus.unavailable(), BACK, "the bus noticing the outage")
        with redis_server(port) as url:
            raw = redis.asyncio.Redis.from_url(url)
            await raw.ping()  # Redis is back, empty; the bus has not resubscribed yet
            while_away = await state.join_presence(join("1.1", "ann", "presence-a"))
            await wait_for(lambda: bus.unavailable() is None, BACK, "the bus's return")
            after = await state.join_presence(join("1.2", "bob", "presence-b"))
            registered = await raw.zscore("resound:nodes", state.incarnation)
            await raw.aclose()
            await state.stop()
            await bus.stop()
        return while_away, after, registered

    while_away, after, registered = asyncio.run(scenario())
    assert isinstance(while_away, Unavailable) and "Redis" in while_away.reason
    assert isinstance(after, Joined) and after.first
    assert registered is not None and registered > 0, "joined before the node registered"


def test_an_outage_is_logged_once_and_its_end_once_redis_has_answered(caplog):
    """The heartbeat fails while the count flush has nothing to write: that flush must not
    pass for Redis being back (it said "reachable again" once or twice a second)."""
    caplog.set_level(logging.DEBUG, logger="broadcaster.cluster.redis_state")
    port = free_port()

    def said(text: str) -> int:
        return sum(text in record.getMessage() for record in caplog.records
                   if record.name == "broadcaster.cluster.redis_state")

    async def scenario():
        with redis_server(port) as url:
            bus, _ = await started(url, "t-state-health")
            state = RedisState(url, "n1", bus, heartbeat_interval=0.1, node_ttl=5,
                               reap_interval=0.2, flush_interval=0.05)
            state.attach({APP: AppState(AppConfig(id=APP, key="k", secret="s"))}, bus.publish)
            await state.start()
        await wait_for(lambda: said("heartbeat failed") >= 5 or said("reachable again") > 1,
                       BACK, "five failed heartbeats")
        with redis_server(port) as url:
            raw = redis.asyncio.Redis.from_url(url)
            await wait_for(lambda: said("reachable again"), BACK, "Redis said to be back")
            for _ in range(3):  # every loop runs again, several times, with Redis up
                expiry = await raw.zscore("resound:nodes", state.incarnation)
                while await raw.zscore("resound:nodes", state.incarnation) == expiry:
                    await asyncio.sleep(0.02)
            await raw.aclose()
            await state.stop()
            await bus.stop()

    asyncio.run(scenario())
    assert said("reachable again") == 1
    [down] = [record.getMessage() for record in caplog.records
              if "is unreachable" in record.getMessage()]
    # in words: no redis-py tuple repr of the address
    assert down == (f"Redis at redis://127.0.0.1:{port}/0 is unreachable: cannot connect to "
                    f"127.0.0.1:{port}: Connection refused; presence and counts need it")


def test_counts_that_changed_while_redis_refused_writes_are_written_once_it_takes_them(caplog):
    caplog.set_level(logging.DEBUG, logger="broadcaster.cluster.redis_state")

    def flushes_failed() -> int:
        return sum("flush_counts failed" in record.getMessage() for record in caplog.records)

    async def scenario():
        with redis_server() as url:
            raw = redis.asyncio.Redis.from_url(url)
            bus, _ = await started(url, "t-state-refusing")
            app = AppState(AppConfig(id=APP, key="k", secret="s"))
            state = RedisState(url, "n1", bus, heartbeat_interval=600, node_ttl=1200,
                               reap_interval=600, flush_interval=0.05)
            state.attach({APP: app}, bus.publish)
            await state.start()
            # Redis refuses every write (NOREPLICAS) but keeps its data: the flush fails
            await raw.config_set("min-replicas-to-write", 1)
            try:
                client = RecordingClient("1.1")
                app.add_connection(client)
                app.open_channel("news").subscribe(client)
                await wait_for(lambda: flushes_failed() >= 1, BACK, "a flush failing")
            finally:
                await raw.config_set("min-replicas-to-write", 0)
            # what the other nodes read: the node's hash of counts in Redis
            await settles(lambda: raw.hgetall(f"resound:{{{APP}}}:node:{state.incarnation}"),
                          {b"s:news": b"1", b"connections": b"1"},
                          "the counts written once Redis takes writes again")
            await raw.aclose()
            await state.stop()
            await bus.stop()

    asyncio.run(scenario())

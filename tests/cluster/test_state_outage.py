"""Presence joins across a Redis restart (empty): refused while the node's bus is away or
resubscribing, and, once it is back, made only after the node has registered again."""

import asyncio

import redis

from broadcaster.cluster.redis_state import RedisState
from broadcaster.config import AppConfig
from broadcaster.protocol.requests import Joined, Unavailable
from broadcaster.protocol.state import AppState
from tests.api.redis_server import redis_server
from tests.cluster.buses import started, wait_for
from tests.cluster.test_state_contract import APP, join
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

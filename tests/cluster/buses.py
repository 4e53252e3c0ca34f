"""Redis buses for the tests, inside one event loop: each is a separate node of the cluster."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from broadcaster.cluster.redis_bus import RedisBus
from broadcaster.protocol.publication import Publication


async def wait_for(condition: Callable[[], object], timeout: float = 10.0,
                   what: str = "the condition") -> None:
    """Poll ``condition`` on the running loop until true; fail naming ``what`` after ``timeout``."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, \
            f"{what} never happened within {timeout} s"
        await asyncio.sleep(0.01)


async def started(url: str, channel: str,
                  node_id: str | None = None) -> tuple[RedisBus, list[Publication]]:
    """A started bus on ``channel`` and the list its deliveries land in."""
    received: list[Publication] = []
    bus = RedisBus(url, channel, node_id)
    bus.attach(received.append)
    await bus.start()
    return bus, received

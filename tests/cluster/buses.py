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


def into(received: list[Publication]) -> Callable[..., None]:
    """A bus's ``deliver`` that collects what it delivers (a position, if any, left out)."""
    return lambda publication, position=None: received.append(publication)


async def started(url: str, channel: str, hear: tuple[str, ...] = ("a", "b", "orders"),
                  app_id: str = "1") -> tuple[RedisBus, list[Publication]]:
    """A started bus on ``channel`` that hears app ``app_id``'s channels ``hear`` (and its own
    stream), and the list its deliveries land in."""
    received: list[Publication] = []
    bus = RedisBus(url, channel)
    bus.routes(app_id)
    for name in hear:
        bus.hold(app_id, name)
    bus.attach(into(received))
    await bus.start()
    return bus, received

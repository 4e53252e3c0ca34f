"""The bus's pub/sub connections: one to the one Redis (single or Sentinel), or one per Redis
Cluster master, routed by each stream's slot.

:class:`Shards` opens a connection the first time a stream routed to it is subscribed, sends
``SSUBSCRIBE``/``SUNSUBSCRIBE`` grouped as Redis takes them (on a cluster, one command names
streams of one slot), and runs one reader per connection. A reader hands every message to the
bus, in arrival order, and tells the bus once when its connection breaks: an error, or no word
from Redis (a PONG included) within :data:`DEAD_AFTER`. What the messages mean (confirmations,
publications, a slot that moved) is the bus's business (:mod:`.redis_bus`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import Redis, RedisCluster
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from shared.redis_modes import RedisTarget

from .base import cancelled

MAX_SUBSCRIBE = 1_000  # streams named in one SSUBSCRIBE / SUNSUBSCRIBE
HEALTH_INTERVAL = 0.5  # seconds of silence on a subscription before its reader PINGs
DEAD_AFTER = 3.0  # seconds without a word from Redis (PONG included): the subscription is dead
CONNECT_TIMEOUT = 5.0
COMMAND_TIMEOUT = 5.0  # seconds a frozen Redis may keep a command unanswered: then it failed
Failure = (RedisError, OSError, TimeoutError)

Handle = Callable[[dict[str, Any]], Awaitable[None] | None]  # what the reader awaits, if any


class Shard:
    """One pub/sub connection (to the one Redis, or to one cluster master) and its reader."""

    __slots__ = ("client", "pubsub", "reader", "names")

    def __init__(self, client: Redis, pubsub: PubSub) -> None:
        self.client = client  # the connection's own client (a cluster master's), or the bus's
        self.pubsub = pubsub
        self.reader: asyncio.Task[None] | None = None
        self.names: set[bytes] = set()  # streams subscribed through this connection


class Shards:
    """The pub/sub connections of a bus whose client is ``redis`` (for ``target``): each
    message goes to ``handle``, a broken connection to ``lost`` (from its reader)."""

    def __init__(self, target: RedisTarget, redis: Redis | RedisCluster, handle: Handle,
                 lost: Callable[[BaseException], None]) -> None:
        self.target = target
        self.redis = redis
        self.handle = handle
        self.lost = lost
        self.by_address: dict[str, Shard] = {}

    def group(self, names: list[bytes], existing: bool = False) -> list[tuple[Shard, list[bytes]]]:
        """``names`` grouped by the connection they go through (on a cluster, by slot too:
        one SSUBSCRIBE names streams of one slot); with ``existing``, only those subscribed."""
        groups: dict[tuple[str, int], tuple[Shard, list[bytes]]] = {}
        for name in names:
            address, slot = self._owner(name)
            shard = self.by_address.get(address)
            if existing and (shard is None or name not in shard.names):
                continue
            if shard is None:
                shard = self._open(address)
            groups.setdefault((address, slot), (shard, []))[1].append(name)
        return list(groups.values())

    async def subscribe(self, shard: Shard, names: list[bytes]) -> None:
        shard.names.update(names)
        await self._command(shard.pubsub.ssubscribe, shard, names)

    async def unsubscribe(self, shard: Shard, names: list[bytes]) -> None:
        shard.names.difference_update(names)
        await self._command(shard.pubsub.sunsubscribe, shard, names)

    async def close(self) -> None:
        """Stop every reader and close every connection; the next command opens new ones."""
        shards, self.by_address = self.by_address, {}
        for shard in shards.values():
            if shard.reader is not None:
                await cancelled((shard.reader,))
            with contextlib.suppress(*Failure):
                await shard.pubsub.aclose()
            if shard.client is not self.redis:
                with contextlib.suppress(*Failure):
                    await shard.client.aclose()

    def _owner(self, name: bytes) -> tuple[str, int]:
        """The address of the server that carries stream ``name``, and its slot (0 off a
        cluster, where every name may share one command)."""
        if isinstance(self.redis, RedisCluster):
            node = self.redis.get_node_from_key(name)
            return node.name, self.redis.keyslot(name)
        return "", 0

    def _open(self, address: str) -> Shard:
        """A pub/sub connection to ``address`` (a cluster master); its reader starts with its
        first command."""
        if isinstance(self.redis, RedisCluster):
            node = self.redis.get_node(node_name=address)
            target = self.target
            client = Redis(host=node.host, port=node.port, username=target.username,
                           password=target.password, ssl=target.tls,
                           socket_connect_timeout=CONNECT_TIMEOUT, socket_timeout=COMMAND_TIMEOUT,
                           retry=Retry(NoBackoff(), 0))
        else:
            client = self.redis
        shard = self.by_address[address] = Shard(client, client.pubsub())
        return shard

    async def _command(self, method: Callable[..., Awaitable[Any]], shard: Shard,
                       names: list[bytes]) -> None:
        for start in range(0, len(names), MAX_SUBSCRIBE):
            await method(*names[start:start + MAX_SUBSCRIBE])
        if shard.reader is None:
            shard.reader = asyncio.create_task(self._read(shard))

    async def _read(self, shard: Shard) -> None:
        """Handle ``shard``'s messages until it fails; then tell the bus."""
        try:
            await self._listen(shard.pubsub)
        except Failure as exc:
            self.lost(exc)

    async def _listen(self, pubsub: PubSub) -> None:
        """Handle messages until the connection fails or Redis stops answering PING."""
        loop = asyncio.get_running_loop()
        heard = loop.time()
        while True:
            message = await pubsub.get_message(timeout=HEALTH_INTERVAL)
            if message is not None:
                heard = loop.time()
                waiting = self.handle(message)
                if waiting is not None:
                    await waiting
            elif loop.time() - heard > DEAD_AFTER:
                # This process may have been paused (SIGSTOP): Redis's answer may be waiting
                # unread behind the timer that just fired. Only silence on the socket is death.
                late = await pubsub.get_message(timeout=0)
                if late is None:
                    raise RedisConnectionError(f"no answer to PING for {DEAD_AFTER} s")
                heard = loop.time()
                waiting = self.handle(late)
                if waiting is not None:
                    await waiting
            elif pubsub.subscribed:
                await pubsub.ping()
            else:
                heard = loop.time()  # nothing subscribed here now: nothing to lose

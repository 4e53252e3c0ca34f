"""Webhooks on Redis: decided once per cluster, queued in a Redis list, sent by any node.

Occupancy: a set per channel of the node ids holding subscribers; ``lua/occupancy.lua`` answers
"first node" / "last node", run only when a channel appears or disappears on a node. Each node
also lists its channels, so that once it is dead (none of its incarnations is registered), any
node's sweep closes them for it: the channel is vacated if that node was the last. A node also
keeps its channels in memory and puts them back when Redis lost them (restarted empty).
A delayed ending is a key with a token (``hold``); the beginning that cancels it deletes the
key (``resume``); ``lua/release.lua`` sends it unless a newer ending holds the key and only if
the channel is still empty (the user still gone). Decided events go on one list; a sender pops
with BLMOVE onto its node's processing list (the lease) and removes them there when delivered.
What a dead node had leased is queued again (sent at least once: a receiver may see it twice;
``time_ms`` tells).

Every step may be tried again after a failure (the base class retries them), so each answers the
same when it ran already. The client's pool is sized on purpose: the node's one decision task,
its sender's one pop and up to ``SENDERS`` acknowledgements use a connection at once, never
more; redis-py's own retries are off, the queue's own cover Redis being away for minutes.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from importlib.resources import files

from redis.asyncio import Redis, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from shared.redis_modes import async_client, parse_redis_url

from ..config import redacted
from ..protocol.subscription_count import THROTTLE_ABOVE, THROTTLE_SECONDS
from .base import WebhookEvent, WebhookQueue, decode_event, encode_event

HOLD_TTL = 60_000  # ms a wait's key lives if its node dies before releasing it
COUNT_TTL = 600_000  # ms a channel's last sent subscription count is remembered
POP_WAIT = 1.0  # seconds one BLMOVE blocks
RECLAIM_INTERVAL = 10.0  # seconds between looks for dead nodes' leased webhooks
CONNECTIONS = 16  # the pool: 1 decision task + 1 pop + 8 senders' acknowledgements, and spare
TIMEOUT = 5.0  # seconds to connect, or for an answer (more than POP_WAIT)
RESTORE_BATCH = 1000  # channels put back per pipeline after Redis lost them
logger = logging.getLogger(__name__)


class RedisWebhookQueue(WebhookQueue):
    """Webhooks decided and queued in the Redis at ``url``, for node ``node_id``; the cluster
    state's keys come from the factory (the two packages do not import each other)."""

    failures = (RedisError, OSError, TimeoutError)

    def __init__(self, url: str, node_id: str, *, nodes_key: str,
                 members_key: Callable[[str, str], str], prefix: str = "resound",
                 connections: int = CONNECTIONS, **options: float) -> None:
        super().__init__(**options)
        self.url, self.node_id, self.prefix = url, node_id, prefix
        self.nodes_key = nodes_key  # the cluster state's registry of live node incarnations
        self.members_key = members_key  # (app id, channel) -> its presence roster's key
        self.connections = connections
        self.outage.store = f"Redis at {redacted(url)}"
        self._redis: Redis | RedisCluster | None = None
        self._held: set[tuple[str, str]] = set()  # (app, channel) this node is in the set of
        self._reclaimed_at = time.monotonic()

    async def start(self) -> None:
        self._redis = async_client(
            parse_redis_url(self.url), max_connections=self.connections,
            socket_connect_timeout=TIMEOUT, socket_timeout=TIMEOUT, retry=Retry(NoBackoff(), 0))
        folder = files(__package__).joinpath("lua")
        self._occupancy = self._redis.register_script(
            folder.joinpath("occupancy.lua").read_text())
        self._release = self._redis.register_script(folder.joinpath("release.lua").read_text())
        self._count = self._redis.register_script(folder.joinpath("count.lua").read_text())
        await self._give_back(self._leased)  # leased by an earlier process with this node id
        if not isinstance(self._redis, RedisCluster):  # where the list was before its hash tag
            await self._give_back(f"{self.prefix}:webhooks")

    async def stop(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None

    @property
    def _list(self) -> str:
        """The webhooks ready to send; its hash tag puts it and every node's leased list in
        one Redis Cluster slot, as LMOVE between them needs."""
        return f"{self.prefix}:{{webhooks}}"

    @property
    def _leased(self) -> str:
        return f"{self._list}:leased:{self.node_id}"

    def _nodes_key(self, app_id: str, channel: str) -> str:
        return f"{self.prefix}:{{{app_id}:{channel}}}:nodes"

    def _registry(self, node_id: str) -> str:
        """The channels ``node_id`` holds subscribers of ("app\0channel"), for the sweep."""
        return f"{self.prefix}:webhooks:node:{node_id}:channels"

    async def occupancy(self, app_id: str, channel: str, opened: bool,
                        node_id: str | None = None) -> bool:
        node_id = node_id or self.node_id
        decided = await self._occupancy(keys=[self._nodes_key(app_id, channel)],
                                        args=[node_id, "1" if opened else "0"])
        registry, entry = self._registry(node_id), f"{app_id}\0{channel}"
        await (self._redis.sadd(registry, entry) if opened else self._redis.srem(registry, entry))
        if node_id == self.node_id:
            (self._held.add if opened else self._held.discard)((app_id, channel))
        return bool(decided)

    async def maintain(self) -> None:
        await self._restore()
        if time.monotonic() - self._reclaimed_at > RECLAIM_INTERVAL:
            await self._reclaim()
            self._reclaimed_at = time.monotonic()

    async def _restore(self) -> None:
        """Put this node back in the occupancy of its channels, if Redis lost it (restarted
        empty, or another node's sweep took this node for dead)."""
        registry = self._registry(self.node_id)
        if not self._held or await self._redis.scard(registry) >= len(self._held):
            return
        logger.warning("Redis at %s lost which channels this node holds (restarted empty?): "
                       "putting back %d", redacted(self.url), len(self._held))
        held = list(self._held)
        for start in range(0, len(held), RESTORE_BATCH):
            batch = held[start:start + RESTORE_BATCH]
            async with self._redis.pipeline(transaction=False) as pipe:
                for app_id, channel in batch:
                    pipe.sadd(self._nodes_key(app_id, channel), self.node_id)
                pipe.sadd(registry, *(f"{app_id}\0{channel}" for app_id, channel in batch))
                await pipe.execute()

    async def count_due(self, event: WebhookEvent, now_ms: int) -> float | None:
        key = f"{self.prefix}:{{{event.app_id}:{event.channel}}}:webhook-count"
        wait = await self._count(keys=[key], args=[
            event.subscription_count, event.time_ms, now_ms, THROTTLE_ABOVE,
            int(THROTTLE_SECONDS * 1000), COUNT_TTL])
        return None if wait < 0 else wait / 1000

    def _hold_key(self, key: str) -> str:
        return f"{self.prefix}:{key}:webhook-hold"  # in the channel's hash slot

    async def hold(self, key: str) -> str:
        token = uuid.uuid4().hex
        await self._redis.set(self._hold_key(key), token, px=HOLD_TTL)
        return token

    async def resume(self, key: str) -> bool:
        return bool(await self._redis.delete(self._hold_key(key)))

    async def release(self, event: WebhookEvent, token: str) -> bool:
        if event.user_id is None:
            holds = self._nodes_key(event.app_id, event.channel)
        else:
            holds = self.members_key(event.app_id, event.channel)
        return bool(await self._release(keys=[self._hold_key(event.window_key), holds],
                                        args=[token, event.user_id or ""]))

    async def push(self, event: WebhookEvent) -> bool:
        if await self._redis.lpush(self._list, encode_event(event)) > self.max_pending:
            await self._redis.lpop(self._list)  # the newest: this one, or one as new
            return False
        return True

    async def _give_back(self, leased: str) -> None:
        moved = 0
        while await self._redis.lmove(leased, self._list, "RIGHT", "RIGHT") is not None:
            moved += 1
        if moved:
            logger.warning("%d webhook events leased by a node that is gone (%s) are queued "
                           "again; a receiver may get them twice", moved, leased)

    async def _reclaim(self) -> None:
        """For nodes that died (no live incarnation): queue again what they had popped but not
        sent, and close their channels (channel_vacated where they were the last node)."""
        live = {node.decode().split("#", 1)[0]
                for node in await self._redis.zrange(self.nodes_key, 0, -1)}
        live.add(self.node_id)  # alive, even when Redis has not yet seen its heartbeat again
        prefix = f"{self._list}:leased:"
        async for key in self._redis.scan_iter(match=f"{prefix}*"):
            if key.decode()[len(prefix):] not in live:
                await self._give_back(key.decode())
        prefix = f"{self.prefix}:webhooks:node:"
        async for key in self._redis.scan_iter(match=f"{prefix}*:channels"):
            node_id = key.decode()[len(prefix):-len(":channels")]
            if node_id not in live:
                await self._close_channels_of(node_id)

    async def _close_channels_of(self, node_id: str) -> None:
        for entry in await self._redis.smembers(self._registry(node_id)):
            app_id, channel = entry.decode().split("\0", 1)
            if await self.occupancy(app_id, channel, False, node_id):
                logger.info("node %s died holding the last subscribers of %s", node_id, channel)
                await self.decided(WebhookEvent(app_id, "channel_vacated", channel,
                                                int(time.time() * 1000)))

    async def pop(self, limit: int, wait: bool = True) -> list[WebhookEvent]:
        raws: list[bytes] = []
        while wait and not raws:
            raw = await self._redis.blmove(self._list, self._leased, POP_WAIT, "RIGHT", "LEFT")
            if raw is not None:
                raws.append(raw)
        while len(raws) < limit:
            raw = await self._redis.lmove(self._list, self._leased, "RIGHT", "LEFT")
            if raw is None:
                break
            raws.append(raw)
        return [decode_event(raw) for raw in raws]

    async def done(self, events: list[WebhookEvent]) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            for event in events:
                pipe.lrem(self._leased, 1, encode_event(event))
            await pipe.execute()

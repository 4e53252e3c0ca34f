"""A Redis pub/sub bus, so several broadcaster processes (or machines) serve one set of apps.

Every process subscribes to one Redis channel and publishes every publication to it; each
process, the publisher included, delivers what arrives to its own sockets. ``publish`` is
called from the event loop and must not wait, so publications queue (bounded) for one writer
task, which pipelines whatever has piled up. One reader task delivers in arrival order.

Outages lose nothing silently. The reader notices a broken subscription (an error, or no
answer to its PING within :data:`DEAD_AFTER`), the writer a failed PUBLISH; from then on
:meth:`RedisBus.unavailable` gives the reason (the API answers 503) until the bus has
resubscribed and settled. Publications made meanwhile (client events, internal ones) wait in
order, unsent ones included, and go out once it has; past :data:`MAX_PENDING` each is dropped,
counted in ``dropped`` and logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from itertools import islice
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from shared.channels import channel_type
from shared.payloads import encode_message

from ..config import redacted
from ..protocol.publication import Publication
from ..protocol.state import CACHE_TTL
from .base import Bus, Deliver
from .codec import decode_publication, encode_publication

__all__ = ["RedisBus", "RedisUnavailable", "cache_key", "decode_publication",
           "encode_publication"]

logger = logging.getLogger(__name__)

MAX_PENDING = 10_000  # publications waiting for Redis; beyond, each is dropped and counted
MAX_PIPELINE = 256  # publications sent to Redis in one round trip
RETRY_DELAY = 0.5  # seconds between attempts to reach Redis after a failure
HEALTH_INTERVAL = 0.5  # seconds of silence on the subscription before the reader PINGs
DEAD_AFTER = 3.0  # seconds without a word from Redis (PONG included): the subscription is dead
SETTLE_DELAY = 2 * RETRY_DELAY  # seconds after resubscribing before publishing again
CONNECT_TIMEOUT = 5.0
COMMAND_TIMEOUT = 5.0  # seconds a frozen Redis may keep a command unanswered: then it failed
STOP_FLUSH_TIMEOUT = 2.0  # seconds stop() gives queued publications to reach Redis
CACHE_TTL_MS = round(CACHE_TTL * 1000)


class RedisUnavailable(Exception):
    """Redis cannot be reached at start-up; the message says where and which settings to check."""


def cache_key(app_id: str, channel: str) -> str:
    """The Redis key holding cache channel ``channel``'s last message (as subscribers get it)."""
    return f"resound:{{{app_id}:{channel}}}:cache"


class RedisBus(Bus):
    """Publications travel through Redis channel ``channel`` at ``url``.

    With ``node_id``, the same subscription also carries the node's own channel
    (:meth:`node_channel`), whose messages go to :meth:`on_node_message`'s handler in order
    with the bus channel's.
    """

    def __init__(self, url: str, channel: str = "reverb", node_id: str | None = None) -> None:
        self.url = url
        self.channel = channel
        self.node_id = node_id
        self.dropped = 0  # publications lost: the queue was full, or the bus stopped first
        self.reconnects = 0  # resubscriptions after losing Redis
        self.published = 0  # publications Redis took
        self._channels = [channel] if node_id is None else [channel, self.node_channel(node_id)]
        self._deliver: Deliver | None = None
        self._on_node: Callable[[bytes], None] | None = None
        self._redis: Redis | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._pending: deque[Publication] = deque()
        self._has_pending = asyncio.Event()
        self._drained = asyncio.Event()
        self._drained.set()
        self._dropping = 0  # publications dropped since the queue was last below its bound
        self._confirmed: set[bytes] = set()  # channels Redis confirmed on this subscription
        self._ready = asyncio.Event()  # subscribed on every channel and settled
        self._lost = False  # the subscription broke since it was last ready
        self._publish_error: str | None = None  # why the last PUBLISH failed, until one works

    def node_channel(self, node_id: str) -> str:
        """The Redis channel that reaches node ``node_id`` only."""
        return f"{self.channel}:node:{node_id}"

    def on_node_message(self, handler: Callable[[bytes], None]) -> None:
        """Call ``handler`` from the reader with each message on this node's own channel."""
        self._on_node = handler

    def attach(self, deliver: Deliver) -> None:
        self._deliver = deliver

    def unavailable(self) -> str | None:
        if self._ready.is_set() and self._publish_error is None:
            return None
        where = redacted(self.url)
        if self._publish_error is not None or len(self._confirmed) < len(self._channels):
            return (f"Redis at {where} is unreachable; events cannot reach the other nodes; "
                    "retry later")
        return f"Redis at {where} is back; this node is resubscribing; retry in a moment"

    async def start(self) -> None:
        """Connect and subscribe; returns once Redis has confirmed the subscription."""
        if self._deliver is None:
            raise RuntimeError("RedisBus.start before attach(): build the server first")
        # No retries inside redis-py: a failure must surface here, at once, to be handled.
        self._redis = Redis.from_url(self.url, socket_connect_timeout=CONNECT_TIMEOUT,
                                     socket_timeout=COMMAND_TIMEOUT, retry=Retry(NoBackoff(), 0))
        where = redacted(self.url)
        pubsub = self._redis.pubsub()
        try:
            await pubsub.subscribe(*self._channels)
            while not self._ready.is_set():
                message = await pubsub.get_message(timeout=CONNECT_TIMEOUT)
                if message is None:
                    raise RedisUnavailable(f"Redis at {where} did not confirm the subscription")
                self._handle(message)
        except (RedisError, OSError) as exc:
            await self._redis.aclose()
            raise RedisUnavailable(
                f"cannot subscribe to Redis at {where}: {exc}; "
                "check REDIS_URL / REDIS_HOST / REDIS_PORT or unset REVERB_SCALING_ENABLED"
            ) from None
        except RedisUnavailable:
            await self._redis.aclose()
            raise
        self._tasks = [asyncio.create_task(self._read(pubsub)), asyncio.create_task(self._write())]
        logger.info("scaling through Redis at %s, channels %s", where, self._channels)

    async def stop(self) -> None:
        """Give queued publications a moment to go out (when subscribed), then disconnect."""
        if self._tasks and self._ready.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._drained.wait(), STOP_FLUSH_TIMEOUT)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self._pending:
            self.dropped += len(self._pending)
            logger.warning("stopped with %d publication(s) not sent to Redis at %s",
                           len(self._pending), redacted(self.url))
            self._pending.clear()
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None

    def publish(self, publication: Publication) -> None:
        """Queue ``publication`` for the writer; never waits, never raises.

        The rule while :meth:`unavailable` gives a reason (the API answers 503 instead of
        calling this, but client events and internal publications still come): publications
        wait in order and go out once the bus has resubscribed. Past MAX_PENDING waiting, each
        is dropped and counted in ``dropped``; one log line starts a run of drops, one ends it.
        """
        if len(self._pending) >= MAX_PENDING:
            self.dropped += 1
            self._dropping += 1
            if self._dropping == 1:
                logger.warning("dropping publications: %d are already waiting for Redis at %s",
                               MAX_PENDING, redacted(self.url))
            return
        if self._dropping:
            logger.warning("dropped %d publication(s) while the queue for Redis was full",
                           self._dropping)
            self._dropping = 0
        self._pending.append(publication)
        self._has_pending.set()
        self._drained.clear()

    async def _write(self) -> None:
        """Send queued publications in order, once subscribed; keep a failed batch to retry."""
        while True:
            await self._has_pending.wait()
            await self._ready.wait()
            batch = list(islice(self._pending, MAX_PIPELINE))
            try:
                await self._send(batch)
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                if self._publish_error is None:
                    logger.warning("PUBLISH to Redis at %s failed: %s; %d publication(s) wait "
                                   "to be sent again", redacted(self.url), exc, len(self._pending))
                self._publish_error = str(exc)
                await asyncio.sleep(RETRY_DELAY)
                continue
            if self._publish_error is not None:
                logger.info("PUBLISH to Redis at %s works again", redacted(self.url))
                self._publish_error = None
            for _ in batch:
                self._pending.popleft()
            self.published += len(batch)
            if not self._pending:
                self._has_pending.clear()
                self._drained.set()

    async def _send(self, batch: list[Publication]) -> None:
        """One pipeline: each publication, after storing its cache channels' last message.

        Raises when the connection fails (the batch is sent again: at least once). A command
        Redis refuses (out of memory, ACL) was not lost in transit: it is logged, not retried.
        """
        assert self._redis is not None
        async with self._redis.pipeline(transaction=False) as pipe:
            for publication in batch:
                if publication.cacheable:
                    for name in publication.channels:
                        if channel_type(name).cached:
                            message = encode_message(publication.event, publication.data,
                                                     channel=name, user_id=publication.user_id)
                            pipe.set(cache_key(publication.app_id, name), message,
                                     px=CACHE_TTL_MS)
                pipe.publish(self.channel, encode_publication(publication))
            refused = [result for result in await pipe.execute(raise_on_error=False)
                       if isinstance(result, RedisError)]
        if refused:
            logger.error("Redis at %s refused %d command(s) of a batch of %d publication(s), "
                         "first: %s", redacted(self.url), len(refused), len(batch), refused[0])

    async def _read(self, pubsub: PubSub) -> None:
        """Handle the subscription's messages; when it breaks, subscribe again until it works."""
        while True:
            try:
                await self._listen(pubsub)
            except (RedisError, OSError) as exc:
                self._subscription_lost(exc)
            await self._close(pubsub)
            pubsub = await self._subscribe_again()

    async def _listen(self, pubsub: PubSub) -> None:
        """Handle messages until the connection fails or Redis stops answering PING."""
        loop = asyncio.get_running_loop()
        heard = loop.time()
        while True:
            message = await pubsub.get_message(timeout=HEALTH_INTERVAL)
            if message is not None:
                heard = loop.time()
                self._handle(message)
            elif loop.time() - heard > DEAD_AFTER:
                # This process may have been paused (SIGSTOP): Redis's answer may be waiting
                # unread behind the timer that just fired. Only silence on the socket is death.
                late = await pubsub.get_message(timeout=0)
                if late is None:
                    raise RedisConnectionError(f"no answer to PING for {DEAD_AFTER} s")
                heard = loop.time()
                self._handle(late)
            else:
                await pubsub.ping()

    def _subscription_lost(self, exc: Exception) -> None:
        if not self._lost:
            logger.warning("lost the subscription to Redis at %s: %s; publications wait (at "
                           "most %d) until it is back", redacted(self.url), exc, MAX_PENDING)
        self._lost = True
        self._ready.clear()
        self._confirmed.clear()

    async def _subscribe_again(self) -> PubSub:
        """A new subscription, sent once Redis accepts a connection; confirmed in _handle."""
        assert self._redis is not None
        while True:
            await asyncio.sleep(RETRY_DELAY)
            pubsub = self._redis.pubsub()
            try:
                await pubsub.subscribe(*self._channels)
            except (RedisError, OSError) as exc:
                logger.debug("Redis at %s still unreachable: %s", redacted(self.url), exc)
                await self._close(pubsub)
                continue
            # Idle pooled connections predate the outage: the writer's first PUBLISH on one
            # would fail and take the bus down again right after it came back.
            await self._redis.connection_pool.disconnect(inuse_connections=False)
            return pubsub

    @staticmethod
    async def _close(pubsub: PubSub) -> None:
        with contextlib.suppress(RedisError, OSError):
            await pubsub.aclose()

    def _handle(self, message: dict[str, Any]) -> None:
        kind, channel = message["type"], message["channel"]
        if kind == "message":
            if channel == self._channels[0].encode():
                self._deliver_payload(message["data"])
            else:
                self._node_payload(message["data"])
        elif kind == "subscribe":
            self._confirmed.add(channel)
            if len(self._confirmed) == len(self._channels):
                self._subscribed()

    def _subscribed(self) -> None:
        """Every channel is confirmed: ready now at start-up; after an outage, once settled.

        Every node retries every RETRY_DELAY, so waiting SETTLE_DELAY lets the others
        resubscribe too before this one's publications (queued ones first) go out.
        """
        if not self._lost:
            self._ready.set()
            return
        self.reconnects += 1
        logger.info("resubscribed to Redis at %s; publishing again in %.1f s (%d waiting)",
                    redacted(self.url), SETTLE_DELAY, len(self._pending))
        asyncio.get_running_loop().call_later(SETTLE_DELAY, self._settled, self.reconnects)

    def _settled(self, reconnect: int) -> None:
        if reconnect == self.reconnects and len(self._confirmed) == len(self._channels):
            self._lost = False
            self._ready.set()

    def _node_payload(self, payload: bytes) -> None:
        if self._on_node is None:
            logger.warning("ignored a message on node channel %r: no handler", self._channels[1])
            return
        try:
            self._on_node(payload)
        except Exception:
            logger.exception("handling a message on node channel %r failed", self._channels[1])

    def _deliver_payload(self, payload: bytes) -> None:
        assert self._deliver is not None
        try:
            publication = decode_publication(payload)
        except ValueError as exc:
            logger.warning("ignored a message on Redis channel %r: %s", self.channel, exc)
            return
        try:
            self._deliver(publication)
        except Exception:
            logger.exception("delivering a publication from Redis failed")

"""A Redis pub/sub bus, so several broadcaster processes (or machines) serve one set of apps.

Every process subscribes to one Redis channel and publishes every publication to it; each
process, the publisher included, delivers what arrives to its own sockets. ``publish`` is
called from the event loop and must not wait, so publications queue (bounded) for one writer
task, which pipelines whatever has piled up. One reader task delivers in arrival order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from shared.payloads import JSONDecodeError, dumpb, loads

from ..config import redacted
from ..protocol.publication import EVENT, KINDS, Publication
from .base import Bus, Deliver

logger = logging.getLogger(__name__)

MAX_PENDING = 10_000  # publications queued while Redis is slow or away; beyond, they are dropped
MAX_PIPELINE = 256  # publications sent to Redis in one round trip
RETRY_DELAY = 1.0  # seconds to wait after Redis fails before trying again
CONNECT_TIMEOUT = 5.0


class RedisUnavailable(Exception):
    """Redis cannot be reached at start-up; the message says where and which settings to check."""


def encode_publication(publication: Publication) -> bytes:
    return dumpb({
        "app_id": publication.app_id,
        "channels": publication.channels,
        "event": publication.event,
        "data": publication.data,
        "except_socket_id": publication.except_socket_id,
        "user_id": publication.user_id,
        "kind": publication.kind,
    })


def decode_publication(payload: bytes) -> Publication:
    """The publication in ``payload``; ValueError when it is not one (e.g. a foreign writer)."""
    try:
        fields = loads(payload)
    except JSONDecodeError:
        raise ValueError("not JSON") from None
    if not isinstance(fields, dict):
        raise ValueError("not a JSON object")
    app_id, channels, event = (fields.get(name) for name in ("app_id", "channels", "event"))
    data, except_socket_id, user_id = (fields.get(name) for name in
                                       ("data", "except_socket_id", "user_id"))
    kind = fields.get("kind", EVENT)
    strings_ok = isinstance(app_id, str) and isinstance(event, str)
    optionals_ok = all(isinstance(value, str | None) for value in
                       (data, except_socket_id, user_id))
    channels_ok = isinstance(channels, list) and all(isinstance(c, str) for c in channels)
    if not (strings_ok and optionals_ok and channels_ok) or kind not in KINDS:
        raise ValueError("fields missing or of the wrong type")
    return Publication(app_id, tuple(channels), event, data, except_socket_id, user_id, kind)


class RedisBus(Bus):
    """Publications travel through Redis channel ``channel`` at ``url``."""

    def __init__(self, url: str, channel: str = "reverb") -> None:
        self.url = url
        self.channel = channel
        self._deliver: Deliver | None = None
        self._queue: asyncio.Queue[bytes] = asyncio.Queue(MAX_PENDING)
        self._redis: Redis | None = None
        self._tasks: list[asyncio.Task[None]] = []

    def attach(self, deliver: Deliver) -> None:
        self._deliver = deliver

    async def start(self) -> None:
        """Connect and subscribe; returns once Redis has confirmed the subscription."""
        if self._deliver is None:
            raise RuntimeError("RedisBus.start before attach(): build the server first")
        self._redis = Redis.from_url(self.url, socket_connect_timeout=CONNECT_TIMEOUT)
        pubsub = self._redis.pubsub()
        try:
            await pubsub.subscribe(self.channel)
            confirmation = await pubsub.get_message(timeout=CONNECT_TIMEOUT)
        except (RedisError, OSError) as exc:
            await self._redis.aclose()
            raise RedisUnavailable(
                f"cannot subscribe to Redis at {redacted(self.url)}: {exc}; "
                "check REDIS_URL / REDIS_HOST / REDIS_PORT or unset REVERB_SCALING_ENABLED"
            ) from None
        if confirmation is None or confirmation["type"] != "subscribe":
            await self._redis.aclose()
            where = redacted(self.url)
            raise RedisUnavailable(f"Redis at {where} did not confirm the subscription")
        self._tasks = [asyncio.create_task(self._read(pubsub)), asyncio.create_task(self._write())]
        logger.info("scaling through Redis at %s, channel %r", redacted(self.url), self.channel)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None

    def publish(self, publication: Publication) -> None:
        try:
            self._queue.put_nowait(encode_publication(publication))
        except asyncio.QueueFull:
            logger.warning("dropped a publication: %d are already waiting for Redis at %s",
                           MAX_PENDING, redacted(self.url))

    async def _write(self) -> None:
        assert self._redis is not None
        while True:
            payloads = [await self._queue.get()]
            while not self._queue.empty() and len(payloads) < MAX_PIPELINE:
                payloads.append(self._queue.get_nowait())
            try:
                async with self._redis.pipeline(transaction=False) as pipe:
                    for payload in payloads:
                        pipe.publish(self.channel, payload)
                    await pipe.execute()
            except (RedisError, OSError) as exc:
                logger.warning("lost %d publication(s): Redis at %s failed: %s",
                               len(payloads), redacted(self.url), exc)
                await asyncio.sleep(RETRY_DELAY)

    async def _read(self, pubsub: PubSub) -> None:
        assert self._deliver is not None
        async with pubsub:
            while True:
                try:
                    message = await pubsub.get_message(ignore_subscribe_messages=True,
                                                       timeout=None)
                except (RedisError, OSError) as exc:
                    logger.warning("Redis at %s failed: %s; resubscribing", redacted(self.url), exc)
                    await asyncio.sleep(RETRY_DELAY)
                    continue
                if message is None or message.get("type") != "message":
                    continue
                self._deliver_payload(message["data"])

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

"""A Redis bus with interest routing: a node hears only the channels its own sockets are on.

Each channel has a Redis pub/sub channel of its own, its *stream* (:func:`stream_name`, under
the channel's ``{app:channel}`` hash tag, as its keys), used with sharded pub/sub
(``SPUBLISH``/``SSUBSCRIBE``, Redis 7): on Redis Cluster a publication travels only through the
shard that owns its channel, and on one Redis it reaches only the nodes that hear it. A node
subscribes a channel's stream while the channel has a local subscriber (:class:`AppRoutes`, told
by ``AppState`` when a channel opens and closes here), and always hears each app's own stream
(the channel :data:`~broadcaster.protocol.watchlist.ONLINE_ROSTER`) for what every node must act
on: terminating a user's sockets and watchlist events. Presence answers are markers on the
channel's stream (see :mod:`.redis_presence`), so a join's answer keeps its place among the
channel's member events. A history channel's publication goes through
``lua/publish_history.lua``, which gives it its serial and keeps it in the same step; it arrives
as ``#<serial>:<epoch>:<publication>``.

``publish`` is called from the event loop and must not wait, so publications queue (bounded)
for one writer task, which pipelines whatever has piled up: one ``SPUBLISH`` per channel of a
publication, the same bytes for each. Interest changes are sent by one supervisor task, which
also reconnects; each shard's reader (:mod:`.redis_shards`) delivers in arrival order.

Outages lose nothing silently. A reader notices a broken subscription (an error, or no answer
to its PING within :data:`~.redis_shards.DEAD_AFTER`), the writer a failed publish; from then on
:meth:`RedisBus.unavailable` gives the reason (the API answers 503, a new subscription gets a
``pusher:error``) until the bus has resubscribed every stream it holds and settled.
Publications made meanwhile wait in order and go out once it has; past :data:`MAX_PENDING` each
is dropped, counted in ``dropped`` and logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import replace
from importlib.resources import files
from itertools import islice
from typing import Any

from redis.asyncio import Redis, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from shared.channels import channel_type
from shared.payloads import encode_message
from shared.redis_modes import async_client, failure, parse_redis_url, redacted

from ..protocol.publication import EVENT, Publication
from ..protocol.requests import LISTENING, Answer, Unavailable
from ..protocol.state import CACHE_TTL
from ..protocol.watchlist import ONLINE_ROSTER
from .base import Bus, Deliver, HistoryOf, cancelled
from .codec import decode_publication, encode_publication
from .redis_shards import COMMAND_TIMEOUT, CONNECT_TIMEOUT, Failure, Shards

__all__ = ["AppRoutes", "RedisBus", "RedisUnavailable", "cache_key", "decode_publication",
           "encode_publication", "stream_name"]

logger = logging.getLogger(__name__)

# Publications waiting for Redis; beyond, each is dropped and counted. From nine tenths of it
# the HTTP API answers 503 (unavailable()), so an event it accepted is never one dropped.
MAX_PENDING = 10_000
MAX_PIPELINE = 256  # publications sent to Redis in one round trip
RETRY_DELAY = 0.5  # seconds between attempts to reach Redis after a failure
SETTLE_DELAY = 2 * RETRY_DELAY  # seconds after resubscribing before publishing again
STOP_FLUSH_TIMEOUT = 2.0  # seconds stop() gives queued publications to reach Redis
CACHE_TTL_MS = round(CACHE_TTL * 1000)
MARKER = b"!"  # first byte of a presence answer's marker on a stream (a publication is JSON)
POSITIONED = b"#"  # first byte of a history channel's publication: "#<serial>:<epoch>:<JSON>"
PUBLISH_HISTORY = files(__package__).joinpath("lua", "publish_history.lua").read_text()


class RedisUnavailable(Exception):
    """Redis cannot be reached at start-up; the message says where and which settings to check."""


def cache_key(app_id: str, channel: str) -> str:
    """The Redis key holding cache channel ``channel``'s last message (as subscribers get it)."""
    return f"resound:{{{app_id}:{channel}}}:cache"


def history_keys(app_id: str, channel: str) -> tuple[str, str]:
    """A history channel's meta hash (epoch, serial) and log (a stream of kept frames)."""
    tag = f"resound:{{{app_id}:{channel}}}"
    return f"{tag}:history-meta", f"{tag}:history"


def stream_name(prefix: str, app_id: str, channel: str) -> str:
    """The Redis pub/sub channel that carries ``channel``'s publications (``prefix`` is the
    bus's name, REVERB_SCALING_CHANNEL); its hash tag is that of the channel's keys."""
    return f"{prefix}:{{{app_id}:{channel}}}"


class AppRoutes:
    """One app's side of the bus's interest: ``AppState`` calls it as channels open and close
    on this node (see :class:`~broadcaster.protocol.state.Routes`)."""

    __slots__ = ("bus", "app_id")

    def __init__(self, bus: RedisBus, app_id: str) -> None:
        self.bus = bus
        self.app_id = app_id

    def opened(self, channel: str) -> None:
        self.bus.hold(self.app_id, channel)

    def closed(self, channel: str) -> None:
        self.bus.release(self.app_id, channel)

    def ready(self, channel: str) -> bool:
        return self.bus.hears(self.app_id, channel)


class RedisBus(Bus):
    """Publications travel through the Redis (single, Sentinel or Cluster) at ``url``; stream
    names start with ``channel`` (REVERB_SCALING_CHANNEL)."""

    def __init__(self, url: str, channel: str = "reverb") -> None:
        self.url = url
        self.channel = channel
        self.dropped = 0  # publications lost: the queue was full, or the bus stopped first
        self.reconnects = 0  # resubscriptions after losing Redis
        self.published = 0  # publications Redis took
        self._target = parse_redis_url(url)
        self._deliver: Deliver | None = None
        self._history: HistoryOf | None = None
        self._on_marker: Callable[[bytes], Awaitable[None] | None] | None = None
        self._redis: Redis | RedisCluster | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._pending: deque[Publication] = deque()
        self._has_pending = asyncio.Event()
        self._drained = asyncio.Event()
        self._drained.set()
        self._dropping = 0  # publications dropped since the queue was last below its bound
        # interest: stream -> (app, channel) and how many holders (open channels, joins)
        self._routes: dict[bytes, tuple[str, str]] = {}
        self._held: dict[bytes, int] = {}
        self._dirty: set[bytes] = set()  # streams whose holding changed since the last sync
        self._wake = asyncio.Event()  # the supervisor has interest changes to send
        self._confirmed: set[bytes] = set()  # streams Redis confirmed on the live connections
        self._leaving: dict[bytes, int] = {}  # SUNSUBSCRIBEs sent, not yet confirmed
        self._waiters: dict[bytes, list[Callable[[Answer], None]]] = {}
        self._shards: Shards | None = None  # the pub/sub connections, once started
        self._lost_with: asyncio.Future[BaseException] | None = None  # set by a broken reader
        self._ready = asyncio.Event()  # subscribed on every held stream and settled
        self._lost = False  # the subscriptions broke since they were last ready
        self._settling = False  # resubscribed after an outage, waiting for the other nodes
        self._publish_error: str | None = None  # why the last publish failed, until one works

    # --- interest ------------------------------------------------------------------------

    def routes(self, app_id: str) -> AppRoutes:
        """App ``app_id``'s interest, for its ``AppState``; the bus hears its app stream."""
        self.hold(app_id, ONLINE_ROSTER)
        return AppRoutes(self, app_id)

    def _stream(self, app_id: str, channel: str) -> bytes:
        return stream_name(self.channel, app_id, channel).encode()

    def hold(self, app_id: str, channel: str) -> None:
        """Hear ``channel`` from now on (until as many :meth:`release` calls)."""
        name = self._stream(app_id, channel)
        held = self._held.get(name, 0)
        self._held[name] = held + 1
        if not held:
            self._routes[name] = (app_id, channel)
            self._changed(name)

    def release(self, app_id: str, channel: str) -> None:
        """Undo one :meth:`hold`; the last one stops hearing ``channel``."""
        name = self._stream(app_id, channel)
        held = self._held.get(name, 0) - 1
        if held > 0:
            self._held[name] = held
        elif held == 0:
            del self._held[name]
            self._changed(name)

    def _changed(self, name: bytes) -> None:
        self._dirty.add(name)
        self._wake.set()

    def hears(self, app_id: str, channel: str) -> bool:
        """Whether everything published on ``channel`` from now on reaches this node."""
        return self._ready.is_set() and self._stream(app_id, channel) in self._confirmed

    def listen(self, app_id: str, channel: str, reply: Callable[[Answer], None]) -> None:
        """Call ``reply(LISTENING)`` once the node hears ``channel`` (held by the caller), or
        with :class:`Unavailable` when Redis cannot be reached; at once when it can tell."""
        reason = self.unavailable()
        if reason is not None:
            reply(Unavailable(reason))
            return
        name = self._stream(app_id, channel)
        if name in self._confirmed:
            reply(LISTENING)
        elif name not in self._held:
            reply(Unavailable(f"{channel} is not held on this node; subscribe first"))
        else:
            self._waiters.setdefault(name, []).append(reply)

    async def heard(self, app_id: str, channel: str) -> Answer:
        """:meth:`listen`, awaited."""
        done: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self.listen(app_id, channel, done.set_result)
        return await done

    def on_marker(self, handler: Callable[[bytes], Awaitable[None] | None]) -> None:
        """Call ``handler`` with each marker (a presence answer's place) on a stream heard;
        when it returns an awaitable, the stream's next message waits for it."""
        self._on_marker = handler

    # --- Bus -----------------------------------------------------------------------------

    def attach(self, deliver: Deliver, history: HistoryOf | None = None) -> None:
        self._deliver = deliver
        self._history = history

    def unavailable(self) -> str | None:
        where = redacted(self.url)
        waiting = len(self._pending)
        if waiting >= MAX_PENDING * 9 // 10:  # the rest is kept for client and member events
            return (f"Redis at {where} is behind: {waiting} publications wait to be sent; "
                    "retry later")
        if self._ready.is_set() and self._publish_error is None:
            return None
        if self._publish_error is not None or not self._settling:
            return (f"Redis at {where} is unreachable; events cannot reach the other nodes; "
                    "retry later")
        return f"Redis at {where} is back; this node is resubscribing; retry in a moment"

    async def start(self) -> None:
        """Connect and subscribe every held stream; returns once Redis has confirmed them."""
        if self._deliver is None:
            raise RuntimeError("RedisBus.start before attach(): build the server first")
        # No retries inside redis-py: a failure must surface here, at once, to be handled.
        self._redis = async_client(self._target, socket_connect_timeout=CONNECT_TIMEOUT,
                                   socket_timeout=COMMAND_TIMEOUT, retry=Retry(NoBackoff(), 0))
        self._shards = Shards(self._target, self._redis, self._handle, self._lose)
        where = redacted(self.url)
        try:
            await self._redis.ping()
            await self._subscribe_all()
        except Failure as exc:
            await self._disconnect()
            raise RedisUnavailable(
                f"cannot subscribe to Redis at {where}: {failure(exc)}; check "
                "REDIS_URL / REDIS_HOST / REDIS_PORT or unset REVERB_SCALING_ENABLED"
            ) from None
        self._ready.set()
        self._tasks = [asyncio.create_task(self._supervise()), asyncio.create_task(self._write())]
        logger.info("scaling through Redis at %s (%s), streams %s:{app:channel}", where,
                    self._target.mode, self.channel)

    async def stop(self) -> None:
        """Give queued publications a moment to go out (when subscribed), then disconnect."""
        if self._tasks and self._ready.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._drained.wait(), STOP_FLUSH_TIMEOUT)
        await cancelled(self._tasks)
        self._tasks = []
        if self._pending:
            self.dropped += len(self._pending)
            logger.warning("stopped with %d publication(s) not sent to Redis at %s",
                           len(self._pending), redacted(self.url))
            self._pending.clear()
        await self._disconnect()

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

    # --- publishing ----------------------------------------------------------------------

    async def _write(self) -> None:
        """Send queued publications in order, once subscribed; keep a failed batch to retry."""
        while True:
            await self._has_pending.wait()
            await self._ready.wait()
            batch = list(islice(self._pending, MAX_PIPELINE))
            try:
                await self._send(batch)
            except Failure as exc:
                if self._publish_error is None:
                    logger.warning("publishing to Redis at %s failed: %s; %d publication(s) "
                                   "wait to be sent again", redacted(self.url),
                                   failure(exc), len(self._pending))
                self._publish_error = failure(exc)
                await self._recover()
                continue
            if self._publish_error is not None:
                logger.info("publishing to Redis at %s works again", redacted(self.url))
                self._publish_error = None
            for _ in batch:
                self._pending.popleft()
            self.published += len(batch)
            if not self._pending:
                self._has_pending.clear()
                self._drained.set()

    async def _recover(self) -> None:
        """After a failed publish: wait until Redis answers again (on a cluster, with the
        shards as they are now), then :data:`SETTLE_DELAY` more, so that the nodes whose
        subscriptions broke with it have resubscribed before the batch goes out again."""
        while True:
            await asyncio.sleep(RETRY_DELAY)
            try:
                await self._refresh_topology()
                await self._redis.ping()
            except Failure as exc:
                logger.debug("Redis at %s still unreachable: %s", redacted(self.url), exc)
                continue
            await asyncio.sleep(SETTLE_DELAY)
            return

    async def _refresh_topology(self) -> None:
        """On a cluster, read again which master serves which slots (after a failover)."""
        if isinstance(self._redis, RedisCluster):
            await self._redis.nodes_manager.initialize()

    def _streams_of(self, publication: Publication) -> Iterable[tuple[str, str]]:
        """The (channel, stream) pairs ``publication`` goes to: its channels', or its app's
        for the kinds every node acts on (terminating a user, watchlist events)."""
        if publication.kind != EVENT:
            return ((ONLINE_ROSTER, stream_name(self.channel, publication.app_id,
                                                ONLINE_ROSTER)),)
        return ((name, stream_name(self.channel, publication.app_id, name))
                for name in publication.channels)

    def _kept(self, publication: Publication) -> HistoryOf | None:
        """What tells the history channels among ``publication``'s (member events are no
        history, nor what is not an event)."""
        return self._history if publication.cacheable else None

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
                payload = encode_publication(publication)
                kept = self._kept(publication)
                for name, stream in self._streams_of(publication):
                    rule = kept(publication.app_id, name) if kept is not None else None
                    if rule is None:
                        pipe.execute_command("SPUBLISH", stream, payload)
                        continue
                    message = encode_message(publication.event, publication.data, channel=name,
                                             user_id=publication.user_id)
                    pipe.eval(PUBLISH_HISTORY, 2, *history_keys(publication.app_id, name),
                              stream, message, payload, rule.limit, rule.ttl * 1000)
            refused = [result for result in await pipe.execute(raise_on_error=False)
                       if isinstance(result, RedisError)]
        for result in refused:
            if isinstance(result, RedisConnectionError | RedisTimeoutError):
                raise result  # a shard was out of reach: send the batch again
        if refused:
            logger.error("Redis at %s refused %d command(s) of a batch of %d publication(s), "
                         "first: %s", redacted(self.url), len(refused), len(batch), refused[0])

    # --- subscriptions -------------------------------------------------------------------

    async def _supervise(self) -> None:
        """Send interest changes as they come; after a lost subscription, resubscribe all."""
        while True:
            assert self._lost_with is not None
            wake = asyncio.ensure_future(self._wake.wait())
            try:
                await asyncio.wait((wake, self._lost_with), return_when=asyncio.FIRST_COMPLETED)
            finally:
                wake.cancel()
            if self._lost_with.done():
                self._subscription_lost(self._lost_with.result())
                await self._resubscribe()
                continue
            self._wake.clear()
            try:
                await self._sync()
            except Failure as exc:
                self._lose(exc)

    async def _sync(self) -> None:
        """Subscribe the streams newly held, unsubscribe those released."""
        changed, self._dirty = self._dirty, set()
        subscribe = [name for name in changed if name in self._held]
        unsubscribe = [name for name in changed if name not in self._held]
        for name in unsubscribe:
            self._routes.pop(name, None)
            self._confirmed.discard(name)
            for reply in self._waiters.pop(name, ()):
                reply(Unavailable("unsubscribed before the node heard the channel"))
        assert self._shards is not None
        for shard, names in self._shards.group(unsubscribe, existing=True):
            for name in names:
                self._leaving[name] = self._leaving.get(name, 0) + 1
            await self._shards.unsubscribe(shard, names)
        for shard, names in self._shards.group(subscribe):
            await self._shards.subscribe(shard, names)

    async def _subscribe_all(self) -> None:
        """Subscribe every held stream on fresh connections; return once all are confirmed."""
        assert self._shards is not None
        await self._refresh_topology()
        self._lost_with = asyncio.get_running_loop().create_future()
        self._dirty.clear()
        self._wake.clear()
        for shard, names in self._shards.group(list(self._held)):
            await self._shards.subscribe(shard, names)
        async with asyncio.timeout(CONNECT_TIMEOUT):
            while not self._confirmed.issuperset(self._held):
                if self._lost_with.done():
                    raise self._lost_with.result()
                await asyncio.sleep(0.005)

    def _lose(self, exc: BaseException) -> None:
        """A shard's reader broke (or a slot moved): the supervisor resubscribes all."""
        if self._lost_with is not None and not self._lost_with.done():
            self._lost_with.set_result(exc)

    def _subscription_lost(self, exc: BaseException) -> None:
        if not self._lost:
            logger.warning("lost the subscription to Redis at %s: %s; publications wait (at "
                           "most %d) until it is back", redacted(self.url),
                           failure(exc), MAX_PENDING)
        self._lost = True
        self._ready.clear()
        self._confirmed.clear()
        waiters, self._waiters = self._waiters, {}
        for replies in waiters.values():
            for reply in replies:
                reply(Unavailable(f"Redis at {redacted(self.url)} is unreachable; subscribe "
                                  "again later"))

    async def _resubscribe(self) -> None:
        """New connections with every held stream subscribed, once Redis accepts them; then,
        after :data:`SETTLE_DELAY`, ready again."""
        while True:
            await self._close_shards()
            await asyncio.sleep(RETRY_DELAY)
            try:
                await self._subscribe_all()
            except Failure as exc:
                logger.debug("Redis at %s still unreachable: %s", redacted(self.url), exc)
                continue
            break
        # Idle pooled connections predate the outage: the writer's first publish on one
        # would fail and take the bus down again right after it came back.
        pool = getattr(self._redis, "connection_pool", None)
        if pool is not None:
            await pool.disconnect(inuse_connections=False)
        self.reconnects += 1
        logger.info("resubscribed to Redis at %s; publishing again in %.1f s (%d waiting)",
                    redacted(self.url), SETTLE_DELAY, len(self._pending))
        # Every node retries every RETRY_DELAY: waiting lets the others resubscribe too
        # before this one's publications (queued ones first) go out.
        self._settling = True
        try:
            await asyncio.sleep(SETTLE_DELAY)
        finally:
            self._settling = False
        if self._lost_with is not None and not self._lost_with.done():
            self._lost = False
            self._ready.set()
            if self._dirty:
                self._wake.set()

    async def _close_shards(self) -> None:
        if self._shards is not None:
            await self._shards.close()
        self._confirmed.clear()
        self._leaving.clear()

    async def _disconnect(self) -> None:
        await self._close_shards()
        if self._redis is not None:
            with contextlib.suppress(*Failure):
                await self._redis.aclose()
            self._redis = None

    # --- arrivals ------------------------------------------------------------------------

    def _handle(self, message: dict[str, Any]) -> Awaitable[None] | None:
        """Act on one message from Redis; what the reader must await before the next, if any."""
        kind, name = message["type"], message["channel"]
        if kind == "smessage":
            route = self._routes.get(name)
            if route is not None:
                return self._arrived(route, message["data"])
        elif kind == "ssubscribe":
            if name in self._held:
                self._confirmed.add(name)
                for reply in self._waiters.pop(name, ()):
                    reply(LISTENING)
        elif kind == "sunsubscribe":
            leaving = self._leaving.pop(name, 0)
            if leaving > 1:
                self._leaving[name] = leaving - 1
            self._confirmed.discard(name)
            if leaving:
                return None  # asked for (a later SSUBSCRIBE of it, if any, confirms it again)
            if name in self._held:
                # Not asked for: the slot moved (resharding, failover). Resubscribe all.
                self._lose(RedisConnectionError(
                    f"Redis moved stream {name.decode(errors='replace')} to another shard"))
        return None

    def _arrived(self, route: tuple[str, str], payload: bytes) -> Awaitable[None] | None:
        if payload[:1] == MARKER:
            return self._on_marker(payload[1:]) if self._on_marker is not None else None
        position = None
        try:
            if payload[:1] == POSITIONED:
                serial, epoch, payload = payload[1:].split(b":", 2)
                position = (int(serial), epoch.decode())
            publication = decode_publication(payload)
        except (ValueError, UnicodeDecodeError) as exc:
            logger.warning("ignored a message on Redis stream %s: %s",
                           stream_name(self.channel, *route), exc)
            return None
        app_id, channel = route
        if publication.kind == EVENT and publication.channels != (channel,):
            if channel not in publication.channels or publication.app_id != app_id:
                return None
            publication = replace(publication, channels=(channel,))
        assert self._deliver is not None
        try:
            self._deliver(publication, position)
        except Exception:
            logger.exception("delivering a publication from Redis failed")
        return None

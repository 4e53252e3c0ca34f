"""What every concern of the Redis cluster state shares: the connection, the node's
incarnation and keys, the life cycle, and the lock between presence operations and a
re-registration. :class:`~broadcaster.cluster.redis_state.RedisState` puts the concerns
(:mod:`.redis_presence`, :mod:`.redis_counts`, :mod:`.redis_nodes`) together on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib.resources import files
from typing import TYPE_CHECKING, Any

from redis.asyncio import Redis, RedisCluster
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from shared.redis_modes import async_client, failure, parse_redis_url, redacted

from ..protocol.requests import (
    JoinPresence,
    LeavePresence,
    Unavailable,
)
from .base import ClusterState, cancelled
from .redis_bus import (
    RedisBus,
    RedisUnavailable,
    stream_name,
)

if TYPE_CHECKING:
    from .redis_presence import _PendingJoin

logger = logging.getLogger("broadcaster.cluster.redis_state")  # one name for every concern

SCRIPTS = ("join_presence", "leave_presence", "heartbeat", "reap_dead_nodes", "read_history")
NO_CAP = 2**31  # member cap when re-registering sockets that were already admitted
# Submitted requests run at once; the rest wait. Below redis-py's pool of 100 connections,
# which the heartbeat, reaper and count flushes share.
MAX_IN_FLIGHT = 48
Failure = (RedisError, OSError, TimeoutError)



class ScriptBatch:
    """Lua script calls made together: in one pipeline on one Redis (redis-py loads a script a
    server lacks before the pipeline runs), one after the other on a Redis Cluster, whose
    pipelines do not (a master that never ran the script would answer NOSCRIPT)."""

    def __init__(self, redis: Redis | RedisCluster) -> None:
        self._pipeline = None if isinstance(redis, RedisCluster) else redis.pipeline(
            transaction=False)
        self.client: Any = redis if self._pipeline is None else self._pipeline
        self._results: list[Any] = []

    async def add(self, call: Awaitable[Any]) -> None:
        """One call, made with :attr:`client` (queued in the pipeline, or made now)."""
        result = await call
        if self._pipeline is None:
            self._results.append(result)

    async def results(self) -> list[Any]:
        """Each script call's result, in order (the pipeline's replies, on one Redis)."""
        if self._pipeline is None:
            return self._results
        try:
            return await self._pipeline.execute()
        finally:
            await self._pipeline.reset()


class RedisStateBase(ClusterState):
    """Cluster state shared through the Redis at ``url``; member events go out on ``bus``.

    Timings are in seconds: ``heartbeat_interval`` between heartbeats, ``node_ttl`` after the
    last one before a node counts as dead, ``reap_interval`` between reaper runs (cluster-wide,
    under a lock), ``flush_interval`` between count flushes, ``answer_timeout`` for one decision.
    """

    def __init__(self, url: str, node_id: str, bus: RedisBus, prefix: str = "resound", *,
                 heartbeat_interval: float = 2.0, node_ttl: float = 10.0,
                 reap_interval: float = 5.0, flush_interval: float = 0.25,
                 answer_timeout: float = 5.0) -> None:
        super().__init__(node_id)
        self.url, self.bus, self.prefix = url, bus, prefix
        self.heartbeat_interval, self.node_ttl = heartbeat_interval, node_ttl
        self.reap_interval, self.flush_interval = reap_interval, flush_interval
        self.answer_timeout = answer_timeout
        self.incarnation = self._new_incarnation()
        self._redis: Redis | RedisCluster | None = None
        self._scripts: dict[str, AsyncScript] = {}
        self._loops: list[asyncio.Task[None]] = []
        self._ids = itertools.count()
        self._answers: dict[bytes, _PendingJoin] = {}  # joins in flight, by marker
        self._slots = asyncio.Semaphore(MAX_IN_FLIGHT)
        # this node's presence sockets, to re-register them: (app, channel, socket) -> request
        self._joined: dict[tuple[str, str, str], JoinPresence] = {}
        # sockets that may be in Redis wrongly, with their field there (the incarnation of then)
        self._orphans: dict[tuple[str, str, str], tuple[str, LeavePresence]] = {}
        self._stale: set[str] = set()  # this node's former incarnations, still to clean up
        self._registered: set[tuple[str, str]] = set()  # (app, channel) in the node's registry
        self._flushed: dict[str, dict[str, int]] = {}  # app -> counts as last written
        self._must_register = False
        # Redis health: each loop's own (whether its last step failed), and whether the node
        # has said Redis is unreachable and not yet that it is back
        self._failing: set[str] = set()
        self._outage = False
        # presence operations share the Redis keys of this incarnation; re-registration and
        # orphan cleanup wait for them to finish and hold new ones back
        self._open, self._idle, self._busy = asyncio.Event(), asyncio.Event(), 0
        # the bus's reconnects when this node last made sure it is registered; a join after a
        # reconnect first re-registers if Redis lost the node (else its joins could be ghosts)
        self._seen_reconnects = 0
        self._recheck = asyncio.Lock()
        self._open.set()
        self._idle.set()

    # --- keys ----------------------------------------------------------------------------

    def _stream(self, app_id: str, channel: str) -> str:
        return stream_name(self.bus.channel, app_id, channel)

    def _presence_keys(self, app_id: str, channel: str) -> list[str]:
        tag = f"{self.prefix}:{{{app_id}:{channel}}}"
        return [f"{tag}:members", f"{tag}:sockets", f"{tag}:usersockets"]

    def members_key(self, app_id: str, channel: str) -> str:
        """The presence channel's roster: user id -> user info JSON."""
        return self._presence_keys(app_id, channel)[0]

    def _counts_key(self, app_id: str, incarnation: str) -> str:
        return f"{self.prefix}:{{{app_id}}}:node:{incarnation}"

    def _node_key(self, incarnation: str, what: str) -> str:
        """The node's registry: ``presence`` ("app\\0channel" it joined), ``apps`` (counted)."""
        return f"{self.prefix}:node:{incarnation}:{what}"

    @property
    def nodes_key(self) -> str:
        """The sorted set of live node incarnations ("<node id>#<tag>" -> expiry)."""
        return f"{self.prefix}:nodes"

    def _new_incarnation(self) -> str:
        return f"{self.node_id}#{uuid.uuid4().hex[:12]}"

    def _unavailable(self, exc: BaseException) -> Unavailable:
        return Unavailable(f"Redis at {redacted(self.url)} is unreachable: {failure(exc)}; "
                           "presence and counts need it")

    # --- life cycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Connect, register this node, start the heartbeat, reaper and count flush tasks."""
        self._redis = async_client(parse_redis_url(self.url),
                                   socket_connect_timeout=self.answer_timeout,
                                   socket_timeout=self.answer_timeout)
        folder = files(__package__).joinpath("lua")
        self._scripts = {name: self._redis.register_script(
            folder.joinpath(f"{name}.lua").read_text()) for name in SCRIPTS}
        self.bus.on_marker(self._on_marker)
        self._seen_reconnects = self.bus.reconnects
        try:
            await self._register(self.incarnation)
        except Failure as exc:
            await self._redis.aclose()
            raise RedisUnavailable(f"cannot register node {self.node_id!r} in Redis at "
                                   f"{redacted(self.url)}: {failure(exc)}; check REDIS_URL / "
                                   "REDIS_HOST / REDIS_PORT or unset REVERB_SCALING_ENABLED"
                                   ) from None
        self._loops = [asyncio.create_task(self._every(interval, step)) for interval, step in (
            (self.heartbeat_interval, self.heartbeat), (self.reap_interval, self.reap_dead_nodes),
            (self.flush_interval, self.flush_counts), (self.flush_interval, self.refresh_caps))]

    async def halt(self) -> None:
        """Stop heartbeats, reaping and count flushes: to the cluster, the node is now dead."""
        await cancelled(self._loops)
        self._loops = []

    async def stop(self) -> None:
        """Halt, and remove this node from Redis: counts, registry, and sockets left over."""
        await self.halt()
        if self._redis is None:
            return
        try:
            async with self._exclusive():
                for incarnation in {*self._stale, self.incarnation}:
                    await self._remove_node(incarnation)
        except Failure as exc:
            logger.warning("could not unregister node %s from Redis at %s: %s; the reaper will",
                           self.incarnation, redacted(self.url), exc)
        await self._redis.aclose()
        self._redis = None

    async def _every(self, interval: float, step: Callable[[], Awaitable[bool]]) -> None:
        """Run ``step`` every ``interval`` seconds; it returns whether it reached Redis.

        Each loop has its own health: the node says Redis is unreachable when a loop that
        worked fails, and that it is back once a step has reached it after that, each once;
        a step with nothing to send to Redis says nothing either way."""
        name = step.__name__
        while True:
            await asyncio.sleep(interval)
            try:
                reached = await step()
            except Failure as exc:
                logger.debug("node %s: %s failed: %s", self.incarnation, name, exc)
                if name not in self._failing and not self._outage:
                    logger.warning("%s", self._unavailable(exc).reason)
                    self._outage = True
                self._failing.add(name)
                continue
            except Exception:
                logger.exception("node %s: %s failed", self.incarnation, name)
                continue
            if reached:
                self._failing.discard(name)
                if self._outage:
                    logger.info("Redis at %s is reachable again", redacted(self.url))
                    self._outage = False

    @contextlib.asynccontextmanager
    async def _shared(self) -> AsyncIterator[None]:
        while not self._open.is_set():
            await self._open.wait()
        self._busy += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._busy -= 1
            if not self._busy:
                self._idle.set()

    @contextlib.asynccontextmanager
    async def _exclusive(self) -> AsyncIterator[None]:
        self._open.clear()
        try:
            await self._idle.wait()
            yield
        finally:
            self._open.set()


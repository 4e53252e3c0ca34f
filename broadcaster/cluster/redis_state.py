"""Cluster state in Redis: presence rosters decided by Lua scripts, counts summed over nodes.

Presence lives in three hashes per channel, under a ``{app:channel}`` hash tag so that they
can move to Redis Cluster: ``members`` (user id -> user info JSON), ``sockets`` ("<node>|<socket
id>" -> user id) and ``usersockets`` (user id -> how many sockets). ``lua/join_presence.lua`` and
``lua/leave_presence.lua`` make the first- and last-socket decisions and PUBLISH the member
events atomically with them; :class:`~broadcaster.cluster.local.LocalState` is their Python
reading. Signed-in users (watchlist events) are the roster of the pseudo-channel
``#online`` (:func:`online_join`): the same scripts decide a user's first and last socket and
publish ``online``/``offline``, and the registry and reaper clean up after a dead node.

Counts never touch Redis on the hot path: every node keeps its sockets in memory and a flush
task writes what changed to the node's own hash per app, read back as a sum over live nodes.

Every node registers an *incarnation* (its node id and a random tag) in ``nodes``, a sorted set
of expiries on Redis's clock, pushed forward by a heartbeat. A reaper on any node claims
expired incarnations and removes their sockets, counts and registry. A node that finds its
incarnation gone (reaped while frozen, or Redis restarted empty) re-registers under a new one,
rejoins every presence socket it holds, then removes the old incarnation's leftovers: users may
flap, but no ghost remains.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib.resources import files
from typing import Any

from redis.asyncio import Redis, RedisCluster
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from shared.channels import SERVER_TO_USER_PREFIX, channel_type
from shared.payloads import dumps, loads
from shared.redis_modes import async_client, parse_redis_url, redacted

from ..protocol.history import EMPTY, Window
from ..protocol.publication import Publication
from ..protocol.requests import (
    Answer,
    Cached,
    ChannelCounts,
    FetchCache,
    Full,
    Joined,
    JoinPresence,
    LeavePresence,
    Left,
    ReadHistory,
    Request,
    SignIn,
    SignOut,
    Unavailable,
    Watched,
)
from ..protocol.state import AppState
from ..protocol.watchlist import ONLINE_ROSTER, status_publication
from .base import ClusterState, Reply, cancelled
from .redis_bus import (
    MARKER,
    RedisBus,
    RedisUnavailable,
    cache_key,
    encode_publication,
    history_keys,
    stream_name,
)

logger = logging.getLogger(__name__)

SCRIPTS = ("join_presence", "leave_presence", "heartbeat", "reap_dead_nodes", "read_history")
NO_CAP = 2**31  # member cap when re-registering sockets that were already admitted
Failure = (RedisError, OSError, TimeoutError)


def member_removed(app_id: str, channel: str, user_id: str) -> Publication:
    """The ``pusher_internal:member_removed`` publication for ``user_id`` leaving ``channel``;
    on the online roster, the watchlist's ``offline``."""
    if channel == ONLINE_ROSTER:
        return status_publication(app_id, user_id, online=False)
    return Publication(app_id, (channel,), "pusher_internal:member_removed",
                       dumps({"user_id": user_id}))


def online_join(request: SignIn) -> JoinPresence:
    """A sign-in as a join of the app's online roster (:data:`ONLINE_ROSTER`): the presence
    scripts decide first and last sockets, the registry and reaper clean up after dead nodes."""
    return JoinPresence(request.app_id, ONLINE_ROSTER, request.socket_id, request.user_id, None,
                        NO_CAP, request.online, roster_of=request.watchlist)


def watched(answer: Answer) -> Answer:
    """A sign-in's answer from its online-roster join's."""
    return Watched(tuple(answer.members)) if isinstance(answer, Joined) else answer


def counts_snapshot(app: AppState) -> dict[str, int]:
    """What a node writes for ``app``: its sockets, and subscriptions by ``s:<channel>``."""
    snapshot = {f"s:{name}": channel.subscription_count for name, channel in app.channels.items()
                if channel.subscription_count}
    if app.connection_count:
        snapshot["connections"] = app.connection_count
    return snapshot


class RedisState(ClusterState):
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
        # this node's presence sockets, to re-register them: (app, channel, socket) -> request
        self._joined: dict[tuple[str, str, str], JoinPresence] = {}
        # sockets that may be in Redis wrongly, with their field there (the incarnation of then)
        self._orphans: dict[tuple[str, str, str], tuple[str, LeavePresence]] = {}
        self._stale: set[str] = set()  # this node's former incarnations, still to clean up
        self._registered: set[tuple[str, str]] = set()  # (app, channel) in the node's registry
        self._flushed: dict[str, dict[str, int]] = {}  # app -> counts as last written
        self._must_register = False
        self._down = False
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
        what = str(exc) or type(exc).__name__
        return Unavailable(f"Redis at {redacted(self.url)} is unreachable: {what}; "
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
                                   f"{redacted(self.url)}: {exc}; check REDIS_URL / REDIS_HOST"
                                   " / REDIS_PORT or unset REVERB_SCALING_ENABLED") from None
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

    async def _every(self, interval: float, step: Callable[[], Awaitable[None]]) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await step()
            except Failure as exc:
                if not self._down:
                    logger.warning("%s", self._unavailable(exc).reason)
                self._down = True
                continue
            except Exception:
                logger.exception("node %s: %s failed", self.incarnation, step.__name__)
                continue
            if self._down:
                logger.info("Redis at %s is reachable again", redacted(self.url))
            self._down = False

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

    # --- presence ------------------------------------------------------------------------

    def _on_marker(self, marker: bytes) -> Awaitable[None] | None:
        """A join's place among its channel's events, from the bus's reader: the answer goes
        to the session now, before the reader delivers the channel's next event. Returns what
        the reader must await first when the script's own reply is still on its way."""
        pending = self._answers.pop(marker, None)
        if pending is None:
            return None  # another node's join, or one given up
        return pending.reached()

    async def _join_script(self, client: Any, request: JoinPresence, cap: int,
                           marker: bytes) -> Any:
        """Run join_presence.lua; first record the channel in the node's registry, so that the
        reaper finds the socket if this node dies."""
        channel = (request.app_id, request.channel)
        if channel not in self._registered:
            await client.sadd(self._node_key(self.incarnation, "presence"), "\0".join(channel))
            self._registered.add(channel)
        roster_of = [] if request.roster_of is None else [dumps(request.roster_of)]
        return await self._scripts["join_presence"](
            keys=self._presence_keys(*channel),
            args=[f"{self.incarnation}|{request.socket_id}", request.user_id,
                  dumps(request.user_info), cap, self._stream(*channel),
                  encode_publication(request.added), marker, *roster_of],
            client=client)

    async def _leave_script(self, client: Any, request: LeavePresence, field: str) -> Any:
        return await self._scripts["leave_presence"](
            keys=self._presence_keys(request.app_id, request.channel),
            args=[field, request.user_id, self._stream(request.app_id, request.channel),
                  encode_publication(request.removed)],
            client=client)

    async def join_presence(self, request: JoinPresence) -> Joined | Full | Unavailable:
        answers: list[Joined | Full | Unavailable] = []
        await self._join(request, answers.append)
        return answers[0]

    async def sign_in(self, request: SignIn) -> Watched | Unavailable:
        answers: list[Answer] = []
        await self._join(online_join(request), answers.append)
        return watched(answers[0])

    async def sign_out(self, request: SignOut) -> Left | Unavailable:
        return await self.leave_presence(LeavePresence(
            request.app_id, ONLINE_ROSTER, request.socket_id, request.user_id, request.offline))

    async def _run(self, request: Request, reply: Reply) -> None:
        if isinstance(request, JoinPresence):
            await self._join(request, reply)
        elif isinstance(request, SignIn):
            await self._join(online_join(request), lambda answer: reply(watched(answer)))
        else:
            await super()._run(request, reply)

    async def _join(self, request: JoinPresence, reply: Reply) -> None:
        """Run join_presence.lua and call ``reply`` once with the answer. The node hears the
        channel first; a :class:`Joined` is given from the bus's reader at the script's marker,
        in pub/sub order: the member events before the decision are delivered before it, and
        those after, after it."""
        if self._redis is None:
            reply(Unavailable("cluster state is not started; start the server first"))
            return
        app_id, channel = request.app_id, request.channel
        self.bus.hold(app_id, channel)  # released once answered (the session holds it then)
        try:
            heard = await self.bus.heard(app_id, channel)
            if isinstance(heard, Unavailable):
                reply(heard)
                return
            try:
                await self._registered_since_reconnect()
            except Failure as exc:
                reply(self._unavailable(exc))
                return
            await self._run_join(request, reply)
        finally:
            self.bus.release(app_id, channel)

    async def _run_join(self, request: JoinPresence, reply: Reply) -> None:
        key = (request.app_id, request.channel, request.socket_id)
        marker = MARKER + f"{self.node_id}/{next(self._ids)}".encode()
        pending = _PendingJoin(self, request, reply)
        async with self._shared():
            self._orphans.pop(key, None)
            self._answers[marker[1:]] = pending
            try:
                async with asyncio.timeout(self.answer_timeout):
                    result = await self._join_script(self._redis, request, request.max_members,
                                                     marker)
                    if not result:
                        reply(Full(request.max_members))
                        return
                    pending.result.set_result(result)
                    await pending.answered
            except Failure as exc:
                if pending.answered.done():  # answered as the time ran out
                    return
                # the script may have run: leave again once Redis answers (heartbeat)
                self._orphans[key] = (f"{self.incarnation}|{request.socket_id}", LeavePresence(
                    request.app_id, request.channel, request.socket_id, request.user_id,
                    member_removed(request.app_id, request.channel, request.user_id)))
                pending.given_up = True
                reply(self._unavailable(exc))
            finally:
                self._answers.pop(marker[1:], None)

    async def leave_presence(self, request: LeavePresence) -> Left | Unavailable:
        if self._redis is None:
            return Unavailable("cluster state is not started; start the server first")
        key = (request.app_id, request.channel, request.socket_id)
        async with self._shared():
            self._joined.pop(key, None)
            field = f"{self.incarnation}|{request.socket_id}"
            try:
                last = await self._leave_script(self._redis, request, field)
            except Failure as exc:
                self._orphans[key] = (field, request)
                return self._unavailable(exc)
        if last:
            self.member_changed(request.app_id, request.channel, request.user_id, False)
        return Left(bool(last))

    async def fetch_cache(self, request: FetchCache) -> Cached | Unavailable:
        assert self._redis is not None, "RedisState.fetch_cache before start()"
        try:
            message = await self._redis.get(cache_key(request.app_id, request.channel))
        except Failure as exc:
            return self._unavailable(exc)
        return Cached(message)

    async def members(self, app_id: str, channel: str) -> dict[str, Any] | Unavailable:
        assert self._redis is not None, "RedisState.members before start()"
        try:
            roster = await self._redis.hgetall(self._presence_keys(app_id, channel)[0])
        except Failure as exc:
            return self._unavailable(exc)
        return {user.decode(): loads(info) for user, info in roster.items()}

    # --- history -------------------------------------------------------------------------

    async def read_history(self, request: ReadHistory) -> Window | Unavailable:
        app = self.apps.get(request.app_id)
        rule = app.history.of(request.channel) if app is not None and app.history else None
        if rule is None:
            return EMPTY
        try:
            epoch, latest, oldest, flat = await self._scripts["read_history"](
                keys=list(history_keys(request.app_id, request.channel)),
                args=[request.after, request.limit, rule.ttl * 1000])
        except Failure as exc:
            return self._unavailable(exc)
        frames = tuple((int(flat[i]), flat[i + 1]) for i in range(0, len(flat), 2))
        return Window(frames, int(latest), int(oldest), epoch.decode())

    # --- counts --------------------------------------------------------------------------

    async def _other_nodes(self) -> list[str]:
        assert self._redis is not None, "RedisState counts before start()"
        live = await self._redis.zrangebyscore(self.nodes_key, "(0", "+inf")
        return [node for node in (n.decode() for n in live) if node != self.incarnation]

    async def channel_counts(
        self, app_id: str, names: tuple[str, ...] | None = None
    ) -> dict[str, ChannelCounts] | Unavailable:
        app = self.apps.get(app_id)
        local = counts_snapshot(app) if app is not None else {}
        try:
            nodes = await self._other_nodes()
            async with self._redis.pipeline(transaction=False) as pipe:
                for node in nodes:
                    if names is None:
                        pipe.hgetall(self._counts_key(app_id, node))
                    else:
                        pipe.hmget(self._counts_key(app_id, node), [f"s:{n}" for n in names])
                replies = await pipe.execute()
            subscriptions: dict[str, int] = {}
            if names is None:
                for counts in [*replies, local]:
                    for field, count in counts.items():
                        field = field.decode() if isinstance(field, bytes) else field
                        if field.startswith("s:"):
                            name = field[2:]
                            subscriptions[name] = subscriptions.get(name, 0) + int(count)
                names = tuple(name for name, count in subscriptions.items()
                              if count and not name.startswith(SERVER_TO_USER_PREFIX))
            else:
                for name, *counts in zip(names, *replies, strict=True):
                    subscriptions[name] = local.get(f"s:{name}", 0) + sum(
                        int(count) for count in counts if count is not None)
            present = [name for name in names if channel_type(name).is_presence]
            async with self._redis.pipeline(transaction=False) as pipe:
                for name in present:
                    pipe.hlen(self._presence_keys(app_id, name)[0])
                users = dict(zip(present, await pipe.execute(), strict=True))
        except Failure as exc:
            return self._unavailable(exc)
        return {name: ChannelCounts(subscriptions.get(name, 0), users.get(name, 0))
                for name in names}

    async def connection_count(self, app_id: str) -> int | Unavailable:
        app = self.apps.get(app_id)
        try:
            nodes = await self._other_nodes()
            async with self._redis.pipeline(transaction=False) as pipe:
                for node in nodes:
                    pipe.hget(self._counts_key(app_id, node), "connections")
                counts = await pipe.execute()
        except Failure as exc:
            return self._unavailable(exc)
        mine = app.connection_count if app is not None else 0
        return mine + sum(int(count) for count in counts if count is not None)

    async def refresh_caps(self) -> None:
        """Read how many sockets each capped app has on the other nodes, for its connection cap
        (``AppState.is_full``): the cap holds cluster-wide, as of the last flush interval."""
        for app in self.apps.values():
            if app.config.max_connections is None:
                continue
            total = await self.connection_count(app.id)
            if not isinstance(total, Unavailable):
                app.connections_elsewhere = max(0, total - app.connection_count)

    async def flush_counts(self) -> None:
        """Write what changed in this node's counts since the last flush (absolute values)."""
        assert self._redis is not None, "RedisState.flush_counts before start()"
        async with self._shared():
            snapshots = {app_id: counts_snapshot(app) for app_id, app in self.apps.items()}
            changed = {app_id: snapshot for app_id, snapshot in snapshots.items()
                       if snapshot != self._flushed.get(app_id, {})}
            if not changed:
                return
            async with self._redis.pipeline(transaction=False) as pipe:
                for app_id, snapshot in changed.items():
                    key, before = self._counts_key(app_id, self.incarnation), self._flushed.get(
                        app_id, {})
                    updates = {f: n for f, n in snapshot.items() if before.get(f) != n}
                    if updates:
                        pipe.hset(key, mapping=updates)
                        pipe.sadd(self._node_key(self.incarnation, "apps"), app_id)
                    if gone := [f for f in before if f not in snapshot]:
                        pipe.hdel(key, *gone)
                await pipe.execute()
            self._flushed.update(changed)

    # --- nodes ---------------------------------------------------------------------------

    async def _register(self, incarnation: str, register: bool = True) -> bool:
        assert self._redis is not None
        registered = await self._scripts["heartbeat"](
            keys=[self.nodes_key],
            args=[incarnation, int(self.node_ttl * 1000), "register" if register else ""])
        return bool(registered)

    async def _registered_since_reconnect(self) -> None:
        """After the bus reconnected (Redis restarted, maybe empty), run a heartbeat before the
        next join, so the node is registered (re-registered) before it adds members."""
        if self.bus.reconnects == self._seen_reconnects:
            return
        async with self._recheck:
            reconnects = self.bus.reconnects
            if reconnects != self._seen_reconnects:
                # Idle pooled connections predate the outage: drop them rather than fail once.
                pool = getattr(self._redis, "connection_pool", None)
                if pool is not None:
                    await pool.disconnect(inuse_connections=False)
                await self.heartbeat()
                self._seen_reconnects = reconnects

    async def heartbeat(self) -> None:
        """Push this node's expiry forward; re-register if it was lost; retry orphan leaves."""
        if self._must_register or not await self._register(self.incarnation, register=False):
            await self._reregister()
        if self._orphans:
            async with self._exclusive():
                for key, (field, request) in list(self._orphans.items()):
                    await self._leave_script(self._redis, request, field)
                    del self._orphans[key]

    async def _reregister(self) -> None:
        """Register a new incarnation with everything this node holds, then drop the old one."""
        logger.warning("node %s is not registered in Redis at %s (reaped, or Redis lost its "
                       "data): re-registering its sockets", self.incarnation, redacted(self.url))
        async with self._exclusive():
            self._must_register = True
            self._stale.add(self.incarnation)
            self.incarnation = self._new_incarnation()
            self._flushed = {}
            await self._register(self.incarnation)
            self._registered = set()
            async with self._redis.pipeline(transaction=False) as pipe:
                for request in self._joined.values():
                    await self._join_script(pipe, request, NO_CAP, b"")
                await pipe.execute()
            for incarnation in list(self._stale):
                await self._remove_node(incarnation)
                self._stale.discard(incarnation)
            self._must_register = False
        await self.flush_counts()

    async def reap_dead_nodes(self) -> None:
        """Remove every node whose heartbeat expired, if no other node's reaper runs now."""
        assert self._redis is not None, "RedisState.reap_dead_nodes before start()"
        lock = f"{self.prefix}:reaper"
        if not await self._redis.set(lock, self.incarnation, nx=True,
                                     px=int(self.reap_interval * 1000)):
            return
        for node in await self._scripts["reap_dead_nodes"](keys=[self.nodes_key]):
            node = node.decode()
            if node != self.incarnation:  # this node's own: its heartbeat re-registers it
                logger.warning("node %s stopped its heartbeat: removing its sockets", node)
                await self._remove_node(node)

    async def _remove_node(self, incarnation: str) -> None:
        """Remove ``incarnation``'s sockets (member_removed where they were users' last), its
        counts and registry, then the node itself."""
        assert self._redis is not None
        presence = self._node_key(incarnation, "presence")
        pattern = re.sub(r"([*?\[\]\\])", r"\\\1", incarnation) + "|*"
        for entry in await self._redis.smembers(presence):
            app_id, channel = entry.decode().split("\0", 1)
            sockets = self._presence_keys(app_id, channel)[1]
            users: list[str] = []
            async with self._redis.pipeline(transaction=False) as pipe:
                async for field, user in self._redis.hscan_iter(sockets, match=pattern):
                    user_id = user.decode()
                    request = LeavePresence(app_id, channel, "", user_id,
                                            member_removed(app_id, channel, user_id))
                    await self._leave_script(pipe, request, field.decode())
                    users.append(user_id)
                for user_id, last in zip(users, await pipe.execute(), strict=True):
                    if last:  # this reaper decided the user's last socket
                        self.member_changed(app_id, channel, user_id, False)
        apps = self._node_key(incarnation, "apps")
        counts = [self._counts_key(app.decode(), incarnation)
                  for app in await self._redis.smembers(apps)]
        await self._redis.delete(presence, apps, *counts)
        await self._redis.zrem(self.nodes_key, incarnation)


class _PendingJoin:
    """A join in flight: the script's reply and its marker on the stream, in either order."""

    __slots__ = ("state", "request", "reply", "result", "answered", "given_up")

    def __init__(self, state: RedisState, request: JoinPresence, reply: Reply) -> None:
        loop = asyncio.get_running_loop()
        self.state, self.request, self.reply = state, request, reply
        self.result: asyncio.Future[Any] = loop.create_future()  # the script's reply
        self.answered: asyncio.Future[None] = loop.create_future()
        self.given_up = False

    def reached(self) -> Awaitable[None] | None:
        """The marker arrived: answer now, or once the script's reply has (awaitable)."""
        if self.result.done():
            self._answer()
            return None
        return self._answer_later()

    async def _answer_later(self) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.state.answer_timeout):
                await asyncio.shield(self.result)
        if self.result.done():
            self._answer()

    def _answer(self) -> None:
        if self.given_up or self.answered.done():
            return
        request, state = self.request, self.state
        first, roster = self.result.result()
        state._joined[(request.app_id, request.channel, request.socket_id)] = request
        if first:
            state.member_changed(request.app_id, request.channel, request.user_id, True)
        self.reply(Joined(bool(first), {roster[i].decode(): loads(roster[i + 1])
                                        for i in range(0, len(roster), 2)}))
        self.answered.set_result(None)

"""Counts in Redis: never on the hot path. Every node keeps its sockets in memory and a flush
task writes the counts that changed to the node's own hash per app; the API reads them back as a
sum over live nodes, and the connection cap reads the other nodes' sockets."""

from __future__ import annotations

from collections.abc import Mapping

from shared.channels import SERVER_TO_USER_PREFIX, channel_type

from ..protocol.requests import (
    ChannelCounts,
    Unavailable,
)
from ..protocol.state import AppState
from .base import Deliver
from .redis_state_base import Failure, RedisStateBase


def _subscriptions(app: AppState, name: str) -> int:
    channel = app.channels.get(name)
    return channel.subscription_count if channel is not None else 0


def counts_snapshot(app: AppState) -> dict[str, int]:
    """What a node writes for ``app``: its sockets, and subscriptions by ``s:<channel>``."""
    snapshot = {f"s:{name}": channel.subscription_count for name, channel in app.channels.items()
                if channel.subscription_count}
    if app.connection_count:
        snapshot["connections"] = app.connection_count
    return snapshot



class RedisCounts(RedisStateBase):
    """Subscription and connection counts across the cluster, and the connection cap."""

    # --- counts --------------------------------------------------------------------------

    async def _other_nodes(self) -> list[str]:
        assert self._redis is not None, "RedisState counts before start()"
        live = await self._redis.zrangebyscore(self.nodes_key, "(0", "+inf")
        return [node for node in (n.decode() for n in live) if node != self.incarnation]

    async def channel_counts(
        self, app_id: str, names: tuple[str, ...] | None = None
    ) -> dict[str, ChannelCounts] | Unavailable:
        app = self.apps.get(app_id)
        if app is None:
            local: dict[str, int] = {}
        elif names is None:
            local = counts_snapshot(app)
        else:  # only the channels asked for, not every channel of the node
            local = {f"s:{name}": _subscriptions(app, name) for name in names}
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

    async def refresh_caps(self) -> bool:
        """Read how many sockets each capped app has on the other nodes, for its connection cap
        (``AppState.is_full``): the cap holds cluster-wide, as of the last flush interval.
        True: Redis answered for every capped app, and there was one."""
        reached = False
        for app in self.apps.values():
            if app.config.max_connections is None:
                continue
            total = await self.connection_count(app.id)
            if isinstance(total, Unavailable):
                return False
            app.connections_elsewhere = max(0, total - app.connection_count)
            reached = True
        return reached

    def attach(self, apps: Mapping[str, AppState], publish: Deliver) -> None:
        super().attach(apps, publish)
        for app in apps.values():  # channels tell which counts changed: flushes write only those
            app.recounted = set()

    async def flush_counts(self) -> bool:
        """Write what changed in this node's counts since the last flush (absolute values):
        the channels whose count changed, not every channel (100,000 of them took 40 ms).
        True: there was a change, and Redis took it."""
        assert self._redis is not None, "RedisState.flush_counts before start()"
        async with self._shared():
            changes = {app_id: self._count_changes(app) for app_id, app in self.apps.items()}
            changes = {app_id: change for app_id, change in changes.items() if any(change)}
            if not changes:
                return False
            async with self._redis.pipeline(transaction=False) as pipe:
                for app_id, (updates, gone) in changes.items():
                    key = self._counts_key(app_id, self.incarnation)
                    if updates:
                        pipe.hset(key, mapping=updates)
                        pipe.sadd(self._node_key(self.incarnation, "apps"), app_id)
                    if gone:
                        pipe.hdel(key, *gone)
                try:
                    await pipe.execute()
                except Failure:
                    self._recount(changes)
                    raise
            for app_id, (updates, gone) in changes.items():
                flushed = self._flushed.setdefault(app_id, {})
                flushed.update(updates)
                for field in gone:
                    del flushed[field]
        return True

    def _recount(self, changes: dict[str, tuple[dict[str, int], list[str]]]) -> None:
        """Mark the channels of unwritten ``changes`` changed again, for the next flush (the
        connection count is compared with what was last written anyway)."""
        for app_id, (updates, gone) in changes.items():
            app = self.apps.get(app_id)
            if app is not None and app.recounted is not None:
                app.recounted.update(field[2:] for field in (*updates, *gone)
                                     if field.startswith("s:"))

    def _count_changes(self, app: AppState) -> tuple[dict[str, int], list[str]]:
        """The counts of ``app`` to write (field -> count) and to delete since the last flush;
        its set of changed channels is emptied."""
        before = self._flushed.get(app.id, {})
        now: dict[str, int] = {f"s:{name}": count for name in app.recounted or ()
                               if (count := _subscriptions(app, name))}
        gone = [f"s:{name}" for name in app.recounted or () if f"s:{name}" not in now
                and f"s:{name}" in before]
        if app.recounted:
            app.recounted.clear()
        if app.connection_count:
            now["connections"] = app.connection_count
        elif "connections" in before:
            gone.append("connections")
        return {f: n for f, n in now.items() if before.get(f) != n}, gone


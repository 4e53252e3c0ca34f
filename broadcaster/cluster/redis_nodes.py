"""Node liveness in Redis. Every node registers an *incarnation* (its node id and a random
tag) in ``nodes``, a sorted set of expiries on Redis's clock, pushed forward by a heartbeat. A
reaper on any node claims expired incarnations and removes their sockets, counts and registry. A
node that finds its incarnation gone (reaped while frozen, or Redis restarted empty) re-registers
under a new one, rejoins every presence socket it holds, then removes the old incarnation's
leftovers: users may flap, but no ghost remains."""

from __future__ import annotations

import re

from shared.redis_modes import redacted

from ..protocol.requests import (
    LeavePresence,
)
from .redis_presence import member_removed
from .redis_state_base import NO_CAP, RedisStateBase, ScriptBatch, logger


class RedisNodes(RedisStateBase):
    """This node's registration, its heartbeat, and the reaper of dead nodes."""

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

    async def heartbeat(self) -> bool:
        """Push this node's expiry forward; re-register if it was lost; retry orphan leaves.
        True: Redis answered."""
        if self._must_register or not await self._register(self.incarnation, register=False):
            await self._reregister()
        if self._orphans:
            async with self._exclusive():
                for key, (field, request) in list(self._orphans.items()):
                    if await self._leave_script(self._redis, request, field):
                        self.member_changed(request.app_id, request.channel, request.user_id,
                                            False)  # its webhook too, late as it is
                    del self._orphans[key]
        return True

    async def _reregister(self) -> None:
        """Register a new incarnation with everything this node holds, then drop the old one."""
        logger.warning("node %s is not registered in Redis at %s (reaped, or Redis lost its "
                       "data): re-registering its sockets", self.incarnation, redacted(self.url))
        async with self._exclusive():
            self._must_register = True
            self._stale.add(self.incarnation)
            self.incarnation = self._new_incarnation()
            self._flushed = {}
            for app in self.apps.values():  # the new incarnation writes every count again
                if app.recounted is not None:
                    app.recounted.update(app.channels)
            await self._register(self.incarnation)
            self._registered = set()
            batch = ScriptBatch(self._redis)
            for request in self._joined.values():
                await batch.add(self._join_script(batch.client, request, NO_CAP, b""))
            await batch.results()
            for incarnation in list(self._stale):
                await self._remove_node(incarnation)
                self._stale.discard(incarnation)
            self._must_register = False
        await self.flush_counts()

    async def reap_dead_nodes(self) -> bool:
        """Remove every node whose heartbeat expired, if no other node's reaper runs now.
        True: Redis answered."""
        assert self._redis is not None, "RedisState.reap_dead_nodes before start()"
        lock = f"{self.prefix}:reaper"
        if not await self._redis.set(lock, self.incarnation, nx=True,
                                     px=int(self.reap_interval * 1000)):
            return True
        for node in await self._scripts["reap_dead_nodes"](keys=[self.nodes_key]):
            node = node.decode()
            if node != self.incarnation:  # this node's own: its heartbeat re-registers it
                logger.warning("node %s stopped its heartbeat: removing its sockets", node)
                await self._remove_node(node)
        return True

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
            batch = ScriptBatch(self._redis)
            async for field, user in self._redis.hscan_iter(sockets, match=pattern):
                user_id = user.decode()
                request = LeavePresence(app_id, channel, "", user_id,
                                        member_removed(app_id, channel, user_id))
                await batch.add(self._leave_script(batch.client, request, field.decode()))
                users.append(user_id)
            for user_id, last in zip(users, await batch.results(), strict=True):
                if last:  # this reaper decided the user's last socket
                    self.member_changed(app_id, channel, user_id, False)
        apps = self._node_key(incarnation, "apps")
        counts = [self._counts_key(app.decode(), incarnation)
                  for app in await self._redis.smembers(apps)]
        await self._redis.delete(presence, apps, *counts)
        await self._redis.zrem(self.nodes_key, incarnation)



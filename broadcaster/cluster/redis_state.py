"""Cluster state in Redis, by concern: presence (:mod:`.redis_presence`), counts and caps
(:mod:`.redis_counts`), node liveness (:mod:`.redis_nodes`), on what they share
(:mod:`.redis_state_base`); here, what is left: requests as they come in, cache channels' last
events, rosters and history, read as they are."""

from __future__ import annotations

from typing import Any

from shared.payloads import loads

from ..protocol.history import EMPTY, Window
from ..protocol.requests import (
    Cached,
    FetchCache,
    JoinPresence,
    ReadHistory,
    Request,
    SignIn,
    Unavailable,
)
from .base import Reply
from .redis_bus import cache_key, history_keys
from .redis_counts import RedisCounts, counts_snapshot
from .redis_nodes import RedisNodes
from .redis_presence import RedisPresence, member_removed, online_join, watched
from .redis_state_base import MAX_IN_FLIGHT, NO_CAP, SCRIPTS, Failure

__all__ = ["Failure", "MAX_IN_FLIGHT", "NO_CAP", "SCRIPTS", "RedisState", "counts_snapshot",
           "member_removed", "online_join", "watched"]


class RedisState(RedisPresence, RedisCounts, RedisNodes):
    """Cluster state shared through the Redis at ``url``; member events go out on ``bus``
    (the timings are :class:`~.redis_state_base.RedisStateBase`'s)."""

    async def _run(self, request: Request, reply: Reply) -> None:
        """One submitted request; at most MAX_IN_FLIGHT at once (1,000 sockets closing at once
        wait their turn rather than fail on an exhausted connection pool)."""
        async with self._slots:
            if isinstance(request, JoinPresence):
                await self._join(request, reply)
            elif isinstance(request, SignIn):
                await self._join(online_join(request), lambda answer: reply(watched(answer)))
            else:
                await super()._run(request, reply)

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


"""The single-process webhook queue: occupancy is this process's, delivery a deque."""

from __future__ import annotations

import asyncio
import itertools
from collections import deque

from .base import WebhookEvent, WebhookQueue


class LocalWebhookQueue(WebhookQueue):
    """Everything in memory; the Python reading of :mod:`.redis_queue`'s scripts."""

    def __init__(self, **options: float) -> None:
        super().__init__(**options)
        self._held: dict[str, str] = {}
        self._tokens = itertools.count()
        self._ready: deque[WebhookEvent] = deque()
        self._arrived = asyncio.Event()

    async def start(self) -> None:
        """Nothing to connect to."""

    async def stop(self) -> None:
        """Nothing to disconnect from."""

    async def maintain(self) -> None:
        """Nothing is lost in memory, and no other node can die."""

    async def occupancy(self, app_id: str, channel: str, opened: bool) -> bool:
        return True  # this process is the cluster

    def unsettled(self) -> int:
        return super().unsettled() + len(self._ready)

    async def count_due(self, event: WebhookEvent, now_ms: int) -> float | None:
        return 0  # this process is the cluster: its own throttle paced the count

    async def hold(self, key: str) -> str:
        token = self._held[key] = str(next(self._tokens))
        return token

    async def resume(self, key: str) -> bool:
        return self._held.pop(key, None) is not None

    async def release(self, event: WebhookEvent, token: str) -> bool:
        """One task decides everything here and nothing is lost: a re-occupation always finds
        the hold, so a missing hold means cancelled (``release.lua`` also checks the channel,
        as Redis may have lost the hold)."""
        if self._held.get(event.window_key) != token:
            return False
        del self._held[event.window_key]
        return True

    async def push(self, event: WebhookEvent) -> bool:
        if len(self._ready) >= self.max_pending:
            return False
        self._ready.append(event)
        self._arrived.set()
        return True

    async def pop(self, limit: int, wait: bool = True) -> list[WebhookEvent]:
        while wait and not self._ready:
            self._arrived.clear()
            await self._arrived.wait()
        return [self._ready.popleft() for _ in range(min(limit, len(self._ready)))]

    async def done(self, events: list[WebhookEvent]) -> None:
        """Nothing leased in memory: popped is gone."""

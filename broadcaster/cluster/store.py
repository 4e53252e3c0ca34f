"""What the HTTP API asks besides the cluster state: a decision kept in one place for the whole
cluster (idempotency keys, API call budgets), with a local twin and a Redis twin.

As with :class:`~.base.ClusterState`, the local twin answers before :meth:`Store.submit`
returns (no task, no suspension) and the Redis twin later, from a task; an outage is an
:class:`~broadcaster.protocol.requests.Unavailable` answer, which the API turns into a 503.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from typing import Any

from ..protocol.requests import Answer
from .base import Reply


class Store(ABC):
    """Answers one kind of request for the whole cluster."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()  # requests in flight on an async backend

    @abstractmethod
    async def start(self) -> None:
        """Connect to whatever keeps the state."""

    @abstractmethod
    async def stop(self) -> None:
        """Disconnect from whatever keeps the state."""

    def submit(self, request: Any, reply: Reply) -> None:
        """Decide ``request`` and call ``reply(answer)``: later, from a task, on an async
        backend. The local twin overrides this to reply before returning."""
        task = asyncio.get_running_loop().create_task(self._run(request, reply))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, request: Any, reply: Reply) -> None:
        reply(await self.decide(request))

    @abstractmethod
    async def decide(self, request: Any) -> Answer:
        """The answer to ``request``."""

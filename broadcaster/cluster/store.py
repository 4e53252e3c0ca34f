"""What the HTTP API asks besides the cluster state: a decision kept in one place for the whole
cluster (idempotency keys, API call budgets), with a local twin and a Redis twin.

As with :class:`~.base.ClusterState`, the local twin answers before :meth:`Store.submit`
returns (no task, no suspension) and the Redis twin later, from a task; an outage is an
:class:`~broadcaster.protocol.requests.Unavailable` answer, which the API turns into a 503.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from importlib.resources import files
from typing import Any

from redis.asyncio import Redis, RedisCluster
from redis.commands.core import AsyncScript

from shared.redis_modes import async_client, failure, parse_redis_url

from ..config import redacted
from ..protocol.requests import Answer, Unavailable
from .base import Reply
from .redis_state import Failure


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


class RedisStore(Store):
    """A store's Redis twin: one client on ``url`` and one Lua script, ``lua/<script>.lua``,
    that makes the decision; its keys start with ``prefix``."""

    script = ""  # the Lua file's name, without .lua
    needs = ""  # what needs Redis, for the Unavailable answer: "idempotency keys need it"

    def __init__(self, url: str, prefix: str = "resound", timeout: float = 5.0) -> None:
        super().__init__()
        self.url, self.prefix, self.timeout = url, prefix, timeout
        self._redis: Redis | RedisCluster | None = None
        self._decide: AsyncScript | None = None

    async def start(self) -> None:
        self._redis = async_client(parse_redis_url(self.url),
                                   socket_connect_timeout=self.timeout,
                                   socket_timeout=self.timeout)
        lua = files(__package__).joinpath("lua", f"{self.script}.lua").read_text()
        self._decide = self._redis.register_script(lua)

    async def stop(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = self._decide = None

    async def run_script(self, keys: list[str], args: list[Any]) -> Any:
        """The script's answer, or an :class:`Unavailable` naming the cause and what needs it."""
        if self._decide is None:
            return Unavailable(f"not connected to Redis yet ({self.needs}); start the server "
                               "first")
        try:
            return await self._decide(keys=keys, args=args)
        except Failure as exc:
            return Unavailable(f"Redis at {redacted(self.url)} is unreachable: {failure(exc)}; "
                               f"{self.needs}; retry later")

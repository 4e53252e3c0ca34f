"""Each app's budget of HTTP API calls (``api_rate_limit`` a second, bursts of as many).

The API asks a :class:`~broadcaster.protocol.requests.CountApiCall` for every call of an app
that has a limit and answers 429 when it is over. On one process the budget is this process's
(:class:`LocalApiLimits`: a token bucket per app, answered before ``submit`` returns, so one
process pays nothing more); with scaling it is the cluster's (:class:`RedisApiLimits`: the same
bucket in Redis, ``lua/count_api_call.lua`` on ``<prefix>:{<app>}:api-calls``, one key under the
app's hash tag, so it works on Redis Cluster). Redis unreachable: an ``Unavailable`` answer,
which the API turns into a 503.
"""

from __future__ import annotations

import time
from abc import abstractmethod
from collections.abc import Callable
from importlib.resources import files

from redis.asyncio import Redis, RedisCluster
from redis.commands.core import AsyncScript

from shared.redis_modes import async_client, parse_redis_url

from ..config import redacted
from ..protocol.ratelimit import TokenBucket
from ..protocol.requests import ApiCallCounted, CountApiCall, Unavailable
from .base import Reply
from .redis_state import Failure
from .store import Store


class ApiLimits(Store):
    """Counts API calls against each app's limit."""

    @abstractmethod
    async def decide(self, request: CountApiCall) -> ApiCallCounted | Unavailable:
        """Whether the call is within the app's limit."""


class LocalApiLimits(ApiLimits):
    """The budgets of this process: a token bucket per app, on ``clock``."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.clock = clock
        self._buckets: dict[str, TokenBucket] = {}

    async def start(self) -> None:
        """Nothing to connect to."""

    async def stop(self) -> None:
        """Nothing to disconnect from."""

    def submit(self, request: CountApiCall, reply: Reply) -> None:
        """Answer before returning: one process never waits for its own budget."""
        reply(self.answer(request))

    def answer(self, request: CountApiCall) -> ApiCallCounted:
        now = self.clock()
        bucket = self._buckets.get(request.app_id)
        if bucket is None or bucket.rate != request.rate:
            bucket = self._buckets[request.app_id] = TokenBucket(request.rate, now)
        if bucket.allow(now):
            return ApiCallCounted(True)
        return ApiCallCounted(False, bucket.retry_after())

    async def decide(self, request: CountApiCall) -> ApiCallCounted:
        return self.answer(request)


class RedisApiLimits(ApiLimits):
    """The budgets of every node, in the Redis at ``url``, on Redis's clock."""

    def __init__(self, url: str, prefix: str = "resound", timeout: float = 5.0) -> None:
        super().__init__()
        self.url, self.prefix, self.timeout = url, prefix, timeout
        self._redis: Redis | RedisCluster | None = None
        self._count: AsyncScript | None = None

    def key(self, app_id: str) -> str:
        """The Redis hash holding app ``app_id``'s bucket."""
        return f"{self.prefix}:{{{app_id}}}:api-calls"

    async def start(self) -> None:
        self._redis = async_client(parse_redis_url(self.url),
                                   socket_connect_timeout=self.timeout,
                                   socket_timeout=self.timeout)
        script = files(__package__).joinpath("lua", "count_api_call.lua").read_text()
        self._count = self._redis.register_script(script)

    async def stop(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = self._count = None

    async def decide(self, request: CountApiCall) -> ApiCallCounted | Unavailable:
        if self._count is None:
            return Unavailable("API rate limits are not started; start the server first")
        try:
            allowed, wait_ms = await self._count(keys=[self.key(request.app_id)],
                                                 args=[request.rate])
        except Failure as exc:
            what = str(exc) or type(exc).__name__
            return Unavailable(f"Redis at {redacted(self.url)} is unreachable: {what}; the "
                               "app's API rate limit needs it; retry later")
        return ApiCallCounted(True) if allowed == 1 else ApiCallCounted(False, wait_ms / 1000)

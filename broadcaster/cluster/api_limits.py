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

from ..protocol.ratelimit import TokenBucket
from ..protocol.requests import ApiCallCounted, CountApiCall, Unavailable
from .base import Reply
from .store import RedisStore, Store


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


class RedisApiLimits(RedisStore, ApiLimits):
    """The budgets of every node, in the Redis at ``url``, on Redis's clock."""

    script = "count_api_call"
    needs = "the app's API rate limit needs it"

    def key(self, app_id: str) -> str:
        """The Redis hash holding app ``app_id``'s bucket."""
        return f"{self.prefix}:{{{app_id}}}:api-calls"

    async def decide(self, request: CountApiCall) -> ApiCallCounted | Unavailable:
        answer = await self.run_script([self.key(request.app_id)], [request.rate])
        if isinstance(answer, Unavailable):
            return answer
        allowed, wait_ms = answer
        return ApiCallCounted(True) if allowed == 1 else ApiCallCounted(False, wait_ms / 1000)

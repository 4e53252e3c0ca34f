"""The per-app limit on HTTP API calls (``api_rate_limit`` per second), answered with 429.

Pure: the caller passes the clock. Each process counts its own calls, so with ``--workers`` or
several nodes an app may make up to that many calls per second on each.
"""

from __future__ import annotations

import math

from ..config import AppConfig
from ..protocol.ratelimit import TokenBucket
from .http import HttpResponse, error_response


class ApiRateLimits:
    """Every app's budget of API calls in this process: a token bucket per app that has one."""

    def __init__(self) -> None:
        self._buckets: dict[str, TokenBucket] = {}

    def refusal(self, app: AppConfig, now: float) -> HttpResponse | None:
        """Count one call of ``app``; a 429 with ``Retry-After`` if it is over its limit."""
        rate = app.api_rate_limit
        if rate is None:
            return None
        bucket = self._buckets.get(app.id)
        if bucket is None:
            bucket = self._buckets[app.id] = TokenBucket(rate, now)
        if bucket.allow(now):
            return None
        response = error_response(429, f"app {app.id} may make {rate:g} HTTP API calls per "
                                       "second; retry after the time in Retry-After")
        response.headers.append(("Retry-After", str(max(1, math.ceil(bucket.retry_after())))))
        return response

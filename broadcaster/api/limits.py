"""The per-app limit on HTTP API calls (``api_rate_limit`` a second), answered with 429.

Pure: the router asks a :class:`~broadcaster.protocol.requests.CountApiCall` of each call of an
app that has a limit (the API limits store counts it, for the whole cluster when scaled) and
runs the endpoint once the answer says the call is within it.
"""

from __future__ import annotations

import math

from ..config import AppConfig
from .http import HttpResponse, error_response


def over_limit(app: AppConfig, retry_after: float) -> HttpResponse:
    """429 with ``Retry-After`` (whole seconds, at least 1) for a call of ``app`` over its limit."""
    response = error_response(429, f"app {app.id} may make {app.api_rate_limit:g} HTTP API calls "
                                   "per second; retry after the time in Retry-After")
    response.headers.append(("Retry-After", str(max(1, math.ceil(retry_after)))))
    return response

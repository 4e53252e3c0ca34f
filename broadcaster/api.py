"""The HTTP API router: ``/up``, and the signed Pusher API under ``/apps/{app_id}``.

The listener calls :func:`handle` for every request that is not a WebSocket upgrade.
"""

from __future__ import annotations

from typing import Any

from .http import HttpRequest, HttpResponse, error_response, json_response


def handle(server: Any, request: HttpRequest) -> HttpResponse:
    """Answer one HTTP request. Never raises: every failure is a JSON error response."""
    if request.path == "/up":
        return json_response(200, {"health": "OK"})
    return error_response(404, f"no route for {request.method} {request.path}")

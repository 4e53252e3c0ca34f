"""The HTTP API router: ``/up``, and the signed Pusher API under ``/apps/{app_id}``.

The listener calls :func:`handle` for every request that is not a WebSocket upgrade. The router
finds the route, the app and checks the signature; :mod:`~broadcaster.api.endpoints`
does the work.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

from shared.signatures import RequestAuthError, verify_request

from ..protocol.state import AppState
from . import endpoints
from .host import ApiHost
from .http import HttpRequest, HttpResponse, error_response, json_response
from .queries import Query
from .validation import ApiError, parse_query

log = logging.getLogger(__name__)

Endpoint = Callable[..., HttpResponse | Query]

# (path pattern after the optional REVERB_SERVER_PATH prefix, method, endpoint)
_ROUTES: tuple[tuple[re.Pattern[str], str, Endpoint], ...] = (
    (re.compile(r"/apps/(?P<app_id>[^/]+)/events"), "POST", endpoints.trigger_events),
    (re.compile(r"/apps/(?P<app_id>[^/]+)/batch_events"), "POST", endpoints.trigger_batch),
    (re.compile(r"/apps/(?P<app_id>[^/]+)/channels"), "GET", endpoints.channels),
    (re.compile(r"/apps/(?P<app_id>[^/]+)/channels/(?P<channel>[^/]+)"), "GET",
     endpoints.channel),
    (re.compile(r"/apps/(?P<app_id>[^/]+)/channels/(?P<channel>[^/]+)/users"), "GET",
     endpoints.channel_users),
    (re.compile(r"/apps/(?P<app_id>[^/]+)/users/(?P<user_id>[^/]+)/terminate_connections"),
     "POST", endpoints.terminate_user),
    # The official Python SDK (pusher 3.3.4) leaves out /apps/{app_id}; the app comes from
    # auth_key instead.
    (re.compile(r"/users/(?P<user_id>[^/]+)/terminate_connections"), "POST",
     endpoints.terminate_user),
    (re.compile(r"/apps/(?P<app_id>[^/]+)/connections"), "GET", endpoints.connections),
)


def handle(server: ApiHost, request: HttpRequest) -> HttpResponse | Query:
    """Answer one HTTP request, or say what to ask the cluster state to answer it (a
    :class:`Query`); every refusal is a JSON error naming what was wrong.

    An unexpected exception propagates to the listener, which logs it and answers 500.
    """
    try:
        return _route(server, request)
    except ApiError as exc:
        log.debug("%s %s -> %d: %s", request.method, request.path, exc.status, exc.reason)
        return error_response(exc.status, exc.reason)


def _route(server: ApiHost, request: HttpRequest) -> HttpResponse | Query:
    config = server.config
    path = _strip_prefix(config.path, request.path)
    if "/up" in (path, request.path):  # health checks work with or without the prefix
        if request.method not in ("GET", "HEAD"):
            raise ApiError(405, f"/up answers GET, not {request.method}")
        return json_response(200, {"health": "OK"})
    for pattern, method, endpoint in _ROUTES:
        match = pattern.fullmatch(path)
        if match is None:
            continue
        if request.method != method:
            raise ApiError(405, f"{request.path} answers {method}, not {request.method}")
        params = parse_query(request.query)
        fields = match.groupdict()
        app = _find_app(server, fields.pop("app_id", None), params)
        app.api_calls += 1
        app.api_bytes_in += len(request.body)
        try:
            verify_request(app.key, app.secret, request.method, request.path, params,
                           request.body)
        except RequestAuthError as exc:
            raise ApiError(401, str(exc)) from None
        return endpoint(server, app, params, request.body, **fields)
    raise ApiError(404, f"no route for {request.method} {request.path}")


def _strip_prefix(prefix: str, path: str) -> str:
    """The path under ``REVERB_SERVER_PATH``; outside it, nothing matches."""
    if not prefix:
        return path
    if path.startswith(prefix + "/"):
        return path[len(prefix):]
    return ""


def _find_app(server: ApiHost, app_id: str | None, params: dict[str, str]) -> AppState:
    if app_id is None:
        app = server.app_by_key(params.get("auth_key", ""))
        if app is None:
            raise ApiError(401, "auth_key is not the key of any app on this server")
        return app
    app = server.app_by_id(app_id)
    if app is None:
        raise ApiError(404, f"no app with id {app_id!r} on this server; check the app id")
    return app

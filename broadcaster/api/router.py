"""The HTTP API router: ``/up`` (alive), ``/ready`` (ready for traffic), and the signed Pusher
API under ``/apps/{app_id}``.

The listener calls :func:`handle` for every request that is not a WebSocket upgrade. The router
finds the route, the app and checks the signature; :mod:`~broadcaster.api.endpoints`
does the work.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

from shared.signatures import RequestAuthError, verify_body_md5, verify_request_head

from ..protocol.requests import Answer, ApiCallCounted, CountApiCall
from ..protocol.state import AppState
from . import endpoints, history
from .host import ApiHost
from .http import HttpRequest, HttpResponse, error_response, json_response
from .limits import over_limit
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
    (re.compile(r"/apps/(?P<app_id>[^/]+)/channels/(?P<channel>[^/]+)/events"), "GET",
     history.channel_events),
    (re.compile(r"/apps/(?P<app_id>[^/]+)/users/(?P<user_id>[^/]+)/terminate_connections"),
     "POST", endpoints.terminate_user),
    # The official Python SDK (pusher 3.3.4) leaves out /apps/{app_id}; the app comes from
    # auth_key instead.
    (re.compile(r"/users/(?P<user_id>[^/]+)/terminate_connections"), "POST",
     endpoints.terminate_user),
    (re.compile(r"/apps/(?P<app_id>[^/]+)/connections"), "GET", endpoints.connections),
)


@dataclass(frozen=True, slots=True)
class SignedHead:
    """A signed API request whose head verified (:func:`check_head`): what to run once its
    body is in, and the query its ``body_md5`` is read from."""

    endpoint: Endpoint
    app: AppState
    params: dict[str, str]
    fields: dict[str, str]


def handle(server: ApiHost, request: HttpRequest,
           head: SignedHead | None = None) -> HttpResponse | Query:
    """Answer one HTTP request, or say what to ask the cluster state to answer it (a
    :class:`Query`); every refusal is a JSON error naming what was wrong.

    ``head``: what :func:`check_head` said of this request's head, when the listener asked it
    before reading the body; then only ``body_md5`` remains to check. An unexpected exception
    propagates to the listener, which logs it and answers 500.
    """
    return _refusing(request, partial(_route, server, request, head))


def _refusing(request: HttpRequest,
              run: Callable[[], HttpResponse | Query]) -> HttpResponse | Query:
    """``run()``'s answer, or the JSON error of the :class:`ApiError` it raised."""
    try:
        return run()
    except ApiError as exc:
        log.debug("%s %s -> %d: %s", request.method, request.path, exc.status, exc.reason)
        return error_response(exc.status, exc.reason)


def check_head(server: ApiHost, method: str, path: str, query: str,
               has_body: bool) -> HttpResponse | SignedHead | None:
    """What a request's head alone says: its refusal, or the verified head of a signed API
    request, or None for what is not signed (``/up``, ``/ready``).

    The listener asks it once the head of a request with a body is in, so that no body is read
    for an unknown route or app, a wrong key, a stale timestamp or a bad signature: the
    signature covers the query, ``body_md5`` included, so only the body's MD5 is left to check.
    """
    if _health_check(server, path) is not None:
        return None  # answered at once whatever the body: nothing to buffer for long
    try:
        return _signed_head(server, method, path, query, has_body)
    except ApiError as exc:
        return error_response(exc.status, exc.reason)


def _signed_head(server: ApiHost, method: str, path: str, query: str,
                 has_body: bool) -> SignedHead:
    endpoint, app, params, fields = _match(server, method, path, query)
    app.api_calls += 1  # refused or not
    _verify(app, method, path, _strip_prefix(server.config.path, path), params, has_body)
    return SignedHead(endpoint, app, params, fields)


def _route(server: ApiHost, request: HttpRequest, head: SignedHead | None) -> HttpResponse | Query:
    check = _health_check(server, request.path)
    if check is not None:
        if request.method not in ("GET", "HEAD"):
            raise ApiError(405, f"{check} answers GET, not {request.method}")
        return json_response(200, {"health": "OK"}) if check == "/up" else _ready(server)
    if head is None:
        head = _signed_head(server, request.method, request.path, request.query,
                            bool(request.body))
    app = head.app
    app.api_bytes_in += len(request.body)
    try:
        verify_body_md5(head.params, request.body)
    except RequestAuthError as exc:
        raise ApiError(401, str(exc)) from None
    run = partial(head.endpoint, server, app, head.params, request.body, request.headers,
                  **head.fields)
    rate = app.config.api_rate_limit
    if rate is None:
        return run()
    return Query((CountApiCall(app.id, rate),), partial(_within_limit, request, app, run))


def _within_limit(request: HttpRequest, app: AppState, run: Callable[[], HttpResponse | Query],
                  answers: Sequence[Answer]) -> HttpResponse | Query:
    """Run the endpoint if the API limits store counted the call within the app's limit."""
    counted = answers[0]
    assert isinstance(counted, ApiCallCounted)
    if not counted.allowed:
        log.info("%s %s -> 429: app %s is over its API rate limit", request.method,
                 request.path, app.id)
        return over_limit(app.config, counted.retry_after)
    return _refusing(request, run)


def _health_check(server: ApiHost, path: str) -> str | None:
    """``/up`` or ``/ready`` when ``path`` is one, with or without the prefix; else None."""
    for check in ("/up", "/ready"):
        if check in (_strip_prefix(server.config.path, path), path):
            return check
    return None


def _match(server: ApiHost, method: str, path: str,
           query: str) -> tuple[Endpoint, AppState, dict[str, str], dict[str, str]]:
    """The endpoint, app, query parameters and path fields of a signed API request; raises
    :class:`ApiError` for an unknown route, a wrong method or an unknown app."""
    route_path = _strip_prefix(server.config.path, path)
    for pattern, route_method, endpoint in _ROUTES:
        match = pattern.fullmatch(route_path)
        if match is None:
            continue
        if method != route_method:
            raise ApiError(405, f"{path} answers {route_method}, not {method}")
        params = parse_query(query)
        fields = match.groupdict()
        return endpoint, _find_app(server, fields.pop("app_id", None), params), params, fields
    raise ApiError(404, f"no route for {method} {path}")


def _ready(server: ApiHost) -> HttpResponse:
    """200 when this node takes traffic; 503 while it drains or cannot reach the others."""
    if server.draining:
        return error_response(503, "this node is shutting down; send traffic to another")
    reason = server.unavailable()
    if reason is not None:
        return error_response(503, f"not ready: {reason}")
    return json_response(200, {"ready": True})


def _verify(app: AppState, method: str, full_path: str, path: str, params: dict[str, str],
            has_body: bool) -> None:
    """Check the signature over the request's path, or over the path under
    ``REVERB_SERVER_PATH``: the SDKs sign ``/apps/...`` even when a ``path`` option prefixes it."""
    try:
        verify_request_head(app.key, app.secret, method, full_path, params, has_body)
    except RequestAuthError as exc:
        if path == full_path:
            raise ApiError(401, str(exc)) from None
        try:
            verify_request_head(app.key, app.secret, method, path, params, has_body)
        except RequestAuthError:
            raise ApiError(401, str(exc)) from None


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

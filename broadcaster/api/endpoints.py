"""The signed HTTP API's endpoints, each called with an authenticated app's live state.

The trigger path stays cheap: the body is parsed once, validated whole, then handed to the
server's ``publish`` (which encodes once and fans out); no per-subscriber work happens here.
"""

from __future__ import annotations

from typing import Any

from shared.channels import channel_name_error, channel_type
from shared.payloads import loads

from ..protocol.state import AppState
from .http import HttpResponse, json_response
from .validation import (
    CACHE,
    SUBSCRIPTION_COUNT,
    USER_COUNT,
    ApiError,
    Trigger,
    parse_batch,
    parse_info,
    parse_json_object,
    parse_trigger,
)

Params = dict[str, str]  # the decoded query string


def _counts(state: AppState, name: str, info: frozenset[str]) -> dict[str, int]:
    """The requested counts for one channel; ``user_count`` only where it applies (presence)."""
    channel = state.channel(name)
    counts: dict[str, int] = {}
    if SUBSCRIPTION_COUNT in info:
        counts[SUBSCRIPTION_COUNT] = channel.subscription_count if channel else 0
    if USER_COUNT in info and channel_type(name).is_presence:
        counts[USER_COUNT] = channel.user_count if channel else 0
    return counts


def _publish(server: Any, state: AppState, trigger: Trigger) -> None:
    server.publish(state, trigger.channels, trigger.name, trigger.data, trigger.socket_id)


def trigger_events(server: Any, state: AppState, params: Params, body: bytes) -> HttpResponse:
    """``POST events``: ``{}``, or ``{"channels": {name: counts}}`` when ``info`` asks."""
    trigger = parse_trigger(parse_json_object(body), state.config.max_message_size)
    _publish(server, state, trigger)
    if not trigger.info:
        return json_response(200, {})
    return json_response(200, {"channels": {
        name: _counts(state, name, trigger.info) for name in trigger.channels
    }})


def trigger_batch(server: Any, state: AppState, params: Params, body: bytes) -> HttpResponse:
    """``POST batch_events``: all events are validated before the first is published."""
    triggers = parse_batch(parse_json_object(body), state.config.max_message_size)
    for trigger in triggers:
        _publish(server, state, trigger)
    if not any(trigger.info for trigger in triggers):
        return json_response(200, {})
    return json_response(200, {"batch": [
        _counts(state, trigger.channels[0], trigger.info) for trigger in triggers
    ]})


def channels(server: Any, state: AppState, params: Params, body: bytes) -> HttpResponse:
    """``GET channels``: occupied channels only, optionally by prefix, with counts on request."""
    prefix = params.get("filter_by_prefix", "")
    info = parse_info(params.get("info"), {USER_COUNT, SUBSCRIPTION_COUNT})
    if USER_COUNT in info and not channel_type(prefix).is_presence:
        raise ApiError(400, "info=user_count needs filter_by_prefix=presence- (presence only)")
    return json_response(200, {"channels": {
        name: _counts(state, name, info)
        for name in state.occupied_channels()
        if name.startswith(prefix)
    }})


def _channel_name(name: str) -> str:
    error = channel_name_error(name)
    if error:
        raise ApiError(400, f"bad channel {name!r}: {error}")
    return name


def channel(
    server: Any, state: AppState, params: Params, body: bytes, channel: str
) -> HttpResponse:
    """``GET channels/{name}``: ``occupied`` plus each requested attribute that applies."""
    name = _channel_name(channel)
    kind = channel_type(name)
    info = parse_info(params.get("info"), {USER_COUNT, SUBSCRIPTION_COUNT, CACHE})
    if USER_COUNT in info and not kind.is_presence:
        raise ApiError(400, f"info=user_count applies to presence channels only, not {name!r}")
    if CACHE in info and not kind.cached:
        raise ApiError(400, f"info=cache applies to cache channels only, not {name!r}")
    result: dict[str, Any] = {"occupied": state.channel(name) is not None}
    result.update(_counts(state, name, info))
    if CACHE in info:
        cached = state.cached_event(name)
        if cached is not None:
            message = loads(cached)
            result[CACHE] = {"event": message["event"], "data": message.get("data")}
    return json_response(200, result)


def channel_users(
    server: Any, state: AppState, params: Params, body: bytes, channel: str
) -> HttpResponse:
    """``GET channels/{name}/users``: each member of a presence channel once."""
    name = _channel_name(channel)
    if not channel_type(name).is_presence:
        raise ApiError(400, f"users are listed for presence channels only, not {name!r}")
    occupied = state.channel(name)
    members = occupied.members if occupied else {}
    return json_response(200, {"users": [{"id": user_id} for user_id in members]})


def terminate_user(
    server: Any, state: AppState, params: Params, body: bytes, user_id: str
) -> HttpResponse:
    """``POST users/{id}/terminate_connections``: close every socket of that user."""
    server.terminate_user(state, user_id)
    return json_response(200, {})


def connections(server: Any, state: AppState, params: Params, body: bytes) -> HttpResponse:
    """``GET connections`` (Reverb): how many sockets the app has open."""
    return json_response(200, {"connections": state.connection_count})

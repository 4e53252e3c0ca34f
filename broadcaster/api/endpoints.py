"""The signed HTTP API's endpoints, each called with an authenticated app.

The trigger path stays cheap: the body is parsed once, validated whole, then published
through the bus (which encodes once and fans out); no per-subscriber work happens here.
Endpoints that report counts, members or a cache return a :class:`~.queries.Query`: the
numbers are the cluster's, not only this process's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from shared.channels import channel_name_error, channel_type
from shared.payloads import loads

from ..protocol.publication import TERMINATE_USER, Publication
from ..protocol.requests import (
    Answer,
    Cached,
    ChannelCounts,
    Claimed,
    ClaimKeys,
    Connections,
    CountChannels,
    CountConnections,
    Counts,
    FetchCache,
    ListMembers,
    Members,
)
from ..protocol.state import AppState
from .host import ApiHost
from .http import HttpResponse, error_response, json_response
from .queries import Query
from .validation import (
    CACHE,
    IDEMPOTENCY_HEADER,
    SUBSCRIPTION_COUNT,
    USER_COUNT,
    ApiError,
    Trigger,
    parse_batch,
    parse_idempotency_key,
    parse_info,
    parse_json_object,
    parse_trigger,
)

log = logging.getLogger(__name__)

Params = dict[str, str]  # the decoded query string
Headers = dict[str, str]  # the request's headers, lower-cased names
Result = HttpResponse | Query


def _counts(name: str, counts: ChannelCounts, info: frozenset[str]) -> dict[str, int]:
    """The requested counts for one channel; ``user_count`` only where it applies (presence)."""
    result: dict[str, int] = {}
    if SUBSCRIPTION_COUNT in info:
        result[SUBSCRIPTION_COUNT] = counts.subscriptions
    if USER_COUNT in info and channel_type(name).is_presence:
        result[USER_COUNT] = counts.users
    return result


def _counted(answer: Answer) -> dict[str, ChannelCounts]:
    assert isinstance(answer, Counts)
    return answer.channels


def _publishable(host: ApiHost) -> None:
    """Refuse with 503 when a publication could not reach every node now."""
    reason = host.unavailable()
    if reason is not None:
        raise ApiError(503, reason)


def _publish(host: ApiHost, state: AppState, trigger: Trigger) -> None:
    host.publish(Publication(state.id, trigger.channels, trigger.name, trigger.data,
                             trigger.socket_id))


def _trigger(host: ApiHost, state: AppState, triggers: Sequence[Trigger],
             counts: CountChannels | None,
             respond: Callable[[dict[str, ChannelCounts]], HttpResponse]) -> Result:
    """Publish ``triggers`` and answer ``respond(counts)``, or ``{}`` without counts.

    Without idempotency keys or counts, this answers at once: the trigger path starts no task.
    With keys, the idempotency store is asked first, and only events whose key is fresh (or
    have none) are published; a repeat is answered 200 all the same.
    """
    keys = tuple(trigger.idempotency_key for trigger in triggers)
    claim = None
    if any(key is not None for key in keys):
        claim = ClaimKeys(state.id, keys, tuple(
            "" if trigger.idempotency_key is None else trigger.fingerprint()
            for trigger in triggers))
    if claim is None:
        for trigger in triggers:
            _publish(host, state, trigger)
        if counts is None:
            return json_response(200, {})
    requests = tuple(request for request in (claim, counts) if request is not None)

    def render(answers: Sequence[Answer]) -> HttpResponse:
        if claim is not None:
            claimed = answers[0]
            assert isinstance(claimed, Claimed)
            if claimed.reused:
                return _reused(host, claimed.reused)
            for trigger, fresh in zip(triggers, claimed.fresh, strict=True):
                if fresh:
                    _publish(host, state, trigger)
                else:
                    log.debug("app %s: event %r not published again: idempotency key %r was "
                              "used within the window", state.id, trigger.name,
                              trigger.idempotency_key)
        return json_response(200, {}) if counts is None else respond(_counted(answers[-1]))

    return Query(requests, render)


def _reused(host: ApiHost, keys: Sequence[str]) -> HttpResponse:
    """422: a key stands for one event; another event under it is a client's mistake."""
    named = ", ".join(repr(key) for key in keys)
    return error_response(
        422, f"idempotency key {named} was used within the last {host.config.idempotency_window}"
        " s for a different event; a retry must send the same event, and a new event needs a "
        "new key; nothing of this request was published")


def trigger_events(host: ApiHost, state: AppState, params: Params, body: bytes,
                   headers: Headers) -> Result:
    """``POST events``: ``{}``, or ``{"channels": {name: counts}}`` when ``info`` asks."""
    key = parse_idempotency_key(headers.get(IDEMPOTENCY_HEADER), "the Idempotency-Key header")
    trigger = parse_trigger(parse_json_object(body), state.config.max_message_size,
                            idempotency_key=key)
    _publishable(host)

    def respond(counts: dict[str, ChannelCounts]) -> HttpResponse:
        return json_response(200, {"channels": {
            name: _counts(name, counts[name], trigger.info) for name in trigger.channels
        }})

    asked = CountChannels(state.id, trigger.channels) if trigger.info else None
    return _trigger(host, state, (trigger,), asked, respond)


def trigger_batch(host: ApiHost, state: AppState, params: Params, body: bytes,
                  headers: Headers) -> Result:
    """``POST batch_events``: all events are validated before the first is published."""
    triggers = parse_batch(parse_json_object(body), state.config.max_message_size)
    _publishable(host)

    def respond(counts: dict[str, ChannelCounts]) -> HttpResponse:
        return json_response(200, {"batch": [
            _counts(trigger.channels[0], counts[trigger.channels[0]], trigger.info)
            for trigger in triggers
        ]})

    names = tuple(dict.fromkeys(trigger.channels[0] for trigger in triggers))
    asked = CountChannels(state.id, names) if any(t.info for t in triggers) else None
    return _trigger(host, state, triggers, asked, respond)


def channels(host: ApiHost, state: AppState, params: Params, body: bytes,
             headers: Headers) -> Result:
    """``GET channels``: occupied channels only, optionally by prefix, with counts on request."""
    prefix = params.get("filter_by_prefix", "")
    info = parse_info(params.get("info"), {USER_COUNT, SUBSCRIPTION_COUNT})
    if USER_COUNT in info and not channel_type(prefix).is_presence:
        raise ApiError(400, "info=user_count needs filter_by_prefix=presence- (presence only)")

    def render(answers: Sequence[Answer]) -> HttpResponse:
        return json_response(200, {"channels": {
            name: _counts(name, counts, info)
            for name, counts in _counted(answers[0]).items()
            if name.startswith(prefix)
        }})

    return Query((CountChannels(state.id),), render)


def _channel_name(name: str) -> str:
    error = channel_name_error(name)
    if error:
        raise ApiError(400, f"bad channel {name!r}: {error}")
    return name


def channel(host: ApiHost, state: AppState, params: Params, body: bytes,
            headers: Headers, channel: str) -> Result:
    """``GET channels/{name}``: ``occupied`` plus each requested attribute that applies."""
    name = _channel_name(channel)
    kind = channel_type(name)
    info = parse_info(params.get("info"), {USER_COUNT, SUBSCRIPTION_COUNT, CACHE})
    if USER_COUNT in info and not kind.is_presence:
        raise ApiError(400, f"info=user_count applies to presence channels only, not {name!r}")
    if CACHE in info and not kind.cached:
        raise ApiError(400, f"info=cache applies to cache channels only, not {name!r}")

    def render(answers: Sequence[Answer]) -> HttpResponse:
        counts = _counted(answers[0])[name]
        result: dict[str, Any] = {"occupied": counts.subscriptions > 0}
        result.update(_counts(name, counts, info))
        if CACHE in info:
            cached = answers[1]
            assert isinstance(cached, Cached)
            if cached.message is not None:
                message = loads(cached.message)
                result[CACHE] = {"event": message["event"], "data": message.get("data")}
        return json_response(200, result)

    requests = (CountChannels(state.id, (name,)),)
    if CACHE in info:
        requests += (FetchCache(state.id, name),)
    return Query(requests, render)


def channel_users(host: ApiHost, state: AppState, params: Params, body: bytes,
                  headers: Headers, channel: str) -> Result:
    """``GET channels/{name}/users``: each member of a presence channel once."""
    name = _channel_name(channel)
    if not channel_type(name).is_presence:
        raise ApiError(400, f"users are listed for presence channels only, not {name!r}")

    def render(answers: Sequence[Answer]) -> HttpResponse:
        members = answers[0]
        assert isinstance(members, Members)
        return json_response(200, {"users": [{"id": user_id} for user_id in members.members]})

    return Query((ListMembers(state.id, name),), render)


def terminate_user(host: ApiHost, state: AppState, params: Params, body: bytes,
                   headers: Headers, user_id: str) -> Result:
    """``POST users/{id}/terminate_connections``: close every socket of that user."""
    _publishable(host)
    host.publish(Publication(state.id, (), "", None, user_id=user_id, kind=TERMINATE_USER))
    return json_response(200, {})


def connections(host: ApiHost, state: AppState, params: Params, body: bytes,
                headers: Headers) -> Result:
    """``GET connections`` (Reverb): how many sockets the app has open across the cluster."""

    def render(answers: Sequence[Answer]) -> HttpResponse:
        count = answers[0]
        assert isinstance(count, Connections)
        return json_response(200, {"connections": count.count})

    return Query((CountConnections(state.id),), render)

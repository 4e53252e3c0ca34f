"""``GET channels/{name}/events``: a history channel's kept events, for backends that catch up
on their own (the Laravel app, the webapp). Channels without history answer 404."""

from __future__ import annotations

from collections.abc import Sequence

from shared.payloads import loads

from ..protocol.history import MAX_READ, Window
from ..protocol.requests import Answer, ReadHistory
from ..protocol.state import AppState
from .host import ApiHost
from .http import HttpResponse, json_response
from .queries import Query
from .validation import ApiError

DEFAULT_LIMIT = 100


def _whole(params: dict[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = params.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise ApiError(400, f"{name} must be a whole number from {low} to {high}, got {raw[:40]!r}")
    return int(raw)


def _event(frame: bytes) -> dict[str, object]:
    """A kept frame as the API lists it: serial, event, data, and user_id when it has one."""
    message = loads(frame)
    event = {"serial": message["serial"], "event": message["event"], "data": message.get("data")}
    if "user_id" in message:
        event["user_id"] = message["user_id"]
    return event


def channel_events(host: ApiHost, state: AppState, params: dict[str, str], body: bytes,
                   headers: dict[str, str], channel: str) -> HttpResponse | Query:
    """The events of history channel ``channel`` after ``after`` (0), at most ``limit`` (100,
    at most 1,000), in serial order, with the latest and oldest serials kept and the epoch."""
    if state.history is None or state.history.of(channel) is None:
        raise ApiError(404, f"{channel!r} keeps no history: add a history rule matching it to "
                            "the app (apps file 'history', or RESOUND_APP_HISTORY)")
    after = _whole(params, "after", 0, 0, 2**53)
    limit = _whole(params, "limit", DEFAULT_LIMIT, 1, MAX_READ)

    def render(answers: Sequence[Answer]) -> HttpResponse:
        window = answers[0]
        assert isinstance(window, Window)
        return json_response(200, {"events": [_event(frame) for _, frame in window.frames],
                                   "latest": window.latest, "oldest": window.oldest,
                                   "epoch": window.epoch})

    return Query((ReadHistory(state.id, channel, after, limit),), render)

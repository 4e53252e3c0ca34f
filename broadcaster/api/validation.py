"""Pure parsing and validation of HTTP API requests: query strings, ``info`` lists, trigger bodies.

Everything here raises :class:`ApiError` with the HTTP status and a reason that says what was
wrong and what to do, so the router answers every bad request the same way. A whole request
(a batch included) is validated before anything is published.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from shared.channels import (
    RESERVED_EVENT_PREFIXES,
    channel_name_error,
    event_name_error,
)
from shared.payloads import JSONDecodeError, dumpb, loads
from shared.sockets import socket_id_error

MAX_CHANNELS_PER_EVENT = 100
MAX_BATCH_EVENTS = 10
SUBSCRIPTION_COUNT = "subscription_count"
USER_COUNT = "user_count"
CACHE = "cache"
TRIGGER_INFO = frozenset({SUBSCRIPTION_COUNT, USER_COUNT})
IDEMPOTENCY_HEADER = "idempotency-key"  # lower-cased, as HttpRequest.headers holds names
IDEMPOTENCY_FIELD = "idempotency_key"
MAX_IDEMPOTENCY_KEY = 200
_IDEMPOTENCY_KEY = re.compile(rf"[A-Za-z0-9._:-]{{1,{MAX_IDEMPOTENCY_KEY}}}")


class ApiError(Exception):
    """A request the API refuses: ``status`` is the HTTP code, the message the JSON reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def parse_query(query: str) -> dict[str, str]:
    """The query string as a dict; a parameter given twice is ambiguous to sign, so a 400."""
    params: dict[str, str] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name in params:
            raise ApiError(400, f"query parameter {name!r} is given more than once; give it once")
        params[name] = value
    return params


def parse_info(value: object, allowed: Collection[str]) -> frozenset[str]:
    """The attributes a comma-separated ``info`` asks for; unknown ones are a 400."""
    if value is None or value == "":
        return frozenset()
    if not isinstance(value, str):
        raise ApiError(400, "info must be a comma-separated string such as 'subscription_count'")
    wanted = frozenset(part.strip() for part in value.split(",") if part.strip())
    unknown = sorted(wanted - set(allowed))
    if unknown:
        raise ApiError(
            400, f"info asks for unknown attribute(s) {', '.join(unknown)}; "
            f"allowed here: {', '.join(sorted(allowed))}"
        )
    return wanted


def parse_json_object(body: bytes) -> dict[str, Any]:
    """The request body as a JSON object."""
    if not body:
        raise ApiError(400, "the request body is empty; send a JSON object")
    try:
        value = loads(body)
    except JSONDecodeError:
        raise ApiError(400, "the request body is not valid JSON; send a JSON object") from None
    if not isinstance(value, dict):
        raise ApiError(400, "the request body must be a JSON object")
    return value


@dataclass(frozen=True, slots=True)
class Trigger:
    """One validated event to publish: what, where, to whom not, and which counts to report."""

    name: str
    data: str
    channels: tuple[str, ...]
    socket_id: str | None
    info: frozenset[str]
    idempotency_key: str | None = None  # published only if fresh within the window

    def fingerprint(self) -> str:
        """What the event delivers, hashed: a retry under the same idempotency key must match."""
        delivered = [self.name, self.channels, self.data, self.socket_id]
        return hashlib.blake2b(dumpb(delivered), digest_size=16).hexdigest()


def _channels_of(fields: dict[str, Any], where: str) -> tuple[str, ...]:
    if "channel" in fields and "channels" in fields:
        raise ApiError(400, f"{where}give either 'channel' or 'channels', not both")
    if "channels" in fields:
        channels = fields["channels"]
        if not isinstance(channels, list) or not channels:
            raise ApiError(400, f"{where}'channels' must be a non-empty list of channel names")
    elif "channel" in fields:
        channels = [fields["channel"]]
    else:
        raise ApiError(400, f"{where}'channel' or 'channels' is required")
    if len(channels) > MAX_CHANNELS_PER_EVENT:
        limit = MAX_CHANNELS_PER_EVENT
        raise ApiError(400, f"{where}{len(channels)} channels given; at most {limit} per event")
    for channel in channels:
        error = channel_name_error(channel)
        if error:
            raise ApiError(400, f"{where}bad channel {channel!r}: {error}")
    return tuple(dict.fromkeys(channels))


def _event_name_of(fields: dict[str, Any], where: str) -> str:
    name = fields.get("name")
    error = event_name_error(name)
    if error:
        raise ApiError(400, f"{where}bad event name: {error}")
    if name.startswith(RESERVED_EVENT_PREFIXES):
        raise ApiError(
            400, f"{where}event name {name!r} uses a prefix reserved for the protocol "
            f"({', '.join(RESERVED_EVENT_PREFIXES)}); choose another name"
        )
    return name


def _data_of(fields: dict[str, Any], max_data_bytes: int, where: str) -> str:
    if "data" not in fields:
        raise ApiError(400, f"{where}'data' is required")
    data = fields["data"]
    if not isinstance(data, str):
        raise ApiError(400, f"{where}'data' must be a string; JSON-encode objects before sending")
    if len(data) > max_data_bytes or len(data.encode()) > max_data_bytes:
        raise ApiError(413, f"{where}'data' is larger than {max_data_bytes} bytes; send less")
    return data


def _socket_id_of(fields: dict[str, Any], where: str) -> str | None:
    socket_id = fields.get("socket_id")
    if socket_id is None:
        return None
    problem = socket_id_error(socket_id, "'socket_id'")
    if problem:
        raise ApiError(400, where + problem)
    return socket_id


def parse_idempotency_key(value: object, what: str) -> str | None:
    """An event's idempotency key (``what`` names where it was given), or None without one."""
    if value is None:
        return None
    if not isinstance(value, str) or not _IDEMPOTENCY_KEY.fullmatch(value):
        raise ApiError(
            400, f"{what} {value!r} is not a valid idempotency key: use 1 to "
            f"{MAX_IDEMPOTENCY_KEY} letters, digits, '.', '_', ':' or '-' (a UUID will do)"
        )
    return value


def parse_trigger(fields: object, max_data_bytes: int, where: str = "",
                  idempotency_key: str | None = None) -> Trigger:
    """Validate one event (a ``POST events`` body or one ``batch`` item).

    ``where`` prefixes error reasons, so a batch says which item was wrong. ``idempotency_key``
    is the validated key (a ``POST events``'s ``Idempotency-Key`` header).
    """
    if not isinstance(fields, dict):
        raise ApiError(400, f"{where}an event must be a JSON object")
    return Trigger(
        name=_event_name_of(fields, where),
        data=_data_of(fields, max_data_bytes, where),
        channels=_channels_of(fields, where),
        socket_id=_socket_id_of(fields, where),
        info=parse_info(fields.get("info"), TRIGGER_INFO),
        idempotency_key=idempotency_key,
    )


def parse_batch(fields: dict[str, Any], max_data_bytes: int) -> list[Trigger]:
    """Validate every event of a ``POST batch_events`` body before any is published."""
    batch = fields.get("batch")
    if not isinstance(batch, list) or not batch:
        raise ApiError(400, "'batch' must be a non-empty list of events")
    if len(batch) > MAX_BATCH_EVENTS:
        raise ApiError(400, f"{len(batch)} events given; at most {MAX_BATCH_EVENTS} per batch")
    return [_batch_item(item, max_data_bytes, f"batch[{i}]: ") for i, item in enumerate(batch)]


def _batch_item(item: object, max_data_bytes: int, where: str) -> Trigger:
    """One batch event, with the idempotency key of its ``idempotency_key`` field."""
    key = item.get(IDEMPOTENCY_FIELD) if isinstance(item, dict) else None
    return parse_trigger(item, max_data_bytes, where,
                         parse_idempotency_key(key, f"{where}'{IDEMPOTENCY_FIELD}'"))

"""JSON encoding of Pusher messages, with orjson.

In every Pusher message ``data`` is itself a JSON-encoded string; :func:`encode_message` takes
care of that so callers pass either a ready string or a value to encode.
"""

from __future__ import annotations

from typing import Any

import orjson

JSONDecodeError = orjson.JSONDecodeError


def dumps(value: Any) -> str:
    """Compact JSON text."""
    return orjson.dumps(value).decode()


def dumpb(value: Any) -> bytes:
    """Compact JSON as UTF-8 bytes."""
    return orjson.dumps(value)


def loads(text: str | bytes) -> Any:
    """Parse JSON text; raises :data:`JSONDecodeError` (a ValueError) on bad input."""
    return orjson.loads(text)


def encode_message(
    event: str,
    data: Any = None,
    channel: str | None = None,
    user_id: str | None = None,
) -> bytes:
    """One Pusher message as JSON bytes. A non-string ``data`` is JSON-encoded into a string."""
    message: dict[str, Any] = {"event": event}
    if channel is not None:
        message["channel"] = channel
    if data is not None:
        message["data"] = data if isinstance(data, str) else dumps(data)
    if user_id is not None:
        message["user_id"] = user_id
    return orjson.dumps(message)

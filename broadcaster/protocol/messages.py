"""Client frames in, typed commands out: parsing and validation of Pusher protocol messages.

Pure: a text frame becomes one command or a :class:`ProtocolError` carrying the Pusher error
code to answer with. Nothing here touches a socket.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.channels import (
    CLIENT_EVENT_PREFIX,
    RESERVED_EVENT_PREFIXES,
    channel_name_error,
    event_name_error,
)
from shared.payloads import JSONDecodeError, loads

# Pusher error codes the server sends.
UNKNOWN_APP = 4001
OVER_QUOTA = 4004
UNAUTHORIZED = 4009
SLOW_CONSUMER = 4100
GENERIC_RECONNECT = 4200
PONG_TIMEOUT = 4201
CLIENT_EVENT_RATE_LIMIT = 4301
# Pusher's 4300-4399 are "any other error": the socket stays open (unlike 4004, a close code
# for a whole app over quota). 4301 is Pusher's refusal of one client request over a limit;
# 4302 is the same for a subscription past the per-socket cap.
SUBSCRIPTION_LIMIT = 4302


class ProtocolError(Exception):
    """A client message the server cannot act on; ``code`` is the Pusher error code to send."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Ping:
    pass


@dataclass(frozen=True, slots=True)
class Pong:
    pass


@dataclass(frozen=True, slots=True)
class Subscribe:
    channel: str
    auth: str | None
    channel_data: str | None


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    channel: str


@dataclass(frozen=True, slots=True)
class Signin:
    auth: str
    user_data: str


@dataclass(frozen=True, slots=True)
class ClientEvent:
    event: str
    channel: str
    data: Any


@dataclass(frozen=True, slots=True)
class Resume:
    """``resound:resume``: replay history channel ``channel``'s events after serial ``after``
    (of ``epoch``, when the client knows it)."""

    channel: str
    after: int
    epoch: str | None


RESUME = "resound:resume"
Command = Ping | Pong | Subscribe | Unsubscribe | Signin | ClientEvent | Resume


def _bad(message: str) -> ProtocolError:
    return ProtocolError(GENERIC_RECONNECT, message)


def _data_object(event: str, data: Any) -> dict[str, Any]:
    """``data`` of a ``pusher:`` command as an object (pusher-js sends one; a JSON string works)."""
    if isinstance(data, str):
        try:
            data = loads(data)
        except JSONDecodeError:
            raise _bad(f"{event}: data must be a JSON object") from None
    if not isinstance(data, dict):
        raise _bad(f"{event}: data must be a JSON object")
    return data


def _string_field(event: str, data: dict[str, Any], name: str, required: bool = True) -> Any:
    value = data.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise _bad(f"{event}: data.{name} must be a string")
    return value


def _channel(event: str, data: dict[str, Any]) -> str:
    channel = _string_field(event, data, "channel")
    error = channel_name_error(channel)
    if error:
        raise _bad(f"{event}: {error}")
    return channel


def parse_message(text: str | bytes) -> Command:
    """The command a client text frame holds; raises ProtocolError for anything else."""
    try:
        message = loads(text)
    except JSONDecodeError:
        raise _bad("message is not valid JSON; send {\"event\": ..., \"data\": ...}") from None
    if not isinstance(message, dict):
        raise _bad("message must be a JSON object with an 'event' field")
    event = message.get("event")
    if not isinstance(event, str):
        raise _bad("message needs an 'event' field holding a string")
    data = message.get("data")
    if event == "pusher:ping":
        return Ping()
    if event == "pusher:pong":
        return Pong()
    if event == "pusher:subscribe":
        fields = _data_object(event, data)
        return Subscribe(
            channel=_channel(event, fields),
            auth=_string_field(event, fields, "auth", required=False),
            channel_data=_string_field(event, fields, "channel_data", required=False),
        )
    if event == "pusher:unsubscribe":
        return Unsubscribe(_channel(event, _data_object(event, data)))
    if event == "pusher:signin":
        fields = _data_object(event, data)
        return Signin(
            auth=_string_field(event, fields, "auth"),
            user_data=_string_field(event, fields, "user_data"),
        )
    if event == RESUME:
        return _resume(_data_object(event, data))
    if event.startswith(RESERVED_EVENT_PREFIXES):
        raise _bad(f"unknown event {event[:200]!r}; clients may send only the pusher: commands")
    if not event.startswith(CLIENT_EVENT_PREFIX):
        raise _bad(f"event {event[:200]!r} is not a client event; name it 'client-...'")
    error = event_name_error(event)
    if error:
        raise _bad(error)
    channel = message.get("channel")
    if not isinstance(channel, str) or channel_name_error(channel):
        raise _bad(f"{event}: 'channel' must name a channel the socket is subscribed to")
    return ClientEvent(event=event, channel=channel, data=data)


def _resume(data: dict[str, Any]) -> Resume:
    after = data.get("after")
    if not isinstance(after, int) or isinstance(after, bool) or not 0 <= after < 2**53:
        raise _bad(f"{RESUME}: data.after must be the last serial received (0 for none)")
    epoch = _string_field(RESUME, data, "epoch", required=False)
    if epoch is not None and len(epoch) > 64:
        raise _bad(f"{RESUME}: data.epoch is longer than 64 characters")
    return Resume(_channel(RESUME, data), after, epoch)

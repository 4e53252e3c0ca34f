"""The Pusher protocol for one socket, Sans-I/O: commands in, messages and closes out.

A :class:`Session` owns what one socket has done (its channels, its signed-in user, its client
event budget) and acts on the app's state. It reaches sockets only through the ``Client``
interface, so it runs the same under the asyncio listener and in fast unit tests.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from shared.channels import SERVER_TO_USER_PREFIX, channel_name_error, channel_type
from shared.payloads import JSONDecodeError, dumpb, dumps, encode_message, loads
from shared.signatures import verify_channel, verify_user

from .messages import (
    CLIENT_EVENT_RATE_LIMIT,
    GENERIC_RECONNECT,
    OVER_QUOTA,
    UNAUTHORIZED,
    ClientEvent,
    Ping,
    Pong,
    ProtocolError,
    Signin,
    Subscribe,
    Unsubscribe,
    parse_message,
)
from .publication import Publication
from .ratelimit import TokenBucket
from .state import AppState, Channel, Client

PONG = encode_message("pusher:pong", "{}")
PING = encode_message("pusher:ping", "{}")


def new_socket_id() -> str:
    """A fresh ``\\d+.\\d+`` socket id, as server SDKs expect."""
    high, low = divmod(secrets.randbelow(10**18), 10**9)  # one draw from the OS, not two
    return f"{high + 1}.{low + 1}"


def error_message(code: int, message: str) -> bytes:
    """``pusher:error``; ``data`` is an object, as the Pusher protocol docs show it."""
    return dumpb({"event": "pusher:error", "data": {"code": code, "message": message}})


def established_message(socket_id: str, activity_timeout: int) -> bytes:
    return encode_message(
        "pusher:connection_established",
        {"socket_id": socket_id, "activity_timeout": activity_timeout},
    )


def _presence_member(channel_data: str | None, max_info_size: int) -> tuple[str, Any]:
    """``(user_id, user_info)`` from a presence subscription's ``channel_data``."""
    if channel_data is None:
        raise ProtocolError(
            GENERIC_RECONNECT, "presence subscriptions need channel_data with a user_id"
        )
    try:
        member = loads(channel_data)
    except JSONDecodeError:
        raise ProtocolError(GENERIC_RECONNECT, "channel_data must be a JSON object") from None
    if not isinstance(member, dict):
        raise ProtocolError(GENERIC_RECONNECT, "channel_data must be a JSON object")
    user_id = member.get("user_id")
    if isinstance(user_id, int) and not isinstance(user_id, bool):
        user_id = str(user_id)
    if not isinstance(user_id, str) or not user_id:
        raise ProtocolError(
            GENERIC_RECONNECT, "channel_data.user_id must be a non-empty string or integer"
        )
    user_info = member.get("user_info")
    if len(dumpb(user_info)) > max_info_size:
        raise ProtocolError(
            GENERIC_RECONNECT, f"channel_data.user_info is larger than {max_info_size} bytes"
        )
    return user_id, user_info


class Session:
    """One socket's protocol state and its handling of every client command."""

    __slots__ = ("app", "client", "channels", "user_id", "limiter", "clock", "publish")

    def __init__(self, app: AppState, client: Client, clock: Callable[[], float],
                 publish: Callable[[Publication], None]) -> None:
        self.app = app
        self.client = client
        self.publish = publish  # the bus: client events reach other processes' sockets too
        self.channels: dict[str, Channel] = {}
        self.user_id: str | None = None  # from pusher:signin
        self.clock = clock
        self.limiter: TokenBucket | None = None  # made on the first client event

    @property
    def socket_id(self) -> str:
        return self.client.socket_id

    def open(self) -> None:
        """Register the socket and greet it with ``pusher:connection_established``."""
        self.app.add_connection(self.client)
        self.client.send(established_message(self.socket_id, self.app.config.activity_timeout))

    def handle_text(self, text: str | bytes) -> None:
        """Act on one client text message; a bad one gets ``pusher:error`` and nothing else."""
        try:
            command = parse_message(text)
            if isinstance(command, Ping):
                self.client.send(PONG)
            elif isinstance(command, Pong):
                pass  # any frame counts as activity; the connection has noted it
            elif isinstance(command, Subscribe):
                self.subscribe(command)
            elif isinstance(command, Unsubscribe):
                self.unsubscribe(command.channel)
            elif isinstance(command, Signin):
                self.signin(command)
            else:
                self.client_event(command)
        except ProtocolError as error:
            self.client.send(error_message(error.code, error.message))

    # --- subscriptions ---------------------------------------------------------------------

    def subscribe(self, command: Subscribe) -> None:
        name = command.channel
        channel = self.channels.get(name)
        if channel is None:
            channel = self._join(command)
        data: Any = channel.presence_data() if channel.type.is_presence else {}
        self.client.send(
            encode_message("pusher_internal:subscription_succeeded", data, channel=name)
        )
        if channel.type.cached:
            cached = self.app.cached_event(name)
            if cached is None:
                self.client.send(encode_message("pusher:cache_miss", channel=name))
            else:
                self.client.send(cached)

    def _enter(self, name: str) -> Channel:
        """Subscribe this socket to a channel that has no members (anything but presence)."""
        channel = self.app.open_channel(name)
        channel.subscribe(self.client)
        self.channels[name] = channel
        return channel

    def _join(self, command: Subscribe) -> Channel:
        name = command.channel
        if name.startswith(SERVER_TO_USER_PREFIX):
            # Sign-in already joined the user's own channel; any other user's is off limits.
            raise ProtocolError(
                UNAUTHORIZED, f"{name} is for its signed-in user only; send pusher:signin first"
            )
        kind = channel_type(name)
        config = self.app.config
        if kind.requires_auth:
            signed_data = command.channel_data if kind.is_presence else None
            if not verify_channel(
                command.auth, config.key, config.secret, self.socket_id, name, signed_data
            ):
                raise ProtocolError(
                    UNAUTHORIZED,
                    f"invalid signature for {name}: auth must be 'key:' + hex HMAC-SHA256 of "
                    f"'socket_id:channel{':channel_data' if kind.is_presence else ''}'",
                )
        if not kind.is_presence:
            return self._enter(name)
        user_id, user_info = _presence_member(command.channel_data, config.max_user_info_size)
        existing = self.app.channel(name)
        if (
            existing is not None
            and user_id not in existing.members
            and existing.user_count >= config.max_presence_members
        ):
            raise ProtocolError(
                OVER_QUOTA, f"{name} already has {config.max_presence_members} members"
            )
        channel = self.app.open_channel(name)
        if channel.join(self.client, user_id, user_info):
            added = {"user_id": user_id, "user_info": user_info}
            message = encode_message("pusher_internal:member_added", added, channel=name)
            self.app.send_to_channel(channel, message, except_socket_id=self.socket_id)
        self.app.add_user(user_id, self.client)
        self.channels[name] = channel
        return channel

    def unsubscribe(self, name: str) -> None:
        """Leave ``name``; unsubscribing from a channel the socket is not on does nothing."""
        channel = self.channels.pop(name, None)
        if channel is None:
            return
        user_id = channel.user_of(self.socket_id)
        gone = channel.leave(self.socket_id)
        if gone is not None:
            message = encode_message(
                "pusher_internal:member_removed", {"user_id": gone}, channel=name
            )
            self.app.send_to_channel(channel, message)
        if user_id is not None and not self._is_user(user_id):
            self.app.remove_user(user_id, self.client)
        self.app.drop_if_empty(channel)

    def _is_user(self, user_id: str) -> bool:
        """Whether this socket still belongs to ``user_id`` (signed in or a presence member)."""
        return self.user_id == user_id or any(
            channel.user_of(self.socket_id) == user_id for channel in self.channels.values()
        )

    # --- user sign-in ----------------------------------------------------------------------

    def signin(self, command: Signin) -> None:
        config = self.app.config
        if not verify_user(command.auth, config.key, config.secret, self.socket_id,
                           command.user_data):
            raise ProtocolError(
                UNAUTHORIZED,
                "invalid sign-in: auth must be 'key:' + hex HMAC-SHA256 of "
                "'socket_id::user::user_data'",
            )
        try:
            user = loads(command.user_data)
        except JSONDecodeError:
            user = None
        user_id = user.get("id") if isinstance(user, dict) else None
        if not isinstance(user_id, str) or not user_id:
            raise ProtocolError(GENERIC_RECONNECT, "user_data must be a JSON object with an 'id'")
        error = channel_name_error(SERVER_TO_USER_PREFIX + user_id)
        if error:  # the id names the user's own channel, which the HTTP API must reach too
            raise ProtocolError(GENERIC_RECONNECT, f"user_data id: {error}")
        if self.user_id is not None and self.user_id != user_id:
            previous = self.user_id
            self.user_id = None
            self.unsubscribe(SERVER_TO_USER_PREFIX + previous)
            if not self._is_user(previous):
                self.app.remove_user(previous, self.client)
        self.user_id = user_id
        self.app.add_user(user_id, self.client)
        personal = SERVER_TO_USER_PREFIX + user_id
        if personal not in self.channels:
            self._enter(personal)
        self.client.send(
            encode_message("pusher:signin_success", {"user_data": command.user_data})
        )

    # --- client events ---------------------------------------------------------------------

    def client_event(self, command: ClientEvent) -> None:
        config = self.app.config
        name = command.channel
        if config.accept_client_events_from == "none":
            raise ProtocolError(UNAUTHORIZED, "this app does not accept client events")
        if not channel_type(name).accepts_client_events:
            raise ProtocolError(
                UNAUTHORIZED, "client events go only on private- and presence- channels"
            )
        channel = self.channels.get(name)
        if channel is None and config.accept_client_events_from == "members":
            raise ProtocolError(
                UNAUTHORIZED, f"subscribe to {name} before sending client events on it"
            )
        now = self.clock()
        if self.limiter is None:
            self.limiter = TokenBucket(config.client_events_per_second, now)
        if not self.limiter.allow(now):
            raise ProtocolError(
                CLIENT_EVENT_RATE_LIMIT,
                f"client events are limited to {config.client_events_per_second} per second",
            )
        user_id = channel.user_of(self.socket_id) if channel is not None else None
        data = command.data
        if data is not None and not isinstance(data, str):
            data = dumps(data)  # once here, as encode_message would on every process
        self.publish(Publication(self.app.id, (name,), command.event, data,
                                 except_socket_id=self.socket_id, user_id=user_id))

    # --- end -------------------------------------------------------------------------------

    def close(self) -> None:
        """Forget the socket: leave every channel (presence members get removed) and the app."""
        for name in list(self.channels):
            self.unsubscribe(name)
        if self.user_id is not None:
            self.app.remove_user(self.user_id, self.client)
            self.user_id = None
        self.app.remove_connection(self.client)

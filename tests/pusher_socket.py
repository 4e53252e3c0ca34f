"""The suites' one Pusher protocol-7 test client, on the ``websockets`` sync client.

Two ways to read: :meth:`PusherSocket.recv` is strict and returns every message as it comes
(pings included), so a test sees exactly what the server sent; :meth:`PusherSocket.next_message`
answers pings on the way and skips what the test did not ask for. Private and presence
subscriptions are signed with the app secret (as an auth endpoint would), with an explicit
``auth``, or through an app's own auth endpoint (an :data:`Authorizer`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from shared.signatures import sign_channel, sign_user
from tests.servers import APP_KEY, APP_SECRET, Broadcaster

TIMEOUT = 5.0

Message = dict[str, Any]
# (channel_name, socket_id) -> (status, JSON answer) from an auth endpoint such as the webapp's
Authorizer = Callable[[str, str], tuple[int, Message]]


class PusherSocket:
    """One connection; ``greeting`` is the first message, ``socket_id`` set once established."""

    def __init__(self, url: str, key: str = APP_KEY, secret: str = APP_SECRET,
                 **options: Any) -> None:
        options.setdefault("open_timeout", TIMEOUT)
        options.setdefault("close_timeout", 2)
        options.setdefault("ping_interval", None)
        options.setdefault("legacy", True)  # a plain object, closed by the fixtures
        self.key, self.secret = key, secret
        self.ws = connect(url, **options)
        self.greeting = self.recv()
        self.socket_id = ""
        if self.greeting["event"] == "pusher:connection_established":
            self.socket_id = json.loads(self.greeting["data"])["socket_id"]

    @classmethod
    def to(cls, server: Broadcaster, **options: Any) -> PusherSocket:
        """A socket on ``server``'s app, asserted established."""
        socket = cls(server.ws_url, server.key, server.secret, **options)
        assert socket.socket_id, socket.greeting
        return socket

    def recv(self, timeout: float = TIMEOUT) -> Message:
        """The next message, whatever it is."""
        return json.loads(self.ws.recv(timeout=timeout))

    def send(self, message: Message | str) -> None:
        self.ws.send(message if isinstance(message, str) else json.dumps(message))

    def next_message(self, timeout: float = TIMEOUT,
                     wanted: Callable[[Message], bool] = lambda message: True) -> Message | None:
        """The next message ``wanted`` accepts within ``timeout`` s (answering pings), or None."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                message = self.recv(left)
            except TimeoutError:
                return None
            if message["event"] == "pusher:ping":
                self.send({"event": "pusher:pong", "data": {}})
            elif wanted(message):
                return message
        return None

    def next_event(self, timeout: float = TIMEOUT) -> Message | None:
        """The next channel event (not a ``pusher:``/``pusher_internal:`` message), or None."""
        return self.next_message(
            timeout, lambda message: not message["event"].startswith(("pusher:",
                                                                      "pusher_internal:")))

    def subscribe(self, channel: str, channel_data: str | None = None,
                  auth: str | None = None) -> None:
        """Send ``pusher:subscribe``; private and presence channels signed unless given ``auth``."""
        data: dict[str, Any] = {"channel": channel}
        if auth is None and channel.startswith(("private-", "presence-")):
            auth = sign_channel(self.key, self.secret, self.socket_id, channel, channel_data)
        if auth is not None:
            data["auth"] = auth
        if channel_data is not None:
            data["channel_data"] = channel_data
        self.send({"event": "pusher:subscribe", "data": data})

    def joined(self, channel: str, channel_data: str | None = None) -> Message:
        """Subscribe and return the subscription_succeeded message, which must come next."""
        self.subscribe(channel, channel_data)
        message = self.recv()
        assert message["event"] == "pusher_internal:subscription_succeeded", message
        assert message["channel"] == channel
        return message

    def outcome(self, channel: str) -> Message:
        """The server's answer to subscribing to ``channel``: its next message or an error."""
        message = self.next_message(TIMEOUT, lambda m: m.get("channel") == channel
                                    or m["event"] == "pusher:error")
        assert message is not None, f"no answer to subscribing to {channel}"
        return message

    def subscribe_via(self, channel: str, authorize: Authorizer) -> Message:
        """Authorize through an app's auth endpoint, subscribe, and return the outcome."""
        status, answer = authorize(channel, self.socket_id)
        assert status == 200, (status, answer)
        self.subscribe(channel, answer.get("channel_data"), answer["auth"])
        return self.outcome(channel)

    def sign_in(self, user_id: str) -> None:
        """``pusher:signin`` as pusher-js sends it after asking the app's user-auth endpoint."""
        user_data = json.dumps({"id": user_id})
        auth = sign_user(self.key, self.secret, self.socket_id, user_data)
        self.send({"event": "pusher:signin", "data": {"user_data": user_data, "auth": auth}})
        answer = self.next_message()
        assert answer is not None and answer["event"] == "pusher:signin_success", answer

    def silent(self, timeout: float = 0.3) -> bool:
        """True when nothing arrives within ``timeout``."""
        try:
            message = self.ws.recv(timeout=timeout)
        except TimeoutError:
            return True
        raise AssertionError(f"expected silence, got {message!r}")

    def closed_code(self, timeout: float = TIMEOUT) -> int | None:
        """Read until the server closes; the close code it sent (None if it sent none)."""
        try:
            while True:
                self.ws.recv(timeout=timeout)
        except ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else None

    def close(self) -> None:
        self.ws.close()


def member(user_id: str) -> str:
    """Presence ``channel_data`` for ``user_id``, named after itself."""
    return json.dumps({"user_id": user_id, "user_info": {"name": user_id}})


def error(message: Message) -> tuple[int, str]:
    assert message["event"] == "pusher:error", message
    return message["data"]["code"], message["data"]["message"]

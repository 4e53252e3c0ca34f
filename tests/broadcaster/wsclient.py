"""A strict Pusher socket for the broadcaster tests, on the ``websockets`` sync client.

Strict: :meth:`Socket.recv` returns every message as it comes (pings included), so a test sees
exactly what the server sent.
"""

from __future__ import annotations

import json
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from shared.signatures import sign_channel

TIMEOUT = 5.0


class Socket:
    def __init__(self, url: str, key: str = "test-key", secret: str = "test-secret",
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

    def recv(self, timeout: float = TIMEOUT) -> dict[str, Any]:
        return json.loads(self.ws.recv(timeout=timeout))

    def send(self, message: dict[str, Any] | str) -> None:
        self.ws.send(message if isinstance(message, str) else json.dumps(message))

    def subscribe(self, channel: str, channel_data: str | None = None,
                  auth: str | None = None) -> None:
        data: dict[str, Any] = {"channel": channel}
        if auth is None and channel.startswith(("private-", "presence-")):
            auth = sign_channel(self.key, self.secret, self.socket_id, channel, channel_data)
        if auth is not None:
            data["auth"] = auth
        if channel_data is not None:
            data["channel_data"] = channel_data
        self.send({"event": "pusher:subscribe", "data": data})

    def joined(self, channel: str, channel_data: str | None = None) -> dict[str, Any]:
        """Subscribe and return the subscription_succeeded message."""
        self.subscribe(channel, channel_data)
        message = self.recv()
        assert message["event"] == "pusher_internal:subscription_succeeded", message
        assert message["channel"] == channel
        return message

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


def error(message: dict[str, Any]) -> tuple[int, str]:
    assert message["event"] == "pusher:error", message
    return message["data"]["code"], message["data"]["message"]

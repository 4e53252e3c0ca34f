"""A minimal Pusher protocol-7 client over the ``websockets`` library, for the webapp tests.

It subscribes through the webapp's own ``/broadcasting/auth`` (any HTTP callable), and reads
channel events, answering pings on the way.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from websockets.sync.client import ClientConnection, connect

# (channel_name, socket_id) -> (status, JSON answer) from /broadcasting/auth
Authorizer = Callable[[str, str], tuple[int, dict[str, Any]]]


class PusherSocket:
    def __init__(self, url: str) -> None:
        self.ws: ClientConnection = connect(url, open_timeout=5, legacy=True)
        hello = self._recv(5.0)
        assert hello["event"] == "pusher:connection_established", hello
        self.socket_id: str = json.loads(hello["data"])["socket_id"]

    def _recv(self, timeout: float) -> dict[str, Any]:
        return json.loads(self.ws.recv(timeout=timeout))

    def subscribe(self, channel: str, authorize: Authorizer) -> dict[str, Any]:
        """Authorize through the webapp, subscribe, and return the broadcaster's answer."""
        status, answer = authorize(channel, self.socket_id)
        assert status == 200, (status, answer)
        return self.subscribe_with(channel, answer["auth"], answer.get("channel_data"))

    def subscribe_with(self, channel: str, auth: str, channel_data: str | None = None) -> dict:
        """Send ``pusher:subscribe`` as given; the subscription's outcome message."""
        data = {"channel": channel, "auth": auth}
        if channel_data is not None:
            data["channel_data"] = channel_data
        self.ws.send(json.dumps({"event": "pusher:subscribe", "data": data}))
        message = self.next_message(5.0, lambda m: m.get("channel") == channel
                                    or m["event"] in ("pusher:error",))
        assert message is not None, f"no answer to subscribing to {channel}"
        return message

    def next_message(self, timeout: float, wanted: Callable[[dict], bool]) -> dict | None:
        """The next message ``wanted`` accepts within ``timeout`` s, or None."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                message = self._recv(left)
            except TimeoutError:
                return None
            if message["event"] == "pusher:ping":
                self.ws.send(json.dumps({"event": "pusher:pong", "data": {}}))
            elif wanted(message):
                return message
        return None

    def next_event(self, timeout: float = 5.0) -> dict | None:
        """The next channel event (not a ``pusher:``/``pusher_internal:`` message)."""
        return self.next_message(timeout, lambda m: not m["event"].startswith("pusher"))

    def close(self) -> None:
        self.ws.close()

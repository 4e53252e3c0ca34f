"""Real clients for the HTTP API tests: a Pusher WebSocket subscriber, and hand-signed requests.

Subscribers use the ``websockets`` sync client and sign their subscriptions with shared/, as an
auth endpoint would. Raw requests sign their query with ``shared.signatures.sign_request`` so a
test can break exactly one check.
"""

from __future__ import annotations

import http.client
import json
from urllib.parse import urlencode

from websockets.sync.client import ClientConnection, connect

from shared.signatures import sign_channel, sign_request, sign_user
from tests.servers import HOST, Broadcaster

TIMEOUT = 5.0


class Subscriber:
    """One Pusher protocol-7 socket: connects, subscribes with real auth, reads events."""

    def __init__(self, server: Broadcaster) -> None:
        self.server = server
        self.ws: ClientConnection = connect(server.ws_url, open_timeout=TIMEOUT, legacy=True)
        established = self.next()
        assert established["event"] == "pusher:connection_established", established
        self.socket_id: str = json.loads(established["data"])["socket_id"]

    def next(self, timeout: float = TIMEOUT) -> dict:
        """The next message, skipping pings' pongs."""
        while True:
            message = json.loads(self.ws.recv(timeout=timeout))
            if message["event"] != "pusher:ping":
                return message
            self.ws.send('{"event":"pusher:pong","data":{}}')

    def subscribe(self, channel: str, user_id: str | None = None) -> dict:
        """Subscribe (signing private and presence channels) and wait for the confirmation."""
        data: dict = {"channel": channel}
        if channel.startswith("presence-"):
            channel_data = json.dumps({"user_id": user_id, "user_info": {"name": user_id}})
            data["channel_data"] = channel_data
            data["auth"] = sign_channel(self.server.key, self.server.secret, self.socket_id,
                                        channel, channel_data)
        elif channel.startswith("private-"):
            data["auth"] = sign_channel(self.server.key, self.server.secret, self.socket_id,
                                        channel)
        self.ws.send(json.dumps({"event": "pusher:subscribe", "data": data}))
        while True:
            message = self.next()
            if message["event"] == "pusher_internal:subscription_succeeded":
                assert message["channel"] == channel
                return message
            assert message["event"] in ("pusher_internal:member_added",
                                         "pusher:cache_miss"), message

    def sign_in(self, user_id: str) -> None:
        """``pusher:signin`` as pusher-js sends it after asking the app's user-auth endpoint."""
        user_data = json.dumps({"id": user_id})
        auth = sign_user(self.server.key, self.server.secret, self.socket_id, user_data)
        self.ws.send(json.dumps({"event": "pusher:signin",
                                 "data": {"user_data": user_data, "auth": auth}}))
        assert self.next()["event"] == "pusher:signin_success"

    def next_event(self, timeout: float = TIMEOUT) -> dict:
        """The next channel event, skipping presence bookkeeping."""
        while True:
            message = self.next(timeout)
            if not message["event"].startswith(("pusher_internal:", "pusher:")):
                return message

    def close(self) -> None:
        self.ws.close()


def signed_request(
    server: Broadcaster,
    method: str,
    path: str,
    body: bytes = b"",
    params: dict[str, str] | None = None,
    change: dict[str, str] | None = None,
    connection: http.client.HTTPConnection | None = None,
) -> tuple[int, dict]:
    """Send one request signed for ``server``'s app; ``change`` overrides params after signing."""
    query = sign_request(server.key, server.secret, method, path, params, body)
    query.update(change or {})
    conn = connection or http.client.HTTPConnection(HOST, server.port, timeout=TIMEOUT)
    try:
        headers = {"Content-Type": "application/json"} if body else {}
        conn.request(method, f"{path}?{urlencode(query)}", body=body or None, headers=headers)
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        if connection is None:
            conn.close()


def post_json(server: Broadcaster, path: str, value: object, **kwargs) -> tuple[int, dict]:
    return signed_request(server, "POST", path, json.dumps(value).encode(), **kwargs)

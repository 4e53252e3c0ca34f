"""A tiny channel-authorization endpoint, so pusher-js can use private and presence channels
against the bare broadcaster without the webapp.

pusher-js POSTs the form fields ``socket_id`` and ``channel_name``; the test says who the user is
with the ``X-User-Id`` / ``X-User-Name`` headers (set through pusher-js's ``auth.headers``).
Channels whose name contains ``forged`` get a signature made with the wrong secret, so the
broadcaster, not this endpoint, must refuse them. User sign-in is at :attr:`user_url`, for the
``X-User-Id`` user, with ``X-Watchlist`` (comma-separated ids) as its watchlist.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

from shared.channels import channel_type
from shared.payloads import dumps
from shared.signatures import sign_channel, sign_user
from tests.servers import HOST


class AuthEndpoint:
    """Signs subscriptions for ``key``/``secret`` at ``url`` until :meth:`stop`."""

    def __init__(self, key: str, secret: str) -> None:
        self.key = key
        self.secret = secret
        self.requests: list[dict[str, str]] = []
        self._server = ThreadingHTTPServer((HOST, 0), _handler_for(self))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self._server.server_address[1]}/broadcasting/auth"

    @property
    def user_url(self) -> str:
        return self.url.replace("/auth", "/user-auth")

    def sign_in(self, socket_id: str, user_id: str, watchlist: str) -> dict:
        """The JSON body pusher-js expects from its user authentication endpoint."""
        user: dict = {"id": user_id}
        if watchlist:
            user["watchlist"] = watchlist.split(",")
        user_data = dumps(user)
        return {"auth": sign_user(self.key, self.secret, socket_id, user_data),
                "user_data": user_data}

    def authorize(self, socket_id: str, channel: str, user_id: str, user_name: str) -> dict:
        """The JSON body pusher-js expects."""
        secret = f"{self.secret}-wrong" if "forged" in channel else self.secret
        if not channel_type(channel).is_presence:
            return {"auth": sign_channel(self.key, secret, socket_id, channel)}
        channel_data = dumps({"user_id": user_id, "user_info": {"id": user_id, "name": user_name}})
        auth = sign_channel(self.key, secret, socket_id, channel, channel_data)
        return {"auth": auth, "channel_data": channel_data}

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def _handler_for(endpoint: AuthEndpoint) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            length = int(self.headers.get("Content-Length") or 0)
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            endpoint.requests.append(form)
            user_id = self.headers.get("X-User-Id", "")
            if self.path.endswith("/user-auth"):
                answer = endpoint.sign_in(form.get("socket_id", ""), user_id,
                                          self.headers.get("X-Watchlist", ""))
            else:
                answer = endpoint.authorize(form.get("socket_id", ""),
                                            form.get("channel_name", ""), user_id,
                                            self.headers.get("X-User-Name", ""))
            raw = dumps(answer).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            """Quiet: pytest shows failures, not every auth request."""

    return Handler

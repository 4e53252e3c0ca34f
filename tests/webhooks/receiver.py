"""A real HTTP webhook receiver for the tests: checks each webhook with the official pusher
SDK's ``validate_webhook()`` and keeps the events, in the order they came."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pusher

from tests.servers import APP_ID, APP_KEY, APP_SECRET, free_port


class Receiver:
    """Answers each POST with the next of ``statuses`` (then 200); records what it accepted."""

    def __init__(self, statuses: list[int] | None = None, port: int | None = None) -> None:
        self.port = port or free_port()
        self.statuses = list(statuses or [])
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []  # of each accepted webhook
        self.posts = 0
        self.sdk = pusher.Pusher(app_id=APP_ID, key=APP_KEY, secret=APP_SECRET)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.posts += 1
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                if status == 200:
                    webhook = receiver.sdk.validate_webhook(
                        self.headers["X-Pusher-Key"], self.headers["X-Pusher-Signature"],
                        body.decode())
                    assert webhook is not None, f"invalid webhook: {self.headers} {body!r}"
                    assert set(json.loads(body)) == {"time_ms", "events"}
                    receiver.bodies.append(webhook)
                    receiver.headers.append(dict(self.headers))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    @property
    def events(self) -> list[dict[str, Any]]:
        return [event for body in self.bodies for event in body["events"]]

    def names(self, channel: str) -> list[str]:
        return [event["name"] for event in self.events if event["channel"] == channel]

    def counts(self, channel: str) -> list[int]:
        """The ``subscription_count`` webhooks of ``channel``, in the order they came."""
        return [event["subscription_count"] for event in self.events
                if event["channel"] == channel and event["name"] == "subscription_count"]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def webhooks_env(url: str, *event_types: str) -> dict[str, str]:
    return {"RESOUND_APP_WEBHOOKS": json.dumps([{"url": url, "event_types": list(event_types)}])}

"""The broadcaster's signed HTTP API, as the outbox and the worker use it, over one kept-alive
connection.

A :class:`ReverbClient` keeps one HTTP/1.1 connection open and sends every request on it, one at
a time (a lock serialises callers). When a connection that served an earlier request turns out
to be closed (the broadcaster restarted, or dropped an idle connection), the request is sent
once more on a fresh connection: every event carries its idempotency key, so a request that did
get through before the break is not delivered twice. A failure on a fresh connection is the
caller's failed attempt (:class:`DeliveryError`).
"""

from __future__ import annotations

import http.client
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from shared.payloads import dumpb, loads
from shared.signatures import sign_request

from ..config import MAX_BATCH

# Answers that will never succeed on retry: skip the row instead of blocking the queue.
PERMANENT_STATUSES = frozenset({400, 413})
# A kept connection that fails like this before any answer was closed by the far end.
_STALE_CONNECTION = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError,
                     ConnectionAbortedError)


class DeliveryError(Exception):
    """The broadcaster did not take the request; ``permanent`` when retrying cannot help."""

    def __init__(self, message: str, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True)
class Message:
    """One event to publish, with the key the broadcaster delivers once within its window."""

    name: str
    channels: list[str]
    data: str
    socket_id: str | None
    idempotency_key: str

    def fields(self) -> dict[str, Any]:
        """The event's JSON fields, as ``POST events`` and a batch item take them."""
        fields: dict[str, Any] = {"name": self.name, "channels": self.channels,
                                  "data": self.data}
        if self.socket_id:
            fields["socket_id"] = self.socket_id
        return fields


class ReverbClient:
    """``POST events``, ``POST batch_events``, ``POST users/{id}/terminate_connections``, and
    the reads ``GET channels`` and ``GET channels/{name}/users``."""

    def __init__(self, app_id: str, key: str, secret: str, host: str, port: int,
                 scheme: str = "http", timeout: float = 5.0, keep_alive: bool = True) -> None:
        self.app_id, self.key, self.secret = app_id, key, secret
        self.host, self.port, self.scheme, self.timeout = host, port, scheme, timeout
        self.keep_alive = keep_alive
        self.connections_opened = 0  # how many connections this client has made, ever
        self._connection: http.client.HTTPConnection | None = None
        self._used = False  # whether the open connection has answered a request already
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, config: Any) -> ReverbClient:
        return cls(
            app_id=str(config["REVERB_APP_ID"]), key=config["REVERB_APP_KEY"],
            secret=config["REVERB_APP_SECRET"], host=config["REVERB_HOST"],
            port=int(config["REVERB_PORT"]), scheme=config["REVERB_SCHEME"],
            timeout=float(config["OUTBOX_HTTP_TIMEOUT"]),
            keep_alive=bool(config["OUTBOX_KEEP_ALIVE"]),
        )

    def trigger(self, message: Message) -> None:
        """Publish one event (its key in the ``Idempotency-Key`` header); raise
        :class:`DeliveryError` unless the broadcaster answers 2xx."""
        self._post(f"/apps/{self.app_id}/events", dumpb(message.fields()),
                   {"Idempotency-Key": message.idempotency_key})

    def trigger_batch(self, messages: Sequence[Message]) -> None:
        """Publish 2 to :data:`MAX_BATCH` events in one request, in order, each with its own
        ``idempotency_key``: a resent batch, whatever rows it holds, delivers only the events
        whose keys the broadcaster has not seen. All or none are taken (4xx: none)."""
        if not 1 <= len(messages) <= MAX_BATCH:
            raise ValueError(f"a batch holds 1 to {MAX_BATCH} events, not {len(messages)}")
        batch = [{**message.fields(), "idempotency_key": message.idempotency_key}
                 for message in messages]
        self._post(f"/apps/{self.app_id}/batch_events", dumpb({"batch": batch}), {})

    def terminate(self, user_id: str) -> None:
        """Close every connection signed in as ``user_id``."""
        self._post(f"/apps/{self.app_id}/users/{quote(user_id, safe='')}/terminate_connections",
                   b"{}", {})

    def occupied_channels(self, prefix: str) -> set[str]:
        """The names of the occupied channels that start with ``prefix`` (``GET channels``)."""
        return set(self._get(f"/apps/{self.app_id}/channels", {"filter_by_prefix": prefix},
                             "channels", dict))

    def channel_members(self, channel: str) -> set[str]:
        """The user ids of a presence channel's members (``GET channels/{name}/users``)."""
        users = self._get(f"/apps/{self.app_id}/channels/{quote(channel, safe='')}/users", {},
                          "users", list)
        return {str(user["id"]) for user in users if isinstance(user, dict) and "id" in user}

    def close(self) -> None:
        with self._lock:
            self._drop()

    def _get(self, path: str, params: dict[str, str], field: str, kind: type) -> Any:
        """``field`` of the JSON object a signed GET answers, which must be a ``kind``;
        :class:`DeliveryError` unless the answer is 2xx and so."""
        answer = self._request("GET", path, b"", {}, params)
        try:
            value = loads(answer).get(field)
        except (ValueError, AttributeError):
            value = None
        if not isinstance(value, kind):
            raise DeliveryError(f"GET {path} answered no {field!r} {kind.__name__}: "
                                f"{answer[:200]!r}")
        return value

    def _post(self, path: str, body: bytes, headers: dict[str, str]) -> None:
        self._request("POST", path, body, {"Content-Type": "application/json", **headers}, {})

    def _request(self, method: str, path: str, body: bytes, headers: dict[str, str],
                 params: dict[str, str]) -> bytes:
        """Send a signed request on the kept connection; its body, or :class:`DeliveryError`
        unless the broadcaster answers 2xx."""
        query = urlencode(sign_request(self.key, self.secret, method, path, params, body=body))
        target = f"{path}?{query}"
        with self._lock:
            try:
                status, answer = self._send(method, target, body, headers)
            except (OSError, http.client.HTTPException) as exc:
                reused = self._used
                self._drop()
                if not (reused and isinstance(exc, _STALE_CONNECTION)):
                    raise self._unreachable(exc) from None
                # The kept connection had been closed by the far end: once more on a new one.
                try:
                    status, answer = self._send(method, target, body, headers)
                except (OSError, http.client.HTTPException) as again:
                    self._drop()
                    raise self._unreachable(again) from None
        if not 200 <= status < 300:
            text = answer[:2000].decode(errors="replace")
            raise DeliveryError(f"broadcaster answered {status}: {text}",
                                permanent=status in PERMANENT_STATUSES)
        return answer

    def _unreachable(self, exc: Exception) -> DeliveryError:
        return DeliveryError(f"broadcaster at {self.host}:{self.port} unreachable: {exc}")

    def _send(self, method: str, target: str, body: bytes,
              headers: dict[str, str]) -> tuple[int, bytes]:
        """One request on the kept connection (opened if needed); the status and the body."""
        if self._connection is None:
            connection_class = (http.client.HTTPSConnection if self.scheme == "https"
                                else http.client.HTTPConnection)
            self._connection = connection_class(self.host, self.port, timeout=self.timeout)
            self._used = False
            self.connections_opened += 1
        if not self.keep_alive:
            headers = {**headers, "Connection": "close"}
        self._connection.request(method, target, body=body or None, headers=headers)
        response = self._connection.getresponse()
        answer = response.read()
        if response.will_close or not self.keep_alive:
            self._drop()
        else:
            self._used = True
        return response.status, answer

    def _drop(self) -> None:
        if self._connection is not None:
            self._connection.close()
        self._connection, self._used = None, False

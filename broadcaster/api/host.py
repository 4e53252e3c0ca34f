"""What the HTTP API may use of the server: a narrow interface, as ``Client`` is for sockets."""

from __future__ import annotations

from typing import Protocol

from ..config import ServerConfig
from ..protocol.publication import Publication
from ..protocol.state import AppState


class ApiHost(Protocol):
    """The server as the API sees it: its apps, the bus, and whether the bus can publish."""

    config: ServerConfig
    draining: bool  # shutting down: /ready answers 503

    def app_by_id(self, app_id: str) -> AppState | None:
        """The app with id ``app_id`` on this server."""

    def app_by_key(self, key: str) -> AppState | None:
        """The app with key ``key`` on this server."""

    def publish(self, publication: Publication) -> None:
        """Send a publication to every node's sockets through the bus."""

    def unavailable(self) -> str | None:
        """Why publications cannot reach every node now (the API answers 503), or None."""

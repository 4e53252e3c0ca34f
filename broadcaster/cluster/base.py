"""Publishing goes through a bus, so a Redis pub/sub bus can replace the local one.

The HTTP API (and anything else in the process) calls :meth:`Bus.publish`; whatever the bus,
publications end up in the server's local delivery function, which fans them out to sockets.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

from ..protocol.publication import Publication

Deliver = Callable[[Publication], None]


class Bus(ABC):
    """Carries publications to the local delivery of every server process that shares it."""

    @abstractmethod
    def attach(self, deliver: Deliver) -> None:
        """Set the function that delivers a publication to this process's sockets."""

    @abstractmethod
    def publish(self, publication: Publication) -> None:
        """Send a publication to every attached server (this one included)."""

    @abstractmethod
    async def start(self) -> None:
        """Connect to whatever carries the bus."""

    @abstractmethod
    async def stop(self) -> None:
        """Disconnect from whatever carries the bus."""
